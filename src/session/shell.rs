//! The running shell: its stdin, the reaper that signals its processes from outside, and the
//! end of its life (exit, clean-up, close).

use std::io::Write;
use std::process::ChildStdin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::protocol::{self, Dialect, Token};
use super::route::Shared;
use super::{Life, Session, lock};
use crate::engine::{Engine, Op, REAP_SCRIPT};
use crate::error::{Error, Result};
use crate::proc;
use crate::state::ContainerState;
use crate::text;

/// Longest time a signalling exec may take.
pub(super) const REAP_TIMEOUT: Duration = Duration::from_secs(5);

/// What the second exec signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope<'a> {
    /// The running command's process tree (background jobs of earlier commands are spared),
    /// and the shell itself with these signals (space-separated, may be empty).
    Command(&'a str),
    /// Every process of the session, the shell included.
    Session,
    /// These processes, if still in the session, and their descendants.
    Pids(&'a [u32]),
    /// Every process whose environment holds this `NAME=VALUE`, and its descendants.
    Environ(&'a str),
}

/// The shell's stdin, and the command it is running: shared with [`Interrupter`]s, which
/// write a recovery line after they signal the shell.
pub(super) struct Line {
    pub(super) stdin: Option<ChildStdin>,
    /// The running command's number and sentinel.
    pub(super) running: Option<(u64, Token)>,
}

impl Line {
    pub(super) fn write(&mut self, bytes: &[u8], target: &str) -> Result<()> {
        let stdin = self.stdin.as_mut().ok_or_else(|| {
            Error::io("writing to the shell", std::io::Error::new(std::io::ErrorKind::BrokenPipe, "stdin closed"))
        })?;
        stdin.write_all(bytes).map_err(|e| Error::io(format!("writing to the shell in {target}"), e))
    }
}

/// How hard to abort the running command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Abort {
    /// SIGINT to the shell and the command's processes: Ctrl-C.
    Interrupt,
    /// SIGKILL to the command's processes, SIGINT to the shell.
    Kill,
}

/// Signals processes of one session from outside it. Shared with [`Interrupter`]s.
pub(super) struct Reaper {
    pub(super) engine: Engine,
    pub(super) target: String,
    pub(super) user: Option<String>,
    pub(super) shell: String,
    pub(super) pid: u32,
    pub(super) dialect: Dialect,
    pub(super) watermark: Mutex<Watermark>,
    pub(super) line: Arc<Mutex<Line>>,
    pub(super) shared: Arc<Shared>,
}

/// The newest background job the shell started, and the boot time (centiseconds) when the
/// command that started it ended: the shell's children that started later are the running
/// command's, the others are background jobs to spare. Without the time (the shell could not
/// read `/proc/uptime`), children with a higher PID are taken for the command's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Watermark {
    pub(super) pid: u32,
    pub(super) since: Option<u64>,
}

impl Watermark {
    /// As `reap.sh` takes it: `PID` or `PID:SINCE`.
    pub(super) fn arg(&self) -> String {
        match self.since {
            Some(since) => format!("{}:{since}", self.pid),
            None => self.pid.to_string(),
        }
    }
}

impl std::fmt::Debug for Reaper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reaper")
            .field("runtime", &self.engine.runtime())
            .field("target", &self.target)
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

impl Reaper {
    /// The `$!` a frame compares with to decide whether to stamp the boot time: the newest
    /// one the session knows, or one no `$!` can be while the session has no time for it yet
    /// (an aborted command's recovery line does not stamp).
    pub(super) fn known_job(&self) -> u32 {
        let mark = lock(&self.watermark);
        if mark.pid == 0 || mark.since.is_some() { mark.pid } else { u32::MAX }
    }

    /// Books what a command's sentinel said about background jobs.
    pub(super) fn saw(&self, status: protocol::Status) {
        let mut mark = lock(&self.watermark);
        if status.last_job != mark.pid {
            *mark = Watermark { pid: status.last_job, since: status.since };
        } else if mark.since.is_none() {
            mark.since = status.since;
        }
    }

    /// Aborts the running command, if any: signals the shell and the command's processes,
    /// then writes the recovery line. Returns the command's processes it signalled.
    pub(super) fn abort(&self, how: Abort) -> Result<Vec<u32>> {
        let mut line = lock(&self.line);
        let Some((seq, token)) = line.running else { return Ok(Vec::new()) };
        let (tree, shell) = match (how, self.dialect) {
            (Abort::Interrupt, _) => ("INT", "INT"),
            (Abort::Kill, Dialect::Posix) => ("KILL", "INT"),
            // bash takes a child killed by anything but SIGINT to have handled the interrupt,
            // and goes on: its WINCH trap re-raises SIGINT once the child is gone.
            (Abort::Kill, Dialect::Bash) => ("KILL", "INT WINCH"),
        };
        let signalled = self.signal(Scope::Command(shell), tree, None)?;
        self.shared.recovering(seq, token.marker());
        let recovery = protocol::encode_recovery(self.dialect, &token);
        // Failing to write means the shell is gone; waiting for the command finds out how.
        let _ = line.write(recovery.as_bytes(), &self.target);
        Ok(signalled)
    }

