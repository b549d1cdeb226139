//! The collector. (Being written.)
pub mod cli;
pub mod command;
pub mod csvlog;
pub mod error;
pub mod http;
pub mod lock;
pub mod metrics;
pub mod notify;
pub mod on_collect;
pub mod replay;
pub mod schema;
pub mod state;
