//! The collector. (Being written.)
pub mod cli;
pub mod csvlog;
pub mod error;
pub mod lock;
pub mod schema;
