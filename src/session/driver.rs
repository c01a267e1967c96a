//! One command's life, top to bottom: the driver of every command a session runs.
//!
//! 1. [`start`](Session::start): frame the command with its input and sentinels, claim its
//!    output from the readers, hand its deadlines to the watch, and write it to the shell.
//! 2. [`drive`](Session::drive): receive its output until its [`Completion`] arrives from the
//!    readers; meanwhile the watch stops it at its deadlines ([`stop`](super::stop) decides
//!    each step), and the driver notices the shell's exec client exiting.
//! 3. [`finish`](Session::finish): work out how it ended ([`Ending`], decided without I/O and
//!    unit-tested below), book it, and end what an aborted command left running.
//!
//! The public face of a command, [`Cmd`](super::Cmd) and [`Running`](super::Running), is in
//! [`cmd`](super::cmd); it calls these phases in this order.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, select};

use super::input::Feeder;
use super::protocol::{self, Input, Refusal, Status, Token};
use super::readers::{Completion, End, Kept, Sink};
use super::stop::{Limits, Stop};
use super::{Event, Output, Session, Stream, TICK};
use crate::error::{Error, Result};
use crate::output::PerStream;
use crate::reap::{Procs, Reap, Signal, UNSHADOWED};
use crate::text;

/// How many output events a running command may have in flight before the readers wait.
const CHANNEL_CAP: usize = 32;

/// Largest stdin given inline, as `printf` text in the frame (up to four bytes of text per
/// byte, so the frame fits a pipe's buffer); more goes through a feeding exec.
pub(super) const INLINE_STDIN: usize = 8 << 10;

/// What a command reads on stdin.
#[derive(Debug)]
pub(super) enum Stdin {
    /// Nothing: EOF at once.
    Empty,
    /// These bytes, then EOF.
    Bytes(Vec<u8>),
    /// What [`Running::write_stdin`](super::Running::write_stdin) writes, until it is closed.
    Live,
    /// A terminal of this many columns and rows: its stdin, stdout and stderr, and live input.
    #[cfg(feature = "terminal")]
    Terminal(u16, u16),
}

impl Stdin {
    fn is_terminal(&self) -> bool {
        #[cfg(feature = "terminal")]
        if let Stdin::Terminal(..) = self {
            return true;
        }
        false
    }
}

/// How a command's output reaches its waiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Deliver {
    /// As events on the job's channel.
    Events,
    /// Kept by the readers up to this many bytes per stream, handed over at the end.
    Keep(usize),
    /// Into the session's unread buffer.
    Unread,
}

/// A command being run. Its deadlines are the watch's ([`Stop`]).
pub(super) struct Job {
    pub(super) seq: u64,
    pub(super) command: String,
    pub(super) started: Instant,
    /// Its output, for [`Deliver::Events`]; a channel that never sends otherwise.
    pub(super) events: Receiver<Event>,
    /// Where the readers send how it ended.
    done: Receiver<Completion>,
    /// How it ended, once that has come.
    completion: Option<Completion>,
    /// The live stdin of an interactive command.
    pub(super) feeder: Option<Box<Feeder>>,
    /// Counted in the session's metrics (the session's own clean-up is not).
    pub(super) counted: bool,
}

/// How a job ended, as its waiter gets it.
pub(super) struct Finish {
    pub(super) exit_code: i32,
    pub(super) timed_out: bool,
    pub(super) duration: Duration,
    /// Output kept by the readers (for [`Deliver::Keep`]).
    pub(super) kept: PerStream<Kept>,
    /// Why the frame did not run the command, if it did not.
    pub(super) refused: Option<Refusal>,
    /// The code the shell's client exited with during the command, when boxshell did not end
    /// it: with the command's stderr, it tells a dropped connection ([`Error::Disconnected`]).
    pub(super) client_exit: Option<i32>,
}

