//! The session's watch: a thread that takes the steps of [`Stop`] against the running command
//! when they are due, whatever the caller is doing (waiting, writing its input, busy with
//! something else, or not calling at all), and the one place where a command is interrupted
//! or killed, also on request ([`Interrupter`](super::Interrupter), `Running::interrupt`).
//!
//! Starting a command costs one uncontended lock, and a wake-up of the thread only when the
//! command's deadline comes before the one the thread sleeps towards; finishing it, two locks.
//! A step is taken under the `acting` lock, so steps never overlap, and none is left in flight
//! once the command is finished.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use super::protocol::{self, Token};
use super::readers::Router;
use super::shell::{Client, Line};
use super::signal::Signaller;
use super::stop::{Abort, Action, Outcome, Stop};
use super::{TICK, lock};
use crate::error::{Error, Result};
use crate::reap::{Procs, Reaped, Signal};
use crate::state::State;

/// Stack of the watch thread: it runs the signalling execs.
const WATCH_STACK: usize = 256 * 1024;

/// What the watch and the session share.
pub(super) struct Watch {
    state: Mutex<Plan>,
    wake: Condvar,
    /// Held while a step is taken.
    acting: Mutex<()>,
    signaller: Arc<Signaller>,
    /// The shell's stdin, for the recovery line.
    line: Arc<Mutex<Line>>,
    router: Arc<Router>,
    client: Arc<Client>,
}

/// What the watch thread follows and when it looks next.
struct Plan {
    running: Option<Watched>,
    /// When the thread looks next; `None` while it waits to be told.
    planned: Option<Instant>,
    closed: bool,
}

/// The running command.
struct Watched {
    seq: u64,
    token: Token,
    stop: Stop,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").field("signaller", &self.signaller).finish_non_exhaustive()
    }
}

impl Watch {
    /// Starts the watch of a session.
    pub(super) fn start(
        signaller: Arc<Signaller>,
        line: Arc<Mutex<Line>>,
        router: Arc<Router>,
        client: Arc<Client>,
        name: String,
    ) -> std::io::Result<(Arc<Watch>, JoinHandle<()>)> {
        let watch = Arc::new(Watch {
            state: Mutex::new(Plan { running: None, planned: None, closed: false }),
            wake: Condvar::new(),
            acting: Mutex::new(()),
            signaller,
            line,
            router,
            client,
        });
        let run = Arc::clone(&watch);
        let thread = std::thread::Builder::new().name(name).stack_size(WATCH_STACK).spawn(move || run.run())?;
        Ok((watch, thread))
    }

    /// Command `seq` has been sent: watch it.
    pub(super) fn begin(&self, seq: u64, token: Token, stop: Stop) {
        let due = stop.due(self.router.last_output(), false);
        let mut state = lock(&self.state);
        state.running = Some(Watched { seq, token, stop });
        if due.is_some_and(|due| state.planned.is_none_or(|planned| due < planned)) {
            self.wake.notify_one();
        }
    }

    /// Command `seq` is over: waits for a step in flight, and returns how it was stopped.
    pub(super) fn end(&self, seq: u64) -> Option<Stop> {
        let _acting = lock(&self.acting);
        let mut state = lock(&self.state);
        state.running.take_if(|w| w.seq == seq).map(|w| w.stop)
    }

    /// Aborts the running command on request, if any, `how` hard; then follows it up as a
    /// timeout's interrupt is if it does not end.
    ///
    /// # Errors
    /// When the signal cannot be sent.
    pub(super) fn ask(&self, how: Abort) -> Result<()> {
        let _acting = lock(&self.acting);
        let (seq, token, action) = {
            let mut state = lock(&self.state);
            let Some(w) = state.running.as_mut() else { return Ok(()) };
            let Some(action) = w.stop.ask(how) else { return Ok(()) };
            (w.seq, w.token, action)
        };
        let (outcome, error) = self.act(seq, token, action);
        self.book(seq, action, outcome);
        error.map_or(Ok(()), Err)
    }

