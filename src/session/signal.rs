//! Signalling a session's processes from outside its shell: `reap.sh` run by a second, short
//! exec (killing the exec client reaches nothing inside the container). Every call checks, in
//! the same exec, that the container is still the instance the session was opened in.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::lock;
use super::protocol::{self, Dialect};
use super::stop::Abort;
use crate::engine::{Engine, Op};
use crate::error::Result;
use crate::proc::{self, RunError};
use crate::reap::{Instance, Procs, Reap, Reaped, Signal, Watermark};

/// Longest time one signalling exec may take; one that does not answer in time is tried once
/// more before the container is taken to be out of reach. An engine serves the execs into one
/// container one at a time: podman, with six queued, takes 1.5 s for the median one and up to
/// 8.5 s (measured on a 2-core machine).
const REAP_TIMEOUT: Duration = Duration::from_secs(10);

/// How long after a command that started a background job the next command may be written:
/// more than one clock tick (10 ms) of process start times, so that the processes of later
/// commands start in a later tick than that job, and `reap.sh` tells them apart.
const TICK_APART: Duration = Duration::from_millis(12);

/// The watermark, and when its time was learnt.
#[derive(Debug, Default)]
struct Jobs {
    mark: Watermark,
    stamped: Option<Instant>,
}

/// Signals processes of one session from outside it. Shared with the watch and interrupters.
pub(super) struct Signaller {
    pub(super) engine: Engine,
    pub(super) target: String,
    pub(super) user: Option<String>,
    /// The shell program (runs `reap.sh`).
    pub(super) shell: String,
    pub(super) pid: u32,
    pub(super) dialect: Dialect,
    pub(super) instance: Instance,
    jobs: Mutex<Jobs>,
}

impl std::fmt::Debug for Signaller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signaller")
            .field("runtime", &self.engine.runtime())
            .field("target", &self.target)
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

impl Signaller {
    pub(super) fn new(
        engine: Engine,
        target: String,
        user: Option<String>,
        shell: String,
        pid: u32,
        dialect: Dialect,
        instance: Instance,
    ) -> Signaller {
        Signaller { engine, target, user, shell, pid, dialect, instance, jobs: Mutex::default() }
    }

    /// The `$!` a frame compares with to decide whether to stamp the boot time: the newest
    /// one the session knows, or one no `$!` can be while the session has no time for it yet
    /// (an aborted command's recovery line does not stamp).
    pub(super) fn known_job(&self) -> u32 {
        let jobs = lock(&self.jobs);
        if jobs.mark.last_job == 0 || jobs.mark.since.is_some() { jobs.mark.last_job } else { u32::MAX }
    }

    /// What tells the next command's processes from earlier background jobs.
    #[cfg(feature = "terminal")]
    pub(super) fn watermark(&self) -> Watermark {
        lock(&self.jobs).mark
    }

    /// Books what a command's sentinel said about background jobs.
    pub(super) fn saw(&self, status: protocol::Status) {
        let mut jobs = lock(&self.jobs);
        let stamped = status.since.is_some() && (status.last_job != jobs.mark.last_job || jobs.mark.since.is_none());
        if status.last_job != jobs.mark.last_job {
            jobs.mark = Watermark { last_job: status.last_job, since: status.since };
        } else if jobs.mark.since.is_none() {
            jobs.mark.since = status.since;
        }
        if stamped {
            jobs.stamped = Some(Instant::now());
        }
    }

    /// Waits, if need be, until the next command can be told from the background jobs by
    /// start time (see [`TICK_APART`]): only right after a command that started one.
    pub(super) fn tick_apart(&self) {
        let stamped = lock(&self.jobs).stamped;
        if let Some(wait) = stamped.and_then(|t| (t + TICK_APART).checked_duration_since(Instant::now())) {
            std::thread::sleep(wait);
        }
    }

    /// What to signal to abort the running command, `how` hard: SIGINT or SIGKILL to its
    /// processes, and to the shell what makes it abandon the rest of the command.
    ///
    /// bash gets only SIGWINCH, whose trap raises SIGINT in it when it is between two commands:
    /// a SIGINT that reaches bash while it waits for a child is taken back if the child then
    /// exits normally (bash assumes the child handled it, and goes on with the command), which
    /// happens whenever the child was about to exit as the interrupt came. Its children still
    /// get SIGINT, and bash, not interrupted itself, then runs the trap. dash and busybox are
    /// interrupted themselves; their INT trap abandons the command at a safe point.
    pub(super) fn abort_procs(&self, how: Abort) -> (Procs<'static>, Signal) {
        abort_procs(how, self.dialect)
    }

