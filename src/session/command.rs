//! How the session drives a command to its end: sending it, receiving its output, stopping it
//! step by step past its deadline, and booking how it ended. The public face of a command,
//! [`Cmd`](super::Cmd) and [`Running`](super::Running), is in [`running`](super::running).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::input::Feeder;
use super::protocol::{self, Input, Token};
use super::route::{Completion, End, Kept, Shared, Sink};
use super::shell::{Abort, Scope};
use super::{Event, Output, Session, Stream, TICK, lock};
use crate::error::{Error, Result};
use crate::text;

/// How many output events a running command may have in flight before the readers wait.
pub(super) const CHANNEL_CAP: usize = 32;

/// Largest stdin given inline, as `printf` text in the frame (up to four bytes of text per
/// byte, so the frame fits a pipe's buffer); more goes through a feeding exec.
pub(super) const INLINE_STDIN: usize = 8 << 10;

/// A command being run, for the session's internal bookkeeping.
pub(super) struct Job {
    pub(super) seq: u64,
    pub(super) rx: Receiver<Event>,
    pub(super) command: String,
    pub(super) started: Instant,
    pub(super) deadline: Option<Instant>,
    /// Aborted after printing nothing for this long.
    pub(super) idle: Option<Duration>,
    pub(super) step: Step,
    pub(super) timed_out: bool,
    /// The processes a timeout signalled, killed once the command is over if any survive.
    pub(super) tree: Vec<u32>,
    /// Signalling failed while stopping it: the container cannot be reached (paused, engine
    /// gone), so the clean-up after the shell is left to `close`.
    pub(super) unreachable: bool,
    /// The live stdin of an interactive command.
    pub(super) feeder: Option<Feeder>,
}

/// What a command reads on stdin.
#[derive(Debug)]
pub(super) enum Stdin {
    /// Nothing: EOF at once.
    Empty,
    /// These bytes, then EOF.
    Bytes(Vec<u8>),
    /// What [`Running::write_stdin`] writes, until [`Running::close_stdin`].
    Live,
}

/// Where a timed-out command is on the way to being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    Running,
    /// SIGINT sent to the shell and the command; SIGKILL at the instant.
    Interrupted(Instant),
    /// SIGKILL sent to the command; the shell cannot be recovered if it has not answered by
    /// the instant, and the whole session is killed.
    Killed(Instant),
    /// The shell and its processes were killed; the exec client is killed at the instant.
    ShellKilled(Instant),
    /// The exec client was killed; the command is given up at the instant.
    ClientKilled(Instant),
}

/// How a job ended.
pub(super) struct Finish {
    pub(super) exit_code: i32,
    pub(super) timed_out: bool,
    pub(super) duration: Duration,
    /// Output kept by the readers (for [`Deliver::Keep`]).
    pub(super) kept: [Kept; 2],
}

/// The time limits of one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Limits {
    pub(super) timeout: Option<Duration>,
    pub(super) idle: Option<Duration>,
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

impl Session {
    /// Sends `command` to the shell. Waits for a pending command first.
    pub(super) fn start(&mut self, command: &str, limits: Limits, stdin: Stdin, deliver: Deliver) -> Result<Job> {
        text::no_nul("command", command)?;
        self.settle()?;
        if !self.life.is_live() {
            return Err(self.shell_exited());
        }
        let mut text = String::new();
        let stdin_path;
        let mut feeder = None;
        let input = match stdin {
            Stdin::Empty => Input::Null,
            Stdin::Bytes(data) if data.len() <= INLINE_STDIN => {
                let dir = self.temp_dir();
                stdin_path = format!("{dir}/stdin");
                let mkdir = (!self.temp_dir_made).then_some(dir.as_str());
                text.push_str(&protocol::encode_file(&stdin_path, mkdir, &data));
                self.temp_dir_made = true;
                Input::File(&stdin_path)
            }
            Stdin::Bytes(data) => {
                let fed = feeder.insert(self.feeder()?);
                if !fed.feed_all(data) {
                    let reason = "the writer of its stdin stopped".to_string();
                    return Err(Error::StdinClosed { command: command.to_string(), reason });
                }
                fed.input()
            }
            Stdin::Live => feeder.insert(self.feeder()?).input(),
        };
        let token = Token::random();
        let known_job = self.reaper.known_job();
        text.push_str(&protocol::encode_command(self.dialect, command, &token, input, known_job));
        self.seq += 1;
        let (done, rx) = crossbeam_channel::bounded(if deliver == Deliver::Events { CHANNEL_CAP } else { 0 });
        let sink = match deliver {
            Deliver::Events => Sink::Events(done.clone()),
            Deliver::Keep(cap) => Sink::Keep(cap),
            Deliver::Unread => Sink::Unread,
        };
        if self.seq > 1 {
            log::debug!("exec in {} {}: {command}", self.engine.runtime(), self.target);
        }
        let job = Job {
            seq: self.seq,
            rx,
            command: command.to_string(),
            started: Instant::now(),
            deadline: limits.timeout.map(|t| Instant::now() + t),
            idle: limits.idle,
            step: Step::Running,
            timed_out: false,
            tree: Vec::new(),
            unreachable: false,
            feeder,
        };
        if !self.shared.begin(job.seq, token.marker(), sink, done, job.idle.is_some()) {
            self.mark_dead(None, true);
            return Err(self.shell_exited());
        }
        let mut line = lock(&self.line);
        line.running = Some((job.seq, token));
        if let Err(e) = line.write(text.as_bytes(), &self.target) {
            // The shell is gone (EPIPE): its pipes are closing, and waiting for the job finds
            // out how it ended and what it printed.
            log::debug!("{e}");
        }
        Ok(job)
    }