    /// Interrupts command `seq` as Ctrl-C typed on its terminal does: SIGINT to its processes
    /// and the shell, as [`ask`](Watch::ask) does, with no kill after the grace (a program that
    /// takes SIGINT as a key, as a REPL does, goes on). Nothing, if it is being stopped already.
    #[cfg(feature = "terminal")]
    pub(super) fn keyed(&self, seq: u64) {
        let _acting = lock(&self.acting);
        let token = {
            let state = lock(&self.state);
            let Some(w) = state.running.as_ref().filter(|w| w.seq == seq && !w.stop.stopping()) else { return };
            w.token
        };
        let (_, error) = self.act(seq, token, Action::Interrupt);
        if let Some(e) = error {
            log::warn!("relaying Ctrl-C typed on a terminal: {e}");
        }
    }

    /// The caller saw the shell's exec client exit while command `seq` runs.
    pub(super) fn shell_gone(&self, seq: u64) {
        let mut state = lock(&self.state);
        if let Some(w) = state.running.as_mut().filter(|w| w.seq == seq) {
            w.stop.shell_gone(Instant::now());
            self.wake.notify_one();
        }
    }

    /// Whether command `seq` is being stopped, or an interrupt of it was asked for: its end is
    /// on the way.
    pub(super) fn stopping(&self, seq: u64) -> bool {
        lock(&self.state).running.as_ref().is_some_and(|w| w.seq == seq && w.stop.stopping())
    }

    /// Whether a signal to command `seq` could not be sent: the container is out of reach.
    pub(super) fn unreachable(&self, seq: u64) -> bool {
        lock(&self.state).running.as_ref().is_some_and(|w| w.seq == seq && w.stop.unreachable())
    }

    /// Ends the thread.
    pub(super) fn close(&self) {
        lock(&self.state).closed = true;
        self.wake.notify_one();
    }

    /// The thread: sleeps until the running command's next step is due, and takes it.
    fn run(&self) {
        loop {
            let mut state = lock(&self.state);
            if state.closed {
                return;
            }
            let (last, wait) = (self.router.last_output(), self.router.readers_wait());
            let now = Instant::now();
            let mut due = state.running.as_ref().and_then(|w| w.stop.due(last, wait));
            if wait && state.running.is_some() {
                // Readers waiting for the caller to take the output: looked at again soon.
                due = Some(due.map_or(now + TICK, |due| due.min(now + TICK)));
            }
            if due.is_none_or(|due| due > now) {
                state.planned = due;
                match due {
                    Some(due) => drop(self.wake.wait_timeout(state, due - now)),
                    None => drop(self.wake.wait(state)),
                }
                continue;
            }
            state.planned = Some(now);
            drop(state);
            let _acting = lock(&self.acting);
            let step = {
                let mut state = lock(&self.state);
                let (last, wait) = (self.router.last_output(), self.router.readers_wait());
                state.running.as_mut().and_then(|w| Some((w.seq, w.token, w.stop.step(Instant::now(), last, wait)?)))
            };
            if let Some((seq, token, action)) = step {
                let (outcome, _) = self.act(seq, token, action);
                self.book(seq, action, outcome);
            }
        }
    }

    /// Books what a step achieved, if its command is still the running one.
    fn book(&self, seq: u64, action: Action, outcome: Outcome) {
        let mut state = lock(&self.state);
        if let Some(w) = state.running.as_mut().filter(|w| w.seq == seq) {
            w.stop.done(action, outcome, Instant::now());
        }
        // The next step may be due sooner than planned.
        self.wake.notify_one();
    }

    /// Takes `action` against command `seq`; the error, if it failed.
    fn act(&self, seq: u64, token: Token, action: Action) -> (Outcome, Option<Error>) {
        let target = &self.signaller.target;
        let signalled = match action {
            Action::Interrupt | Action::Kill => {
                let how = if action == Action::Interrupt { Abort::Interrupt } else { Abort::Kill };
                let (procs, signal) = self.signaller.abort_procs(how);
                let signalled = self.signaller.signal(procs, signal, None);
                if let Ok(Reaped::Signalled(_)) = &signalled {
                    // The shell drops the rest of the command, frame included, or bash runs
                    // the rest of its frame: either way this line ends the command.
                    self.router.recovering(seq, token.marker());
                    let recovery = protocol::encode_recovery(self.signaller.dialect, &token);
                    if let Err(e) = lock(&self.line).write(recovery.as_bytes(), target) {
                        log::debug!("{e}");
                    }
                }
                signalled
            }
            Action::KillShell => {
                log::warn!("the shell in {target} does not come back; killing the session");
                self.signaller.signal(Procs::Session, Signal::Kill, None)
            }
            Action::KillClient => {
                self.client.kill();
                Ok(Reaped::Signalled(Vec::new()))
            }
            Action::GiveUp => {
                self.router.abandon(seq);
                Ok(Reaped::Signalled(Vec::new()))
            }
        };
        let (outcome, error) = outcome(signalled);
        if let (Outcome::Unreachable, Some(e)) = (&outcome, &error) {
            log::warn!("stopping a command in {target} ({action:?}): {e}");
        }
        (outcome, error)
    }
}

