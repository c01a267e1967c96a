//! Stopping a command, as a state machine without I/O: what is due when, what to do next, and
//! how the command was stopped. [`watch`](super::watch) runs it against the real shell and
//! clock; the tests below run it against a made-up clock.
//!
//! A command past its deadline (or silent past its idle timeout, or interrupted on request)
//! is stopped step by step, each step given the grace period to work before the next:
//!
//! 1. [`Action::Interrupt`]: SIGINT to the command's processes and, through its trap, the
//!    shell, which abandons the rest of the command as at a prompt; then the recovery line.
//! 2. [`Action::Kill`]: SIGKILL to the command's processes, for what ignores SIGINT (or a
//!    shell that took the interrupt as handled and went on: bash does, when the SIGINT lands as
//!    its child exits normally); the shell is interrupted again.
//! 3. [`Action::KillShell`]: the shell does not come back: every process of the session ends.
//! 4. [`Action::KillClient`]: the exec client, in case the container cannot be reached.
//! 5. [`Action::GiveUp`]: the command's end will never be seen.
//!
//! A signal that cannot be sent (the container is paused, the engine does not answer) skips
//! to killing the exec client. Readers waiting for a caller who does not take the output are
//! no sign of a stuck shell: while they wait, a command is not idle and not killed for it.

use std::time::{Duration, Instant};

/// The time limits of one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Limits {
    /// From the start.
    pub(super) timeout: Option<Duration>,
    /// Since the command last printed.
    pub(super) idle: Option<Duration>,
}

/// How hard an interrupt asked for from outside is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Abort {
    /// Ctrl-C: SIGINT.
    Interrupt,
    /// SIGKILL to the command's processes at once.
    Kill,
}

/// Why a command is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cause {
    Timeout,
    Idle,
    /// Asked for: an interrupt or a kill.
    Asked,
}

/// One step against a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    Interrupt,
    Kill,
    KillShell,
    KillClient,
    GiveUp,
}

/// What a step achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Done; the command's processes it signalled.
    Done(Vec<u32>),
    /// The shell is not there any more (it exited, or the container was restarted).
    ShellGone,
    /// The container could not be reached.
    Unreachable,
}

/// Where the stopping of a command is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    /// Each later phase: its step was taken, and the next is due at the instant.
    Interrupted(Instant),
    Killed(Instant),
    ShellKilled(Instant),
    ClientKilled(Instant),
    GivenUp,
}

/// The stopping of one command.
#[derive(Debug, Clone)]
pub(super) struct Stop {
    deadline: Option<Instant>,
    idle: Option<Duration>,
    grace: Duration,
    phase: Phase,
    cause: Option<Cause>,
    /// The command's processes signalled so far: what survives the command is killed.
    tree: Vec<u32>,
    /// A signal could not be sent: cleaning up after the shell is left to `close`.
    unreachable: bool,
    /// The shell (or its exec client) was killed here: how the client exits says nothing of
    /// the connection.
    ended_the_shell: bool,
}

impl Stop {
    pub(super) fn new(started: Instant, limits: Limits, grace: Duration) -> Stop {
        Stop {
            deadline: limits.timeout.map(|t| started + t),
            idle: limits.idle,
            grace,
            phase: Phase::Running,
            cause: None,
            tree: Vec::new(),
            unreachable: false,
            ended_the_shell: false,
        }
    }

