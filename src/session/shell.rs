//! The running shell: its exec client, its stdin, and the end of its life (exit, clean-up,
//! close).

use std::io::Write;
use std::process::{Child, ChildStdin, ExitStatus};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::command::UNSHADOWED;
use super::{Life, Session, lock};
use crate::error::{Error, Result};
use crate::proc;
use crate::reap::{Reap, Scope, Signal};
use crate::state::ContainerState;
use crate::text;

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

impl Session {
    pub(super) fn write(&mut self, bytes: &[u8]) -> Result<()> {
        lock(&self.line).write(bytes, &self.target)
    }

    /// [`Error::ShellExited`], with the shell's exit code when known.
    pub(super) fn shell_exited(&self) -> Error {
        Error::ShellExited {
            runtime: self.engine.runtime().clone(),
            container: self.target.clone(),
            code: self.life.exit_code(),
        }
    }

    /// Records that the shell has exited: reaps the exec client (within the close timeout)
    /// and, when the container can be reached, ends whatever the shell left running.
    pub(super) fn mark_dead(&mut self, code: Option<i32>, reachable: bool) {
        let closing = match self.life {
            Life::Live => false,
            Life::Closing => true,
            Life::Exited { .. } | Life::Closed => return,
        };
        lock(&self.line).stdin = None;
        let status =
            self.client.wait_until(Instant::now() + self.timeouts.close).or_else(|| self.client.kill_and_wait());
        let code = code.or(status.map(proc::exit_code));
        log::info!("the shell of session {} in {} exited (code {code:?})", self.id, self.target);
        // A shell that ends while closing is cleaned up by `close` itself. One that cannot be
        // reached (paused container, engine gone) is not signalled again now: `close` tries.
        let cleanup_owed = !closing && (!reachable || self.reap_leftovers().is_err());
        self.life = Life::Exited { code, cleanup_owed };
    }

    /// Kills what the shell left behind (background jobs outliving `exit`), and its temporary
    /// files. A container that is gone or stopped has nothing left.
    pub(super) fn reap_leftovers(&self) -> Result<()> {
        let dir = self.stdin_dir();
        match self.signaller.signal(Scope::Session, Signal::Kill, dir.as_deref()) {
            Ok(_) | Err(Error::ContainerNotFound { .. }) => Ok(()),
            // A stopped container has no processes left; a paused one still has them all.
            Err(Error::ContainerNotRunning { state, .. }) if state != ContainerState::Paused => Ok(()),
            Err(e) => {
                log::warn!("cleaning up after the session in {}: {e}", self.target);
                Err(e)
            }
        }
    }

    pub(super) fn stdin_dir(&self) -> Option<String> {
        self.temp_dir_made.then(|| self.temp_dir())
    }

    /// Kills the exec client (not what it started in the container).
    pub(super) fn kill_client(&mut self) {
        lock(&self.line).stdin = None;
        self.client.kill_and_wait();
    }

    /// Ends the shell and everything it started, once: `close` and `Drop`.
    pub(super) fn shutdown(&mut self) -> Result<()> {
        let result = match std::mem::replace(&mut self.life, Life::Closing) {
            Life::Closed | Life::Closing => {
                self.life = Life::Closed;
                return Ok(());
            }
            Life::Exited { cleanup_owed: true, .. } => self.reap_leftovers(),
            Life::Exited { .. } => Ok(()),
            Life::Live if self.pending.is_none() => self.clean_exit(),
            Life::Live => self.kill_session(),
        };
        self.life = Life::Closed;
        self.join_threads();
        log::info!("session {} in {} closed", self.id, self.target);
        result
    }

    /// Has an idle shell clean up after itself, as a command: no second exec needed. As the
    /// leader of its own process group (an exec makes it one, and so does this library for a
    /// local shell), it is then told to end the group, itself included, with one signal, which
    /// the kernel delivers atomically with respect to fork. Otherwise it finds what it started
    /// in /proc (slow in a crowded container: busybox reads one byte per system call) and
    /// exits. Falls back to [`kill_session`](Session::kill_session).
    fn clean_exit(&mut self) -> Result<()> {
        // At close the user's aliases and functions may go: none then changes what runs. The
        // rest is read after they went (aliases are expanded as a line is read).
        let mut script = format!(
            "\\command unalias -a 2>/dev/null; \\command unset -f {UNSHADOWED} 2>/dev/null\nset +eu; IFS=' '; "
        );
        if let Some(dir) = self.stdin_dir() {
            script.push_str("\\command rm -rf -- ");
            text::quote_into(&mut script, &dir);
            script.push_str("; ");
        }
        script.push_str(
            "if \\command read -r l </proc/$$/stat; then set -- ${l##*) }; fi; \
             if [ \"${3-}\" = \"$$\" ]; then echo leader; else ",
        );
        let reap = Reap {
            scope: Scope::Session,
            signal: Signal::Kill,
            shell: self.signaller.pid,
            instance: self.signaller.instance,
            watermark: Default::default(),
            remove: None,
        };
        script.push_str(&reap.inline());
        script.push_str("\nfi");
        let close = self.timeouts.close;
        match self.cmd(script).timeout(close).max_output(4096).run() {
            Ok(out) if out.success() && self.life == Life::Closing => {
                let last = if out.stdout == b"leader\n" { "\\command kill -s KILL 0\n" } else { "\\command exit 0\n" };
                let _ = self.write(last.as_bytes());
                lock(&self.line).stdin = None;
                if self.client.wait_until(Instant::now() + close).is_none() {
                    // The container is clean; only the client is slow to go.
                    self.kill_client();
                }
                Ok(())
            }
            _ => self.kill_session(),
        }
    }

    /// Kills the shell and its processes from outside, then the exec client.
    pub(super) fn kill_session(&mut self) -> Result<()> {
        let result = self.reap_leftovers();
        lock(&self.line).stdin = None;
        if self.client.wait_until(Instant::now() + self.timeouts.close).is_none() {
            self.kill_client();
        }
        result
    }

    /// Ends the watch, and waits briefly for it and the reader threads; readers end at EOF.
    /// One that does not (a process that escaped the session still holds a pipe) is left to
    /// end on its own, as is a watch still waiting for a signalling exec.
    pub(super) fn join_threads(&mut self) {
        self.watch.close();
        let deadline = Instant::now() + Duration::from_secs(1);
        proc::poll_until(deadline, proc::QUICK_POLL, || self.threads.iter().all(|r| r.is_finished()));
        for thread in self.threads.drain(..) {
            if thread.is_finished() {
                let _ = thread.join();
            } else {
                let name = thread.thread().name().unwrap_or_default().to_string();
                log::warn!("thread {name} of session {} is still blocked; leaving it to end on its own", self.id);
            }
        }
    }
}
