//! The collector. (Being written.)
pub mod schema;