/// What a step achieved, from what its signalling said; the error, if it failed.
fn outcome(signalled: Result<Reaped>) -> (Outcome, Option<Error>) {
    match signalled {
        Ok(Reaped::Signalled(tree)) => (Outcome::Done(tree), None),
        Ok(Reaped::ShellGone | Reaped::Restarted) => (Outcome::ShellGone, None),
        // Gone with the container: nothing left to stop.
        Err(e @ Error::ContainerNotFound { .. }) => (Outcome::ShellGone, Some(e)),
        // A stopped container has no processes left; a paused one still has them all.
        Err(e @ Error::ContainerNotRunning { state, .. }) if state != State::Paused => (Outcome::ShellGone, Some(e)),
        Err(e) => (Outcome::Unreachable, Some(e)),
    }
}

/// Interrupts a session's running command from any thread, while the session itself is
/// busy in [`Session::exec`](super::Session::exec). Made by
/// [`Session::interrupter`](super::Session::interrupter).
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
    pub(super) watch: Arc<Watch>,
}

impl Interrupter {
    /// Aborts the running command as Ctrl-C does at a prompt: nothing after the interrupted
    /// part runs (the rest of a list, a loop, a function), while the shell keeps its state.
    /// SIGINT goes to the command's processes; background jobs of earlier commands are spared.
    /// The command returns what it printed so far, with exit code 130. If it has not ended a
    /// grace period later (what ignores SIGINT), its processes are killed, as after a timeout;
    /// so are those it leaves running when it ends (its own background jobs). Does nothing
    /// when no command is running, or one is being stopped already.
    ///
    /// # Errors
    /// When the signalling exec fails, e.g. the container is gone.
    pub fn interrupt(&self) -> Result<()> {
        self.watch.ask(Abort::Interrupt)
    }

    /// Aborts the running command with SIGKILL to its processes at once, for what ignores
    /// SIGINT; the shell abandons the command as on [`interrupt`](Interrupter::interrupt) and
    /// keeps its state.
    ///
    /// # Errors
    /// As for [`interrupt`](Interrupter::interrupt).
    pub fn kill(&self) -> Result<()> {
        self.watch.ask(Abort::Kill)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Runtime;

    fn not_running(state: State) -> Error {
        let (engine_state, message) = (String::new(), String::new());
        Error::ContainerNotRunning {
            via: Runtime::Docker.into(),
            container: "web".into(),
            state,
            engine_state,
            message,
        }
    }

    #[test]
    fn a_step_that_signalled_is_done_with_what_it_reached() {
        assert_eq!(outcome(Ok(Reaped::Signalled(vec![7, 8]))).0, Outcome::Done(vec![7, 8]));
        assert_eq!(outcome(Ok(Reaped::Signalled(Vec::new()))).0, Outcome::Done(Vec::new()));
    }

    #[test]
    fn a_shell_gone_or_a_restarted_container_ends_the_steps() {
        for reaped in [Reaped::ShellGone, Reaped::Restarted] {
            assert!(matches!(outcome(Ok(reaped)), (Outcome::ShellGone, None)));
        }
        let gone =
            Error::ContainerNotFound { via: Runtime::Podman.into(), container: "web".into(), message: "gone".into() };
        assert!(matches!(outcome(Err(gone)), (Outcome::ShellGone, Some(Error::ContainerNotFound { .. }))));
        for state in [State::Exited, State::Stopped] {
            assert!(matches!(outcome(Err(not_running(state))), (Outcome::ShellGone, Some(_))));
        }
    }

    #[test]
    fn a_paused_container_or_a_silent_engine_is_out_of_reach() {
        assert!(matches!(outcome(Err(not_running(State::Paused))), (Outcome::Unreachable, Some(_))));
        let silent = Error::io("signal", std::io::Error::from(std::io::ErrorKind::TimedOut));
        assert!(matches!(outcome(Err(silent)), (Outcome::Unreachable, Some(Error::Io { .. }))));
    }
}