    /// Signals the processes of `procs` with `signal`, then removes `remove`.
    ///
    /// # Errors
    /// When the exec fails or does not answer (twice), with why (the container is gone, not
    /// running, the engine does not answer).
    pub(super) fn signal(&self, procs: Procs<'_>, signal: Signal, remove: Option<&str>) -> Result<Reaped> {
        let reap =
            Reap { procs, signal, shell: self.pid, instance: self.instance, watermark: lock(&self.jobs).mark, remove };
        let args = reap.args();
        let op = Op("signal", &self.target);
        let mut attempt = 1;
        let (cmd, out) = loop {
            let mut cmd = self.engine.reap(&self.target, self.user.as_deref(), &self.shell, &reap);
            // Its answer is its last line (after any a remote login prints): the client need not
            // be waited for after it.
            let answered = |out: &[u8]| out.ends_with(b"\n") && Reaped::parse(out).is_some();
            match proc::run_until_answered(&mut cmd, REAP_TIMEOUT, answered) {
                Ok(out) => break (cmd, out),
                Err(RunError::Spawn(e)) => return Err(self.engine.spawn_error(cmd.get_program(), e)),
                Err(RunError::TimedOut { stderr, .. }) if attempt == 2 => {
                    let said = proc::said(&stderr);
                    let message = format!("{} {}: no answer within {REAP_TIMEOUT:?}, twice {said}", args[0], args[2]);
                    return Err(self.engine.failed(op, &cmd, message.trim_end().to_string()));
                }
                Err(RunError::TimedOut { .. }) => {
                    log::warn!("signalling in {}: no answer within {REAP_TIMEOUT:?}; trying again", self.target);
                    attempt += 1;
                }
            }
        };
        if !out.status.success() {
            let message = out.message();
            let fallback = self.engine.failed(op, &cmd, format!("{} {}: {message}", args[0], args[2]));
            return Err(self.engine.diagnose(&self.target, &message, fallback));
        }
        let reaped = Reaped::parse(&out.stdout)
            .ok_or_else(|| self.engine.failed(op, &cmd, format!("unexpected answer {:?}", proc::said(&out.stdout))))?;
        log::debug!("signalled {} of shell {} in {} with {}: {reaped:?}", args[0], self.pid, self.target, args[2]);
        if reaped == Reaped::Restarted {
            log::info!(
                "{} was restarted since the session with shell {} opened: nothing signalled",
                self.target,
                self.pid
            );
        }
        Ok(reaped)
    }
}

/// See [`Signaller::abort_procs`].
fn abort_procs(how: Abort, dialect: Dialect) -> (Procs<'static>, Signal) {
    let (tree, shell): (_, &'static [Signal]) = match (how, dialect) {
        (Abort::Interrupt, Dialect::Posix) => (Signal::Int, &[Signal::Int]),
        (Abort::Interrupt, Dialect::Bash) => (Signal::Int, &[Signal::Winch]),
        (Abort::Kill, Dialect::Posix) => (Signal::Kill, &[Signal::Int]),
        // After an interrupt that did not end the command, both: the trap may be the
        // command's own now.
        (Abort::Kill, Dialect::Bash) => (Signal::Kill, &[Signal::Int, Signal::Winch]),
    };
    (Procs::Command(shell), tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bash_is_interrupted_through_its_winch_trap_and_others_directly() {
        let procs = |how, dialect| match abort_procs(how, dialect) {
            (Procs::Command(shell), tree) => (shell.to_vec(), tree),
            other => panic!("{other:?}"),
        };
        assert_eq!(procs(Abort::Interrupt, Dialect::Posix), (vec![Signal::Int], Signal::Int));
        assert_eq!(procs(Abort::Interrupt, Dialect::Bash), (vec![Signal::Winch], Signal::Int));
        assert_eq!(procs(Abort::Kill, Dialect::Posix), (vec![Signal::Int], Signal::Kill));
        assert_eq!(procs(Abort::Kill, Dialect::Bash), (vec![Signal::Int, Signal::Winch], Signal::Kill));
    }
}
