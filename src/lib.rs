//! Persistent shell sessions inside containers, synchronously, with almost no dependencies.
//!
//! A [`Session`] is one long-lived shell reached through `docker exec -i`, `podman exec -i`,
//! `kubectl exec -i`, a local `sh`, or any CLI of that shape ([`Runtime`]). Commands run one
//! after another in it, so the working directory, variables, functions, aliases and background
//! jobs carry over; each command's stdout and stderr come back apart, byte for byte, with its
//! exit code. No async runtime: reader threads and channels, and a deadline on every wait.
//!
//! ```no_run
//! use std::time::Duration;
//! use boxshell::{Runtime, Session, Stream};
//!
//! fn main() -> boxshell::Result<()> {
//!     let mut sh = Session::builder("my-container").runtime(Runtime::Docker).open()?;
//!     sh.exec("cd /app && export RUST_LOG=debug")?;
//!     let out = sh.cmd("make test").timeout(Duration::from_secs(60)).run()?;
//!     println!("{} {}", out.exit_code, out.stdout_str());
//!
//!     // Interactive input, and a wait for what the program prints.
//!     let mut py = sh.cmd("python3 -i -q").interactive().spawn()?;
//!     py.write_stdin(b"print(6*7)\n")?;
//!     py.expect(Stream::Stdout, b"42\n", Duration::from_secs(5))?;
//!     py.close_stdin()?;
//!     py.wait()?;
//!     sh.close() // ends the shell and everything it started; Drop does the same
//! }
//! ```
//!
//! # Where things are
//!
//! | for | see |
//! |---|---|
//! | one command: timeout, stdin, env, workdir, output cap, a terminal | [`Session::cmd`], [`Cmd`], [`Running`] |
//! | files, named as `std::fs` | [`Session::write_file`], [`Session::read_dir`], [`fs`] |
//! | background processes with a handle | [`Cmd::background`], [`Process`] |
//! | a shell's state carried to a new session | [`Session::snapshot`], [`ShellState`] |
//! | which CLI sessions go through, its program, env and global flags | [`Runtime`], [`Engine`], [`Custom`] |
//! | container lifecycle: run, stop, logs, copy | [`container::Containers`] |
//! | tmux sessions | [`tmux`] |
//! | sessions keyed by container, idle reaping, metrics | [`pool::Pool`] |
//! | sessions defined in a config file, one facade over the rest | [`ops::Ops`] |
//! | what went wrong, naming the container, runtime and command | [`Error`] |
//!
//! # Cargo features
//!
//! - `terminal` (default): [`Cmd::terminal`], a command on a PTY with keystrokes and resize
//!   (adds `rustix`).
//! - `config`: [`ops::Ops`] sessions from a TOML file (adds `toml`).
//! - `cli`: the `boxshell` command-line tool (adds `clap`, `clap_complete`, `ctrlc`).
//!
//! The README holds the set-up, a longer tour and the measured figures; `docs/DESIGN.md` in
//! the package how a command's end is found and how a command is aborted.
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

/// The README's examples, compiled and run as doc tests (the crate's front page is above).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