/// How a command ended, decided from what the readers saw and how the watch stopped it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Ending {
    /// What its sentinels said, when stderr's arrived.
    pub(super) status: Option<Status>,
    pub(super) timed_out: bool,
    /// The shell did not see the command through: it exited, or the command was given up.
    pub(super) shell_gone: bool,
    /// Processes of the command that were signalled and must not outlive it (background jobs
    /// of its own ignore SIGINT).
    pub(super) leftovers: Vec<u32>,
}

impl Ending {
    pub(super) fn of(completion: &Completion, stop: Option<&Stop>) -> Ending {
        // The status is on stderr's sentinel line, which may have come though stdout's did not.
        let (status, shell_gone) = match &completion.ends {
            PerStream { stdout: End::Sentinel(out), stderr: End::Sentinel(err) } => {
                (protocol::parse_status(err, out), false)
            }
            PerStream { stderr: End::Sentinel(err), .. } => (protocol::parse_status(err, b""), true),
            _ => (None, true),
        };
        let leftovers = match stop {
            Some(stop) if !shell_gone => stop.tree().to_vec(),
            _ => Vec::new(),
        };
        Ending { status, timed_out: stop.is_some_and(Stop::timed_out), shell_gone, leftovers }
    }

    /// The command's exit code: its own, else the shell's (when it exited during the command),
    /// else what stopping it implies.
    pub(super) fn exit_code(&self, shell_code: Option<i32>) -> i32 {
        match (self.status, shell_code) {
            (Some(status), _) => status.code,
            (None, Some(code)) => code,
            (None, None) if self.timed_out => Output::KILLED,
            (None, None) => Output::UNKNOWN,
        }
    }
}

impl Session {
    /// Phase 1: sends `command` to the shell, after a pending command has finished.
    pub(super) fn start(&mut self, command: &str, limits: Limits, stdin: Stdin, deliver: Deliver) -> Result<Job> {
        text::no_nul("command", command)?;
        self.settle()?;
        if !self.shell.is_live() {
            return Err(self.shell_exited());
        }
        let mut text = String::new();
        let mut feeder = None;
        let terminal = stdin.is_terminal();
        let stdin_path = format!("{}/stdin", self.scratch.dir());
        let mut inline = None;
        match stdin {
            Stdin::Empty => {}
            Stdin::Bytes(data) if data.len() <= INLINE_STDIN => inline = Some(data),
            Stdin::Bytes(data) => {
                let mut fed = self.feeder()?;
                if !fed.feed_all(data) {
                    let reason = "the writer of its stdin stopped".to_string();
                    return Err(Error::StdinClosed { command: command.to_string(), reason });
                }
                feeder = Some(Box::new(fed));
            }
            Stdin::Live => feeder = Some(Box::new(self.feeder()?)),
            #[cfg(feature = "terminal")]
            Stdin::Terminal(cols, rows) => feeder = Some(Box::new(self.terminal(cols, rows, self.seq + 1)?)),
        }
        let input = match (&feeder, inline) {
            (Some(fed), _) => fed.input(),
            (None, Some(data)) => {
                let mkdir = self.scratch.make();
                text.push_str(&protocol::encode_file(&stdin_path, mkdir.as_deref(), &data));
                Input::File(&stdin_path)
            }
            (None, None) => Input::Null,
        };
        let framed = feeder.as_ref().map_or(std::borrow::Cow::Borrowed(command), |fed| fed.framed(command));
        let token = Token::random();
        text.push_str(&protocol::encode_command(
            self.signaller.dialect,
            &framed,
            &token,
            input,
            self.signaller.known_job(),
        ));
        self.seq += 1;
        let (sink, events) = match deliver {
            Deliver::Events => {
                let (tx, rx) = crossbeam_channel::bounded(CHANNEL_CAP);
                (Sink::Events(tx), rx)
            }
            Deliver::Keep(cap) => (Sink::Keep(cap), crossbeam_channel::never()),
            Deliver::Unread => (Sink::Unread, crossbeam_channel::never()),
        };
        log::debug!("exec in {} {}: {command}", self.engine.runtime(), self.target);
        let Some(done) = self.router.begin(self.seq, token.marker(), sink, limits.idle.is_some(), terminal) else {
            self.mark_dead(None, true);
            return Err(self.shell_exited());
        };
        let started = Instant::now();
        self.watch.begin(self.seq, token, Stop::new(started, limits, self.timeouts.grace));
        // Its processes must start in a later clock tick than the last background job did.
        self.signaller.tick_apart();
        if let Err(e) = self.shell.write(text.as_bytes(), &self.target) {
            // The shell is gone (EPIPE): its pipes are closing, and driving the job finds out
            // how it ended and what it printed.
            log::debug!("{e}");
        }
        let command = command.to_string();
        Ok(Job { seq: self.seq, command, started, events, done, completion: None, feeder, counted: true })
    }

