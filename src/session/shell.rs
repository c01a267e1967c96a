//! The shell part of a session: its exec client, its stdin, and where it is in its life.
//! What a session does at the end of that life is in [`close`](super::close).

use std::io::Write;
use std::process::{Child, ChildStdin, ExitStatus};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::lock;
use crate::error::{Error, Result};
use crate::proc;

/// The shell's stdin: shared with the watch, which writes a recovery line after it has
/// interrupted a command.
pub(super) struct Line {
    pub(super) stdin: Option<ChildStdin>,
}

impl Line {
    pub(super) fn write(&mut self, bytes: &[u8], target: &str) -> Result<()> {
        let stdin = self.stdin.as_mut().ok_or_else(|| {
            Error::io("writing to the shell", std::io::Error::new(std::io::ErrorKind::BrokenPipe, "stdin closed"))
        })?;
        stdin.write_all(bytes).map_err(|e| Error::io(format!("writing to the shell in {target}"), e))
    }
}

/// The exec client that runs the shell (on the host: the shell itself). Shared with the
/// watch, which kills it when the container cannot be reached.
pub(super) struct Client(Mutex<Child>);

impl Client {
    pub(super) fn new(child: Child) -> Client {
        Client(Mutex::new(child))
    }

    /// Whether it has exited.
    pub(super) fn has_exited(&self) -> bool {
        matches!(lock(&self.0).try_wait(), Ok(Some(_)) | Err(_))
    }

    /// Waits until `deadline` for it to exit.
    pub(super) fn wait_until(&self, deadline: Instant) -> Option<ExitStatus> {
        proc::wait_until(&mut lock(&self.0), deadline)
    }

    /// Kills it (not what it started in the container).
    pub(super) fn kill(&self) {
        let _ = lock(&self.0).kill();
    }

    /// Kills it and reaps it.
    pub(super) fn kill_and_wait(&self) -> Option<ExitStatus> {
        let mut child = lock(&self.0);
        let _ = child.kill();
        child.wait().ok()
    }
}

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Life {
    /// The shell answers commands.
    Live,
    /// `close` runs: the shell answers its clean-up command, and nothing else.
    Closing,
    /// The shell has exited, with its exit code when known. `cleanup_owed`: ending what it
    /// left running failed (the container was paused, the engine did not answer), and `close`
    /// tries again.
    Exited { code: Option<i32>, cleanup_owed: bool },
    /// Closed: nothing is left to do.
    Closed,
}

/// The session's shell: the program, the exec client running it, its stdin (shared with the
/// watch, which writes recovery lines) and its life.
pub(super) struct Shell {
    /// The shell program, as given to the builder.
    pub(super) program: String,
    pub(super) client: Arc<Client>,
    pub(super) line: Arc<Mutex<Line>>,
    life: Life,
}

impl Shell {
    pub(super) fn new(program: String, client: Arc<Client>, line: Arc<Mutex<Line>>) -> Shell {
        Shell { program, client, line, life: Life::Live }
    }

    /// Writes `bytes` to the shell's stdin.
    pub(super) fn write(&self, bytes: &[u8], target: &str) -> Result<()> {
        lock(&self.line).write(bytes, target)
    }

    /// Closes the shell's stdin: it reads EOF.
    pub(super) fn close_stdin(&self) {
        lock(&self.line).stdin = None;
    }

    pub(super) fn life(&self) -> Life {
        self.life
    }

    /// Moves on to `life`, returning where it was.
    pub(super) fn set_life(&mut self, life: Life) -> Life {
        std::mem::replace(&mut self.life, life)
    }

    /// Whether the shell is (as far as is known) still there.
    pub(super) fn is_live(&self) -> bool {
        matches!(self.life, Life::Live | Life::Closing)
    }

    /// The shell's exit code, once it has exited and it is known.
    pub(super) fn exit_code(&self) -> Option<i32> {
        match self.life {
            Life::Exited { code, .. } => code,
            _ => None,
        }
    }

    /// Closes its stdin and waits up to `wait` for the exec client to exit, then kills it:
    /// its exit code, when known.
    pub(super) fn reap_client(&self, wait: Duration) -> Option<i32> {
        self.close_stdin();
        let status = self.client.wait_until(Instant::now() + wait).or_else(|| self.client.kill_and_wait());
        status.map(proc::exit_code)
    }

    /// Closes its stdin and waits up to `wait` for the exec client to exit; kills it past that.
    pub(super) fn end_client(&self, wait: Duration) {
        self.close_stdin();
        if self.client.wait_until(Instant::now() + wait).is_none() {
            self.client.kill_and_wait();
        }
    }
}