    /// Signals the processes of `scope`; returns the PIDs it signalled (never the shell's).
    pub(super) fn signal(&self, scope: Scope<'_>, signal: &str, remove_dir: Option<&str>) -> Result<Vec<u32>> {
        let (scope_arg, shell_signals, pids) = match scope {
            Scope::Command(shell) => ("command", shell, &[][..]),
            Scope::Session => ("session", "", &[][..]),
            Scope::Pids(pids) => ("pids", "", pids),
            Scope::Environ(_) => ("environ", "", &[][..]),
        };
        let pid = self.pid.to_string();
        let mark = match scope {
            Scope::Environ(mark) => mark.to_string(),
            _ => lock(&self.watermark).arg(),
        };
        let mut args = vec![scope_arg, &pid, signal, shell_signals, &mark, remove_dir.unwrap_or("")];
        let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
        args.extend(pids.iter().map(String::as_str));
        let mut cmd = self.engine.reap(&self.target, self.user.as_deref(), &self.shell, &args);
        let out = self.engine.run_command(Op("signal", &self.target), &mut cmd, REAP_TIMEOUT)?;
        let signalled = String::from_utf8_lossy(&out.stdout);
        log::debug!(
            "signalled {scope_arg} of shell {} in {} with {signal}: [{}]",
            self.pid,
            self.target,
            signalled.trim()
        );
        if out.status.success() {
            Ok(signalled.split_ascii_whitespace().filter_map(|p| p.parse().ok()).collect())
        } else {
            let message = out.message();
            let fallback =
                self.engine.failed(Op("signal", &self.target), &cmd, format!("{scope_arg} {signal}: {message}"));
            Err(self.engine.diagnose(&self.target, &message, fallback))
        }
    }
}

/// Interrupts a session's running command from any thread, while the session itself is
/// busy in [`Session::exec`]. Made by [`Session::interrupter`].
///
/// ```
/// # fn main() -> boxshell::Result<()> {
/// use std::time::Duration;
/// let mut sh = boxshell::Session::builder("-").runtime(boxshell::Runtime::Local).open()?;
/// let stop = sh.interrupter();
/// let t = std::thread::spawn(move || {
///     std::thread::sleep(Duration::from_millis(300));
///     stop.interrupt()
/// });
/// let out = sh.exec("sleep 30; echo never")?;
/// assert_eq!(out.exit_code, 130); // 128 + SIGINT
/// assert_eq!(out.stdout, b"");
/// t.join().unwrap()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Interrupter {
    pub(super) reaper: Arc<Reaper>,
}

impl Interrupter {
    /// Aborts the running command as Ctrl-C does at a prompt: SIGINT to it and to the shell,
    /// so nothing after the interrupted part runs (the rest of a list, a loop, a function),
    /// while the shell keeps its state. Background jobs of earlier commands are spared. The
    /// command returns what it printed so far, with exit code 130. Does nothing when no command
    /// is running.
    ///
    /// # Errors
    /// When the signalling exec fails, e.g. the container is gone.
    pub fn interrupt(&self) -> Result<()> {
        self.reaper.abort(Abort::Interrupt).map(drop)
    }

    /// Aborts the running command with SIGKILL to its processes, for what ignores SIGINT; the
    /// shell is interrupted as by [`interrupt`](Interrupter::interrupt) and keeps its state.
    ///
    /// # Errors
    /// As for [`interrupt`](Interrupter::interrupt).
    pub fn kill(&self) -> Result<()> {
        self.reaper.abort(Abort::Kill).map(drop)
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
        let status = proc::wait_until(&mut self.child, Instant::now() + self.timeouts.close).or_else(|| {
            let _ = self.child.kill();
            self.child.wait().ok()
        });
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
        match self.reaper.signal(Scope::Session, "KILL", dir.as_deref()) {
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
        let _ = self.child.kill();
        let _ = self.child.wait();
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
        self.join_readers();
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
        let mut script = String::from(
            "\\command unalias -a 2>/dev/null; \\command unset -f kill read set test echo 2>/dev/null; set +eu; IFS=' '; ",
        );
        if let Some(dir) = self.stdin_dir() {
            script.push_str("\\command rm -rf -- ");
            text::quote_into(&mut script, &dir);
            script.push_str("; ");
        }
        script.push_str(
            "if \\command read -r l </proc/$$/stat; then set -- ${l##*) }; fi; \
             if [ \"${3-}\" = \"$$\" ]; then echo leader; else set -- session \"$$\" KILL '' 0 ''\n",
        );
        script.push_str(REAP_SCRIPT);
        script.push_str("\nfi");
        let close = self.timeouts.close;
        match self.cmd(script).timeout(close).max_output(4096).run() {
            Ok(out) if out.success() && self.life == Life::Closing => {
                let last = if out.stdout == b"leader\n" { "\\command kill -s KILL 0\n" } else { "exit 0\n" };
                let _ = self.write(last.as_bytes());
                lock(&self.line).stdin = None;
                if proc::wait_until(&mut self.child, Instant::now() + close).is_none() {
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
        if proc::wait_until(&mut self.child, Instant::now() + self.timeouts.close).is_none() {
            self.kill_client();
        }
        result
    }

    /// Waits briefly for the reader threads; they end at EOF. One that does not (a process
    /// that escaped the session still holds a pipe) is left to end on its own.
    pub(super) fn join_readers(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(1);
        proc::poll_until(deadline, proc::QUICK_POLL, || self.readers.iter().all(|r| r.is_finished()));
        for reader in self.readers.drain(..) {
            if reader.is_finished() {
                let _ = reader.join();
            } else {
                log::warn!("a reader of session {} is still blocked; leaving it to end on its own", self.id);
            }
        }
    }
}
