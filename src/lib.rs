#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod container;
mod engine;
mod error;
pub mod fs;
pub mod ops;
mod output;
pub mod pool;
mod proc;
mod reap;
mod runtime;
mod session;
mod state;
mod text;
pub mod tmux;

pub use engine::Engine;
pub use error::{Error, Result, Via};
pub use output::{Event, Gap, Logs, Output, Stream};
pub use proc::Stop;
pub use runtime::{Custom, Kubectl, Runtime};
pub use session::{
    Cmd, Interrupter, Metrics, Process, ProcessStatus, Restored, Running, Session, SessionBuilder, ShellState, Unread,
};
pub use state::State;
/// What the fuzz target drives (`cargo fuzz`, which builds with `--cfg fuzzing`). Not API.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::session::protocol::MARK_LEN;
    pub use crate::session::protocol::check::{model, scan_in_pieces};

    /// The sentinel of a token made of `seed`'s bytes (mapped to hex digits).
    pub fn marker(seed: &[u8]) -> [u8; MARK_LEN] {
        crate::session::protocol::Token::from_seed(seed).marker()
    }
}

pub use text::quote;

use container::{Container, ContainerSpec, Containers};
use ops::Ops;
use pool::{Pool, PooledStatus};
use tmux::Tmux;

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
    send_sync::<Containers>();
    send_sync::<Container>();
    send_sync::<ContainerSpec>();
    send_sync::<Tmux>();
    send_sync::<Ops>();
    send_sync::<Pool>();
    send_sync::<PooledStatus>();
}
