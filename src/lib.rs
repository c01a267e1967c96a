#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod proc;
mod runtime;
mod session;

pub use error::{Error, Result};
pub use runtime::Runtime;
pub use session::protocol::quote;
pub use session::{Cmd, Event, Interrupter, Metrics, Output, Running, Session, SessionBuilder, Stream, Unread};

/// Compile-time proof of the thread-safety promised in the docs.
#[allow(dead_code)]
fn assert_thread_safety() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<Session>();
    send::<SessionBuilder>();
    send_sync::<Interrupter>();
    send_sync::<Error>();
    send_sync::<Output>();
    send_sync::<Runtime>();
}