    /// Phase 2: receives `job`'s events into `sink` until it ends (`Some`), `until` passes or
    /// `sink` says it has what it waited for (`None`). The watch stops the command at its
    /// deadlines; this notices the shell's exec client exiting.
    pub(super) fn drive(
        &mut self,
        job: &mut Job,
        until: Option<Instant>,
        sink: &mut dyn FnMut(Event) -> bool,
    ) -> Result<Option<Finish>> {
        loop {
            if job.completion.is_some() {
                // Every event was sent before the completion: what is left is in the channel.
                while let Ok(ev) = job.events.try_recv() {
                    if sink(ev) {
                        return Ok(None);
                    }
                }
                return Ok(Some(self.finish(job)));
            }
            let now = Instant::now();
            let wake = until.map_or(now + TICK, |u| u.min(now + TICK));
            select! {
                recv(job.events) -> ev => match ev {
                    Ok(ev) => {
                        if sink(ev) {
                            return Ok(None);
                        }
                    }
                    Err(_) => job.events = crossbeam_channel::never(),
                },
                recv(job.done) -> completion => {
                    job.completion = Some(completion.unwrap_or_else(|_| Completion::unseen()));
                }
                default(wake.saturating_duration_since(now)) => {
                    if self.router.terminal_overdue(job.seq, self.timeouts.grace) {
                        // The shell is done with the command but its terminal never said so.
                        self.router.terminal_end(job.seq);
                    }
                    if self.shell.is_live() && self.shell.client.has_exited() {
                        // The shell is gone but something it left still holds its pipes open:
                        // ending what it left closes them; the readers get a grace period.
                        self.mark_dead(None, !self.watch.unreachable(job.seq));
                        self.watch.shell_gone(job.seq);
                    }
                    if until.is_some_and(|u| Instant::now() >= u) {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// Phase 3: books the end of `job` and works out its exit code.
    fn finish(&mut self, job: &mut Job) -> Finish {
        if let Some(mut feeder) = job.feeder.take() {
            feeder.end(self.timeouts.grace);
        }
        let stop = self.watch.end(job.seq);
        let completion = job.completion.take().unwrap_or_else(Completion::unseen);
        let ending = Ending::of(&completion, stop.as_ref());
        let duration = job.started.elapsed();
        if let Some(status) = ending.status {
            self.signaller.saw(status);
        }
        if ending.shell_gone && self.shell.is_live() {
            self.mark_dead(None, !stop.as_ref().is_some_and(Stop::unreachable));
        } else if !ending.leftovers.is_empty() {
            self.end_leftovers(&ending.leftovers, &job.command);
        }
        if job.counted {
            self.metrics.commands += 1;
            self.metrics.busy += duration;
            self.metrics.last_used = Instant::now();
        }
        let shell_code = self.shell.exit_code();
        let exit_code = ending.exit_code(shell_code);
        let refused = ending.status.and_then(|s| s.refused);
        // A client this session killed (or whose shell it killed) did not lose its connection.
        let client_exit = shell_code.filter(|_| {
            ending.status.is_none() && ending.shell_gone && !stop.as_ref().is_some_and(Stop::ended_the_shell)
        });
        Finish { exit_code, timed_out: ending.timed_out, duration, kept: completion.kept, refused, client_exit }
    }

    /// Kills what is left of the processes an aborted command's interrupt signalled (its
    /// background jobs ignore SIGINT), through the session's own shell: `reap.sh` in a
    /// subshell, safe from the user's aliases and functions. Its end comes after every byte
    /// they wrote, so none reaches the next command: they are background output, for `read`.
    fn end_leftovers(&mut self, tree: &[u32], command: &str) {
        let reap = Reap {
            procs: Procs::Pids(tree),
            signal: Signal::Kill,
            shell: self.signaller.pid,
            instance: self.signaller.instance,
            watermark: Default::default(),
            remove: None,
        };
        let script = format!(
            "( \\command unalias -a; \\command unset -f {UNSHADOWED}; \\command eval {} ) >/dev/null 2>&1",
            text::quote(&reap.inline())
        );
        let limits = Limits { timeout: Some(self.timeouts.close), idle: None };
        let ended = self.start(&script, limits, Stdin::Empty, Deliver::Unread).and_then(|mut job| {
            job.counted = false;
            self.pending = Some(job);
            self.settle()
        });
        if let Err(e) = ended {
            log::warn!("ending what is left of `{command}`: {e}");
        }
    }

    /// Drives a pending (sent or detached) command to its end, keeping its output as unread.
    pub(super) fn settle(&mut self) -> Result<()> {
        self.drive_pending(None)
    }

    /// Drives a pending command until it ends or `until` passes, keeping its output as unread.
    pub(super) fn drive_pending(&mut self, until: Option<Instant>) -> Result<()> {
        if let Some(mut job) = self.pending.take() {
            let router = Arc::clone(&self.router);
            let mut keep = |ev: Event| {
                router.push_unread(ev.stream(), ev.bytes());
                false
            };
            if self.drive(&mut job, until, &mut keep)?.is_none() {
                self.pending = Some(job);
            }
        }
        Ok(())
    }
}

/// A per-command output callback.
pub(super) type ChunkFn<'a> = Box<dyn FnMut(Stream, &[u8]) + 'a>;

/// Gathers a command's output up to a cap, passing every piece to a callback first.
pub(super) struct Collector<'a> {
    kept: PerStream<Kept>,
    on_chunk: Option<ChunkFn<'a>>,
}

impl<'a> Collector<'a> {
    pub(super) fn new(cap: usize, on_chunk: Option<ChunkFn<'a>>) -> Self {
        Collector { kept: PerStream { stdout: Kept::new(cap), stderr: Kept::new(cap) }, on_chunk }
    }

    pub(super) fn push(&mut self, ev: Event) {
        let stream = ev.stream();
        self.tap(stream, ev.bytes());
        self.kept[stream].push(ev.into_bytes());
    }

    /// Shows `bytes` to the callback, without keeping them.
    pub(super) fn tap(&mut self, stream: Stream, bytes: &[u8]) {
        if let Some(f) = self.on_chunk.as_mut() {
            f(stream, bytes);
        }
    }

    /// Keeps `bytes` the callback has seen already.
    pub(super) fn keep(&mut self, stream: Stream, bytes: Vec<u8>) {
        if !bytes.is_empty() {
            self.kept[stream].push(bytes);
        }
    }

    /// Keeps the oldest bytes of `buf` beyond `cap`, leaving it `cap` long.
    pub(super) fn keep_excess(&mut self, stream: Stream, buf: &mut Vec<u8>, cap: usize) {
        if buf.len() > cap {
            self.keep(stream, buf.drain(..buf.len() - cap).collect());
        }
    }

    /// The output of `job`: what came as events, or what the readers kept.
    pub(super) fn output(&mut self, job: &mut Job, finish: Finish) -> Output {
        let (mine, readers) = (std::mem::take(&mut self.kept), finish.kept);
        let pick = |mine: Kept, readers: Kept| if mine.is_empty() { readers.finish() } else { mine.finish() };
        let (stdout, stdout_gap) = pick(mine.stdout, readers.stdout);
        let (stderr, stderr_gap) = pick(mine.stderr, readers.stderr);
        Output {
            stdout,
            stderr,
            exit_code: finish.exit_code,
            timed_out: finish.timed_out,
            truncated: stdout_gap.is_some() || stderr_gap.is_some(),
            stdout_gap,
            stderr_gap,
            duration: finish.duration,
            // The job is over: its command moves into the output.
            command: std::mem::take(&mut job.command),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentinel(code: i32) -> PerStream<End> {
        // The stderr sentinel carries the status, the stdout one the background-job watermark.
        PerStream { stdout: End::Sentinel(Vec::new()), stderr: End::Sentinel(format!(" {code} 0").into_bytes()) }
    }

    fn completion(ends: PerStream<End>) -> Completion {
        Completion { ends, kept: PerStream::default() }
    }

    fn stopped(outcome_tree: Vec<u32>, timeout: bool) -> Stop {
        use super::super::stop::Outcome;
        let t0 = Instant::now();
        let limits = Limits { timeout: timeout.then_some(Duration::ZERO), idle: None };
        let mut stop = Stop::new(t0, limits, Duration::from_secs(1));
        let action = if timeout {
            stop.step(t0, t0, false).expect("due at once")
        } else {
            stop.ask(super::super::stop::Abort::Interrupt).expect("running")
        };
        stop.done(action, Outcome::Done(outcome_tree), t0);
        stop
    }

    #[test]
    fn a_command_seen_through_ends_with_its_own_status() {
        let ending = Ending::of(&completion(sentinel(3)), None);
        assert_eq!(ending.status.map(|s| s.code), Some(3));
        assert!(!ending.shell_gone && !ending.timed_out && ending.leftovers.is_empty());
        // The shell's code, if any, does not count: the command's own does.
        assert_eq!(ending.exit_code(Some(9)), 3);
    }

    #[test]
    fn a_stream_closed_before_its_sentinel_means_the_shell_is_gone() {
        for ends in [
            PerStream { stdout: End::Sentinel(Vec::new()), stderr: End::Eof },
            PerStream { stdout: End::Eof, stderr: End::Eof },
        ] {
            let ending = Ending::of(&completion(ends), None);
            assert!(ending.shell_gone && ending.status.is_none());
            // The shell's exit code when it is known (`exit 3`), else unknown.
            assert_eq!(ending.exit_code(Some(3)), 3);
            assert_eq!(ending.exit_code(None), Output::UNKNOWN);
        }
    }

    #[test]
    fn a_status_that_came_before_the_shell_went_counts() {
        let ends = PerStream { stdout: End::Eof, stderr: End::Sentinel(b" 4 0".to_vec()) };
        let ending = Ending::of(&completion(ends), None);
        assert!(ending.shell_gone);
        assert_eq!(ending.exit_code(Some(1)), 4);
    }

    #[test]
    fn a_timed_out_command_whose_shell_went_is_killed() {
        let stop = stopped(vec![41, 42], true);
        let ending = Ending::of(&Completion::unseen(), Some(&stop));
        assert!(ending.timed_out && ending.shell_gone);
        assert_eq!(ending.exit_code(None), Output::KILLED);
        // Nothing is left to end through a shell that is gone.
        assert!(ending.leftovers.is_empty());
    }

    #[test]
    fn an_aborted_command_leaves_nothing_it_signalled_running() {
        for timeout in [true, false] {
            let stop = stopped(vec![41, 42], timeout);
            let ending = Ending::of(&completion(sentinel(130)), Some(&stop));
            assert_eq!((ending.timed_out, ending.exit_code(None)), (timeout, 130));
            assert_eq!(ending.leftovers, [41, 42]);
        }
    }

    #[test]
    fn a_command_nobody_stopped_has_no_leftovers() {
        let t0 = Instant::now();
        let stop = Stop::new(t0, Limits { timeout: Some(Duration::from_secs(9)), idle: None }, Duration::ZERO);
        let ending = Ending::of(&completion(sentinel(0)), Some(&stop));
        assert!(!ending.timed_out && ending.leftovers.is_empty());
    }
}