    /// When the next step is due, given when the command last printed and whether the readers
    /// are waiting for the caller to take its output; `None`: not unless something happens.
    pub(super) fn due(&self, last_output: Instant, readers_wait: bool) -> Option<Instant> {
        match self.phase {
            Phase::Running => {
                let idle = self.idle.filter(|_| !readers_wait).map(|idle| last_output + idle);
                match (self.deadline, idle) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            // The shell may be fine, only blocked on its output: no step until it is taken.
            Phase::Killed(_) if readers_wait => None,
            Phase::Interrupted(t) | Phase::Killed(t) | Phase::ShellKilled(t) | Phase::ClientKilled(t) => Some(t),
            Phase::GivenUp => None,
        }
    }

    /// The step due at `now`, if any.
    pub(super) fn step(&mut self, now: Instant, last_output: Instant, readers_wait: bool) -> Option<Action> {
        if self.due(last_output, readers_wait).is_none_or(|due| now < due) {
            return None;
        }
        Some(match self.phase {
            Phase::Running => {
                let timed_out = self.deadline.is_some_and(|d| now >= d);
                self.cause.get_or_insert(if timed_out { Cause::Timeout } else { Cause::Idle });
                Action::Interrupt
            }
            Phase::Interrupted(_) => Action::Kill,
            Phase::Killed(_) => Action::KillShell,
            Phase::ShellKilled(_) => Action::KillClient,
            Phase::ClientKilled(_) => Action::GiveUp,
            Phase::GivenUp => return None,
        })
    }

    /// The step to take now for an interrupt asked for from outside, if any: none once the
    /// command is being stopped harder already.
    pub(super) fn ask(&mut self, how: Abort) -> Option<Action> {
        let action = match (how, self.phase) {
            (Abort::Interrupt, Phase::Running) => Action::Interrupt,
            (Abort::Kill, Phase::Running | Phase::Interrupted(_)) => Action::Kill,
            _ => return None,
        };
        self.cause.get_or_insert(Cause::Asked);
        Some(action)
    }

    /// Books what `action` achieved, `now` being when it was done: the grace runs from the
    /// signal, not from before the exec that sent it (on a loaded engine that exec alone can
    /// take seconds). An interrupt asked for that could not be sent changes nothing: the asker
    /// gets the error.
    pub(super) fn done(&mut self, action: Action, outcome: Outcome, now: Instant) {
        let grace = now + self.grace;
        self.phase = match (action, outcome) {
            (Action::Interrupt | Action::Kill, Outcome::Unreachable)
                if self.phase == Phase::Running && self.cause == Some(Cause::Asked) =>
            {
                self.cause = None;
                Phase::Running
            }
            (_, Outcome::Unreachable) => {
                self.unreachable = true;
                // More signals would fail the same way: the exec client is next, at once.
                Phase::ShellKilled(now)
            }
            (_, Outcome::ShellGone) => Phase::ClientKilled(grace),
            (Action::Interrupt, Outcome::Done(tree)) => {
                self.tree.extend(tree);
                Phase::Interrupted(grace)
            }
            (Action::Kill, Outcome::Done(tree)) => {
                self.tree.extend(tree);
                Phase::Killed(grace)
            }
            (Action::KillShell, Outcome::Done(_)) => {
                self.ended_the_shell = true;
                Phase::ShellKilled(grace)
            }
            (Action::KillClient, Outcome::Done(_)) => {
                self.ended_the_shell = true;
                Phase::ClientKilled(grace)
            }
            (Action::GiveUp, Outcome::Done(_)) => Phase::GivenUp,
        };
    }

    /// The shell has exited (its exec client did) while something it left holds its pipes:
    /// the readers get the grace to see the end, then the command is given up.
    pub(super) fn shell_gone(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::ClientKilled(_) | Phase::GivenUp) {
            self.phase = Phase::ClientKilled(now + self.grace);
        }
    }

    /// Whether the command is being stopped (or an interrupt was asked for).
    pub(super) fn stopping(&self) -> bool {
        self.cause.is_some()
    }

    /// Whether the command's end will never be seen.
    #[cfg(test)]
    pub(super) fn given_up(&self) -> bool {
        self.phase == Phase::GivenUp
    }

    /// Whether the command was stopped by its timeout or idle timeout.
    pub(super) fn timed_out(&self) -> bool {
        matches!(self.cause, Some(Cause::Timeout | Cause::Idle))
    }

    /// The command's processes that were signalled.
    pub(super) fn tree(&self) -> &[u32] {
        &self.tree
    }

    /// Whether a signal could not be sent.
    pub(super) fn unreachable(&self) -> bool {
        self.unreachable
    }