    /// Waits for a pending (sent or detached) command, keeping its output as unread.
    pub(super) fn settle(&mut self) -> Result<()> {
        if let Some(mut job) = self.pending.take() {
            let shared = Arc::clone(&self.shared);
            self.drive(&mut job, None, &mut |ev: Event| {
                shared.push_unread(ev.stream(), ev.bytes());
                false
            })?;
        }
        Ok(())
    }

    /// Drives `job` until it ends (`Some`) or `until` passes (`None`), gathering its output.
    pub(super) fn collect(
        &mut self,
        job: &mut Job,
        out: &mut Collector<'_>,
        until: Option<Instant>,
    ) -> Result<Option<Output>> {
        let Some(finish) = self.drive(job, until, &mut |ev| {
            out.push(ev);
            false
        })?
        else {
            return Ok(None);
        };
        Ok(Some(out.output(job, finish)))
    }

    /// Receives `job`'s events into `sink` until it ends (`Some`), `until` passes or `sink`
    /// says it has what it waited for (`None`), stopping the command step by step once its
    /// deadline has passed.
    pub(super) fn drive(
        &mut self,
        job: &mut Job,
        until: Option<Instant>,
        sink: &mut dyn FnMut(Event) -> bool,
    ) -> Result<Option<Finish>> {
        loop {
            let now = Instant::now();
            let mut wake = now + TICK;
            for t in [until, job.next_step(&self.shared)].into_iter().flatten() {
                wake = wake.min(t);
            }
            match job.rx.recv_deadline(wake) {
                Ok(ev) => {
                    if sink(ev) {
                        return Ok(None);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return Ok(Some(self.finish(job))),
                Err(RecvTimeoutError::Timeout) => {
                    // Drain what is already there before acting on the time.
                    while let Ok(ev) = job.rx.try_recv() {
                        if sink(ev) {
                            return Ok(None);
                        }
                    }
                    let now = Instant::now();
                    if self.life.is_live() && matches!(self.child.try_wait(), Ok(Some(_))) {
                        // The shell is gone but something it left still holds its pipes open:
                        // ending what it left closes them; the readers get a grace period.
                        self.mark_dead(None, !job.unreachable);
                        job.step = Step::ClientKilled(now + self.timeouts.grace);
                        continue;
                    }
                    if job.next_step(&self.shared).is_some_and(|t| now >= t) {
                        if self.escalate(job, now) {
                            return Ok(Some(self.finish(job)));
                        }
                        continue;
                    }
                    if until.is_some_and(|u| now >= u) {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// Takes the next step against a command past its deadline. True when the command is
    /// given up for good.
    pub(super) fn escalate(&mut self, job: &mut Job, now: Instant) -> bool {
        let grace = self.timeouts.grace;
        let reaper = Arc::clone(&self.reaper);
        // When the container cannot be reached to signal (paused, engine gone, CLI hanging),
        // more attempts would fail the same way: go straight to killing the exec client.
        let mut unreachable = |e: Error| {
            log::warn!("stopping `{}` in {}: {e}; killing the exec client", job.command, self.target);
            job.unreachable = true;
        };
        job.step = match job.step {
            Step::Running | Step::Interrupted(_) => {
                let how = if job.step == Step::Running {
                    job.timed_out = true;
                    let why = match job.deadline {
                        Some(deadline) if now >= deadline => "timed out".to_string(),
                        _ => format!("printed nothing for {:?}", job.idle.unwrap_or_default()),
                    };
                    log::warn!("`{}` in {} {why}; interrupting it", job.command, self.target);
                    Abort::Interrupt
                } else {
                    log::warn!("`{}` did not stop on SIGINT; killing it", job.command);
                    Abort::Kill
                };
                match reaper.abort(how) {
                    Ok(tree) => {
                        job.tree.extend(tree);
                        // The grace runs from the signal, not from before the exec that sent
                        // it: on a loaded engine that exec alone can take seconds.
                        let until = Instant::now() + grace;
                        match how {
                            Abort::Interrupt => Step::Interrupted(until),
                            Abort::Kill => Step::Killed(until),
                        }
                    }
                    Err(e) => {
                        unreachable(e);
                        Step::ShellKilled(now)
                    }
                }
            }
            Step::Killed(_) => {
                log::warn!("the shell in {} does not come back; killing the session", self.target);
                if let Err(e) = reaper.signal(Scope::Session, "KILL", None) {
                    unreachable(e);
                }
                Step::ShellKilled(Instant::now() + grace)
            }
            Step::ShellKilled(_) => {
                let _ = self.child.kill();
                Step::ClientKilled(now + grace)
            }
            Step::ClientKilled(_) => {
                self.shared.abandon(job.seq);
                self.mark_dead(None, !job.unreachable);
                return true;
            }
        };
        false
    }

    /// Books the end of `job` and works out its exit code.
    pub(super) fn finish(&mut self, job: &mut Job) -> Finish {
        if let Some(mut feeder) = job.feeder.take() {
            feeder.end(self.timeouts.grace);
        }
        {
            let mut line = lock(&self.line);
            if line.running.is_some_and(|(seq, _)| seq == job.seq) {
                line.running = None;
            }
        }
        let completion = self.shared.take_completion(job.seq);
        let duration = job.started.elapsed();
        let status = match &completion {
            Some(Completion { stderr: End::Sentinel(err), stdout: End::Sentinel(out), .. }) => {
                protocol::parse_status(err, out)
            }
            Some(Completion { stderr: End::Sentinel(err), .. }) => protocol::parse_status(err, b""),
            _ => None,
        };
        if let Some(status) = status {
            self.reaper.saw(status);
        }
        let shell_gone =
            !matches!(completion, Some(Completion { stdout: End::Sentinel(_), stderr: End::Sentinel(_), .. }));
        if shell_gone && self.life.is_live() {
            self.mark_dead(None, !job.unreachable);
        } else if !shell_gone && !job.tree.is_empty() {
            // The command is over, but what ignored its interrupt (background processes do)
            // must not outlive a timeout.
            if let Err(e) = self.reaper.signal(Scope::Pids(&job.tree), "KILL", None) {
                log::warn!("ending what is left of `{}`: {e}", job.command);
            }
        }
        let exit_code = match status {
            Some(status) => status.code,
            None => self.life.exit_code().unwrap_or(if job.timed_out { 137 } else { -1 }),
        };
        self.metrics.commands += 1;
        self.metrics.busy += duration;
        self.metrics.last_used = Instant::now();
        let kept = completion.map(|c| c.kept).unwrap_or_default();
        Finish { exit_code, timed_out: job.timed_out, duration, kept }
    }
}

impl Job {
    /// When the next timeout step is due: at the deadline, or once the command has printed
    /// nothing (as `shared` saw it) for its idle timeout, whichever comes first.
    pub(super) fn next_step(&self, shared: &Shared) -> Option<Instant> {
        match self.step {
            Step::Running => {
                let idle = self.idle.map(|idle| shared.last_output() + idle);
                match (self.deadline, idle) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            Step::Interrupted(t) | Step::Killed(t) | Step::ShellKilled(t) | Step::ClientKilled(t) => Some(t),
        }
    }
}

/// A per-command output callback.
pub(super) type ChunkFn<'a> = Box<dyn FnMut(Stream, &[u8]) + 'a>;

/// Gathers a command's output up to a cap, passing every piece to a callback first.
pub(super) struct Collector<'a> {
    /// Stdout and stderr.
    pub(super) kept: [Kept; 2],
    pub(super) on_chunk: Option<ChunkFn<'a>>,
}

impl<'a> Collector<'a> {
    pub(super) fn new(cap: usize, on_chunk: Option<ChunkFn<'a>>) -> Self {
        Collector { kept: [Kept::new(cap), Kept::new(cap)], on_chunk }
    }

    pub(super) fn push(&mut self, ev: Event) {
        let stream = ev.stream();
        self.tap(stream, ev.bytes());
        self.kept[stream as usize].push(ev.into_bytes());
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
            self.kept[stream as usize].push(bytes);
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
        let [stdout, stderr] = std::mem::take(&mut self.kept);
        let [kept_out, kept_err] = finish.kept;
        let pick = |mine: Kept, readers: Kept| if mine.is_empty() { readers.finish() } else { mine.finish() };
        let ((stdout, stdout_gap), (stderr, stderr_gap)) = (pick(stdout, kept_out), pick(stderr, kept_err));
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
