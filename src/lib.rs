#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod proc;
mod runtime;
pub mod session;

pub use error::{Error, Result};
pub use runtime::Runtime;
pub use session::protocol::quote;
pub use session::{Cmd, Event, Interrupter, Metrics, Output, Running, Session, SessionBuilder, Stream, Unread};