    /// Whether the shell or its exec client was killed to stop the command.
    pub(super) fn ended_the_shell(&self) -> bool {
        self.ended_the_shell
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(2);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A command started at `t0`, with these limits.
    fn stop(t0: Instant, timeout: Option<u64>, idle: Option<u64>) -> Stop {
        Stop::new(t0, Limits { timeout: timeout.map(ms), idle: idle.map(ms) }, GRACE)
    }

    /// Steps `s` at `now`, expecting `want`, and books `outcome` at once.
    fn expect_step(s: &mut Stop, now: Instant, last: Instant, want: Action, outcome: Outcome) {
        assert_eq!(s.step(now, last, false), Some(want), "at {:?}", now);
        s.done(want, outcome, now);
    }

    #[test]
    fn nothing_is_due_without_limits() {
        let t0 = Instant::now();
        let mut s = stop(t0, None, None);
        assert_eq!(s.due(t0, false), None);
        assert_eq!(s.step(t0 + Duration::from_secs(3600), t0, false), None);
        assert!(!s.timed_out() && !s.given_up());
    }

    #[test]
    fn a_timeout_climbs_every_step_when_nothing_answers() {
        let t0 = Instant::now();
        let mut s = stop(t0, Some(1000), None);
        assert_eq!(s.due(t0, false), Some(t0 + ms(1000)));
        assert_eq!(s.step(t0 + ms(999), t0, false), None);
        let mut now = t0 + ms(1000);
        expect_step(&mut s, now, t0, Action::Interrupt, Outcome::Done(vec![10, 11]));
        assert!(s.timed_out());
        // Each later step is due one grace after the one before was done.
        for action in [Action::Kill, Action::KillShell, Action::KillClient, Action::GiveUp] {
            assert_eq!(s.step(now + GRACE - ms(1), t0, false), None, "{action:?} early");
            let shell_killed = matches!(action, Action::KillClient | Action::GiveUp);
            assert_eq!(s.ended_the_shell(), shell_killed, "before {action:?}");
            now += GRACE;
            expect_step(&mut s, now, t0, action, Outcome::Done(vec![12]));
        }
        assert!(s.given_up());
        assert_eq!(s.due(t0, false), None);
        assert_eq!(s.tree(), [10, 11, 12]);
        assert!(!s.unreachable());
    }

    #[test]
    fn the_grace_runs_from_when_the_signal_went_out() {
        let t0 = Instant::now();
        let mut s = stop(t0, Some(100), None);
        assert_eq!(s.step(t0 + ms(100), t0, false), Some(Action::Interrupt));
        // The signalling exec took 3 s.
        let sent = t0 + ms(3100);
        s.done(Action::Interrupt, Outcome::Done(vec![]), sent);
        assert_eq!(s.due(t0, false), Some(sent + GRACE));
    }

    #[test]
    fn idle_counts_from_the_last_output() {
        let t0 = Instant::now();
        let mut s = stop(t0, Some(10_000), Some(500));
        let last = t0 + ms(400);
        assert_eq!(s.due(last, false), Some(t0 + ms(900)));
        assert_eq!(s.step(t0 + ms(899), last, false), None);
        assert_eq!(s.step(t0 + ms(900), last, false), Some(Action::Interrupt));
        assert!(s.timed_out(), "an idle timeout is a timeout");
        // The deadline comes first when it is sooner.
        let s = stop(t0, Some(300), Some(500));
        assert_eq!(s.due(t0, false), Some(t0 + ms(300)));
    }

    #[test]
    fn readers_waiting_for_the_caller_are_not_idle_and_not_stuck() {
        let t0 = Instant::now();
        let mut s = stop(t0, None, Some(500));
        assert_eq!(s.due(t0, true), None);
        assert_eq!(s.step(t0 + ms(5000), t0, true), None);
        // A deadline still holds, and the interrupt and kill go out...
        let mut s = stop(t0, Some(100), Some(50));
        let mut now = t0 + ms(100);
        assert_eq!(s.step(now, t0, true), Some(Action::Interrupt));
        s.done(Action::Interrupt, Outcome::Done(vec![]), now);
        now += GRACE;
        assert_eq!(s.step(now, t0, true), Some(Action::Kill));
        s.done(Action::Kill, Outcome::Done(vec![]), now);
        // ... but the shell is not killed while it may only be blocked on its output.
        now += GRACE * 10;
        assert_eq!(s.due(t0, true), None);
        assert_eq!(s.step(now, t0, true), None);
        assert_eq!(s.step(now, t0, false), Some(Action::KillShell));
    }

    #[test]
    fn an_asked_interrupt_is_followed_up_like_a_timeout() {
        let t0 = Instant::now();
        let mut s = stop(t0, Some(60_000), None);
        assert_eq!(s.ask(Abort::Interrupt), Some(Action::Interrupt));
        let now = t0 + ms(10);
        s.done(Action::Interrupt, Outcome::Done(vec![7]), now);
        assert!(!s.timed_out());
        // Asked again while the first works: nothing more.
        assert_eq!(s.ask(Abort::Interrupt), None);
        // Still running a grace later (bash took the SIGINT as handled): the kill.
        assert_eq!(s.step(now + GRACE, t0, false), Some(Action::Kill));
        s.done(Action::Kill, Outcome::Done(vec![8]), now + GRACE);
        assert_eq!(s.tree(), [7, 8]);
        assert!(!s.timed_out(), "the deadline passing later does not make it a timeout");
    }

    #[test]
    fn an_asked_kill_goes_straight_to_the_kill() {
        let t0 = Instant::now();
        let mut s = stop(t0, None, None);
        assert_eq!(s.ask(Abort::Kill), Some(Action::Kill));
        s.done(Action::Kill, Outcome::Done(vec![]), t0);
        assert_eq!(s.ask(Abort::Kill), None);
        assert_eq!(s.ask(Abort::Interrupt), None);
        assert_eq!(s.step(t0 + GRACE, t0, false), Some(Action::KillShell));
        // A kill asked for after an interrupt is taken at once.
        let mut s = stop(t0, None, None);
        assert_eq!(s.ask(Abort::Interrupt), Some(Action::Interrupt));
        s.done(Action::Interrupt, Outcome::Done(vec![]), t0);
        assert_eq!(s.ask(Abort::Kill), Some(Action::Kill));
    }

    #[test]
    fn a_timeout_during_an_asked_interrupt_stays_asked() {
        let t0 = Instant::now();
        let mut s = stop(t0, Some(100), None);
        assert_eq!(s.ask(Abort::Interrupt), Some(Action::Interrupt));
        s.done(Action::Interrupt, Outcome::Done(vec![]), t0 + ms(50));
        assert_eq!(s.step(t0 + ms(100), t0, false), None, "the deadline adds no step");
        assert!(!s.timed_out());
        // And the other way round: a timeout's interrupt is not turned into an asked one.
        let mut s = stop(t0, Some(100), None);
        assert_eq!(s.step(t0 + ms(100), t0, false), Some(Action::Interrupt));
        s.done(Action::Interrupt, Outcome::Done(vec![]), t0 + ms(100));
        assert_eq!(s.ask(Abort::Kill), Some(Action::Kill));
        assert!(s.timed_out());
    }

    #[test]
    fn an_asked_interrupt_that_cannot_be_sent_changes_nothing() {
        let t0 = Instant::now();
        let mut s = stop(t0, Some(1000), None);
        assert_eq!(s.ask(Abort::Interrupt), Some(Action::Interrupt));
        s.done(Action::Interrupt, Outcome::Unreachable, t0);
        assert!(!s.unreachable());
        assert_eq!(s.due(t0, false), Some(t0 + ms(1000)));
        // The timeout then is a timeout, and an unreachable container skips to the client.
        assert_eq!(s.step(t0 + ms(1000), t0, false), Some(Action::Interrupt));
        assert!(s.timed_out());
        s.done(Action::Interrupt, Outcome::Unreachable, t0 + ms(6000));
        assert!(s.unreachable());
        assert_eq!(s.step(t0 + ms(6000), t0, false), Some(Action::KillClient));
    }

    #[test]
    fn unreachable_at_any_step_skips_to_the_client() {
        for (at, action) in [(1, Action::Kill), (2, Action::KillShell)] {
            let t0 = Instant::now();
            let mut s = stop(t0, Some(0), None);
            let mut now = t0;
            expect_step(&mut s, now, t0, Action::Interrupt, Outcome::Done(vec![]));
            if at == 2 {
                now += GRACE;
                expect_step(&mut s, now, t0, Action::Kill, Outcome::Done(vec![]));
            }
            now += GRACE;
            expect_step(&mut s, now, t0, action, Outcome::Unreachable);
            assert!(s.unreachable());
            expect_step(&mut s, now, t0, Action::KillClient, Outcome::Done(vec![]));
            expect_step(&mut s, now + GRACE, t0, Action::GiveUp, Outcome::Done(vec![]));
            assert!(s.given_up());
        }
    }

    #[test]
    fn a_shell_gone_gets_a_grace_for_its_output_then_is_given_up() {
        let t0 = Instant::now();
        // Found gone by a signal...
        let mut s = stop(t0, Some(0), None);
        expect_step(&mut s, t0, t0, Action::Interrupt, Outcome::ShellGone);
        assert_eq!(s.step(t0 + GRACE - ms(1), t0, false), None);
        expect_step(&mut s, t0 + GRACE, t0, Action::GiveUp, Outcome::Done(vec![]));
        // ... or seen gone by the caller, with no limits at all.
        let mut s = stop(t0, None, None);
        s.shell_gone(t0);
        assert_eq!(s.due(t0, false), Some(t0 + GRACE));
        s.shell_gone(t0 + GRACE);
        assert_eq!(s.due(t0, false), Some(t0 + GRACE), "seen again: the grace does not restart");
        assert_eq!(s.step(t0 + GRACE, t0, false), Some(Action::GiveUp));
        assert!(!s.timed_out());
    }
}
