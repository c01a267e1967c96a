//! A command in flight: [`Cmd`] and [`Running`], and how the session drives one to its end,
//! stopping it step by step past its deadline.

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
/// byte, so the frame fits a pipe's buffer); more goes through an upload exec.
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
#[derive(Debug, Clone, Copy)]
pub(super) enum Stdin<'a> {
    /// Nothing: EOF at once.
    Empty,
    /// These bytes, then EOF.
    Bytes(&'a [u8]),
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
    pub(super) fn start(&mut self, command: &str, limits: Limits, stdin: Stdin<'_>, deliver: Deliver) -> Result<Job> {
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
            Stdin::Bytes(data) => {
                let dir = self.temp_dir();
                stdin_path = format!("{dir}/stdin");
                if data.len() <= INLINE_STDIN {
                    let mkdir = (!self.temp_dir_made).then_some(dir.as_str());
                    text.push_str(&protocol::encode_file(&stdin_path, mkdir, data));
                } else {
                    self.upload(&dir, &stdin_path, data)?;
                }
                self.temp_dir_made = true;
                Input::File(&stdin_path)
            }
            Stdin::Live => {
                let dir = self.temp_dir();
                stdin_path = format!("{dir}/in-{}", self.seq + 1);
                feeder = Some(self.feeder(&dir, &stdin_path)?);
                self.temp_dir_made = true;
                Input::File(&stdin_path)
            }
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
                let (how, next) = if job.step == Step::Running {
                    job.timed_out = true;
                    let why = match job.deadline {
                        Some(deadline) if now >= deadline => "timed out".to_string(),
                        _ => format!("printed nothing for {:?}", job.idle.unwrap_or_default()),
                    };
                    log::warn!("`{}` in {} {why}; interrupting it", job.command, self.target);
                    (Abort::Interrupt, Step::Interrupted(now + grace))
                } else {
                    log::warn!("`{}` did not stop on SIGINT; killing it", job.command);
                    (Abort::Kill, Step::Killed(now + grace))
                };
                match reaper.abort(how) {
                    Ok(tree) => {
                        job.tree.extend(tree);
                        next
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
                Step::ShellKilled(now + grace)
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
    fn tap(&mut self, stream: Stream, bytes: &[u8]) {
        if let Some(f) = self.on_chunk.as_mut() {
            f(stream, bytes);
        }
    }

    /// Keeps `bytes` the callback has seen already.
    fn keep(&mut self, stream: Stream, bytes: Vec<u8>) {
        if !bytes.is_empty() {
            self.kept[stream as usize].push(bytes);
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

/// A command with options, made by [`Session::cmd`].
///
/// ```
/// # fn main() -> boxshell::Result<()> {
/// use std::time::Duration;
/// let mut sh = boxshell::Session::builder("-").runtime(boxshell::Runtime::Local).open()?;
/// let out = sh.cmd("tr a-z A-Z").stdin("shout\n").timeout(Duration::from_secs(5)).run()?;
/// assert_eq!(out.stdout, b"SHOUT\n");
/// # Ok(()) }
/// ```
#[must_use = "a command does nothing until `run` or `spawn` is called"]
pub struct Cmd<'s> {
    pub(super) session: &'s mut Session,
    pub(super) command: String,
    pub(super) timeout: Option<Option<Duration>>,
    pub(super) idle_timeout: Option<Option<Duration>>,
    pub(super) stdin: Option<Vec<u8>>,
    pub(super) interactive: bool,
    pub(super) max_output: Option<usize>,
    pub(super) on_chunk: Option<ChunkFn<'s>>,
}

impl std::fmt::Debug for Cmd<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cmd")
            .field("command", &self.command)
            .field("timeout", &self.timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("stdin_bytes", &self.stdin.as_ref().map(Vec::len))
            .field("interactive", &self.interactive)
            .field("max_output", &self.max_output)
            .finish_non_exhaustive()
    }
}

impl<'s> Cmd<'s> {
    /// This command's timeout, instead of the session's: `Some(duration)`, or `None` to wait
    /// for ever.
    pub fn timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.timeout = Some(timeout.into());
        self
    }

    /// This command's idle timeout, instead of the session's: aborted (as on a timeout) once
    /// it has printed nothing on either stream for this long. `None`: off.
    pub fn idle_timeout(mut self, idle: impl Into<Option<Duration>>) -> Self {
        self.idle_timeout = Some(idle.into());
        self
    }

    /// Bytes the command reads as its stdin (then EOF), any size. Without this, stdin is empty.
    /// A few KiB go in the command's frame; more go through a second, short-lived
    /// `exec -i ... cat` into a temporary file in the container, at the speed of the pipe.
    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self
    }

    /// Gives the command a live stdin: what [`Running::write_stdin`] writes, until
    /// [`Running::close_stdin`] (or [`Running::wait`]) closes it. Bytes given with
    /// [`stdin`](Cmd::stdin) are written first.
    ///
    /// The input goes through a FIFO in the container, fed by a second `exec -i` that starts
    /// with the command (one exec's start-up: tens of milliseconds on docker, about a hundred
    /// on podman). Everything else holds as for any command: timeouts, interrupts, the output
    /// cap, events, streams apart and byte for byte.
    ///
    /// ```
    /// # fn main() -> boxshell::Result<()> {
    /// use std::time::Duration;
    /// use boxshell::Stream;
    /// let mut sh = boxshell::Session::builder("-").runtime(boxshell::Runtime::Local).open()?;
    /// let mut r = sh.cmd("while read -r x; do echo \"got $x\"; done").interactive().spawn()?;
    /// r.write_stdin(b"one\n")?;
    /// assert_eq!(r.expect(Stream::Stdout, b"got one\n", Duration::from_secs(5))?, b"got one\n");
    /// r.write_stdin(b"two\n")?;
    /// r.close_stdin()?;
    /// let out = r.wait()?;
    /// assert_eq!((out.stdout.as_slice(), out.exit_code), (&b"got two\n"[..], 0));
    /// # Ok(()) }
    /// ```
    pub fn interactive(mut self) -> Self {
        self.interactive = true;
        self
    }

    /// The cap on bytes kept per stream, instead of the session's.
    pub fn max_output(mut self, bytes: usize) -> Self {
        self.max_output = Some(bytes);
        self
    }

    /// Calls `f` with every piece of output as it arrives, before it is kept (or dropped past
    /// the cap). With `max_output(0)`, output is streamed and nothing is kept.
    pub fn on_chunk(mut self, f: impl FnMut(Stream, &[u8]) + 's) -> Self {
        self.on_chunk = Some(Box::new(f));
        self
    }

    /// Runs the command and waits for it.
    ///
    /// # Errors
    /// As for [`Session::exec`].
    pub fn run(self) -> Result<Output> {
        // Without a callback nobody watches the output go by: the readers keep it and wake
        // the caller once, at the end.
        let keep = self.on_chunk.is_none();
        self.start(keep)?.wait()
    }

    /// Starts the command and returns at once.
    ///
    /// # Errors
    /// As for [`Session::exec`].
    pub fn spawn(self) -> Result<Running<'s>> {
        self.start(false)
    }

    fn start(self, keep: bool) -> Result<Running<'s>> {
        let session = self.session;
        let limits = Limits {
            timeout: self.timeout.unwrap_or(session.timeouts.command),
            idle: self.idle_timeout.unwrap_or(session.timeouts.idle),
        };
        let cap = self.max_output.unwrap_or(session.max_output);
        let deliver = if keep { Deliver::Keep(cap) } else { Deliver::Events };
        let stdin = match (&self.stdin, self.interactive) {
            (_, true) => Stdin::Live,
            (Some(data), false) => Stdin::Bytes(data),
            (None, false) => Stdin::Empty,
        };
        let job = session.start(&self.command, limits, stdin, deliver)?;
        let mut running = Running {
            session,
            events: job.rx.clone(),
            job: Some(job),
            collector: Collector::new(cap, self.on_chunk),
            held: Default::default(),
            cap,
            done: None,
        };
        if let (Some(data), true) = (&self.stdin, self.interactive) {
            running.write_stdin(data)?;
        }
        Ok(running)
    }
}

/// A command that is running; made by [`Session::spawn`] or [`Cmd::spawn`].
///
/// Its output arrives as [`Event`]s on [`events`](Running::events), a crossbeam channel that
/// disconnects once the command has finished and all its output has been delivered.
/// [`wait`](Running::wait) collects whatever has not been received from it. The command's
/// timeout is enforced while one of the `wait` methods is waiting.
///
/// Dropping a `Running` leaves the command running; the session waits for it (within its
/// timeout) before the next command and keeps its output for [`Session::read`].
///
/// ```
/// # fn main() -> boxshell::Result<()> {
/// let mut sh = boxshell::Session::builder("-").runtime(boxshell::Runtime::Local).open()?;
/// let running = sh.spawn("for i in 1 2 3; do echo $i; done")?;
/// let mut lines = Vec::new();
/// for event in running.events() {
///     lines.extend_from_slice(event.bytes());
/// }
/// assert_eq!(lines, b"1\n2\n3\n");
/// assert_eq!(running.wait()?.exit_code, 0);
/// # Ok(()) }
/// ```
pub struct Running<'s> {
    pub(super) session: &'s mut Session,
    pub(super) events: Receiver<Event>,
    pub(super) job: Option<Job>,
    pub(super) collector: Collector<'s>,
    /// Output received by [`expect`](Running::expect) and not consumed by it: searched by
    /// the next `expect`, handed to `wait` first.
    held: [Vec<u8>; 2],
    /// The output cap per stream.
    cap: usize,
    pub(super) done: Option<Output>,
}

impl std::fmt::Debug for Running<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("command", &self.job.as_ref().map(|j| &j.command))
            .field("finished", &self.done.is_some())
            .finish_non_exhaustive()
    }
}

impl Running<'_> {
    /// The command's output as it arrives. Receiving from it blocks without a timeout: use
    /// `recv_timeout`, or the `wait` methods, if the command might not end.
    pub fn events(&self) -> &Receiver<Event> {
        &self.events
    }

    /// Waits for the command to finish (or be stopped by its timeout). An interactive
    /// command's stdin is closed first: nothing can write to it any more.
    ///
    /// # Errors
    /// [`Error::Io`] only if stopping a timed-out command fails in an unexpected way.
    pub fn wait(mut self) -> Result<Output> {
        if let Some(feeder) = self.job.as_mut().and_then(|job| job.feeder.as_mut()) {
            feeder.close();
        }
        match self.run_until(None)? {
            Some(out) => Ok(out),
            None => unreachable!("waiting without a limit runs to the end"),
        }
    }

    /// Waits up to `timeout` for the command to finish; `None` if it is still running.
    ///
    /// # Errors
    /// As for [`wait`](Running::wait).
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<Output>> {
        self.wait_until(Some(Instant::now() + timeout))
    }

    /// The output if the command has finished, without blocking.
    ///
    /// # Errors
    /// As for [`wait`](Running::wait).
    pub fn try_wait(&mut self) -> Result<Option<Output>> {
        self.wait_until(Some(Instant::now()))
    }

    /// Aborts the command as Ctrl-C would; see [`Session::interrupt`].
    ///
    /// # Errors
    /// When the signalling exec fails.
    pub fn interrupt(&self) -> Result<()> {
        self.abort(Abort::Interrupt)
    }

    /// Aborts the command with SIGKILL to its processes; see [`Interrupter::kill`](super::Interrupter::kill).
    ///
    /// # Errors
    /// When the signalling exec fails.
    pub fn kill(&self) -> Result<()> {
        self.abort(Abort::Kill)
    }

    fn abort(&self, how: Abort) -> Result<()> {
        match self.job {
            Some(_) => self.session.reaper.abort(how).map(drop),
            None => Ok(()),
        }
    }

    /// As [`run_until`](Running::run_until), keeping a copy of the output for later calls.
    fn wait_until(&mut self, until: Option<Instant>) -> Result<Option<Output>> {
        if let Some(out) = &self.done {
            return Ok(Some(out.clone()));
        }
        let out = self.run_until(until)?;
        self.done.clone_from(&out);
        Ok(out)
    }

    /// Drives the command until it ends (its output, handed over once) or `until` passes.
    fn run_until(&mut self, until: Option<Instant>) -> Result<Option<Output>> {
        self.release_held();
        let Some(job) = self.job.as_mut() else { return Ok(self.done.take()) };
        let out = self.session.collect(job, &mut self.collector, until)?;
        if out.is_some() {
            self.job = None;
        }
        Ok(out)
    }

    /// Writes `data` to the stdin of a command started with [`Cmd::interactive`], and
    /// returns once it is on its way to the container (in the exec client's pipe). Output
    /// that arrives meanwhile is kept, as by [`expect`](Running::expect), so a command that
    /// echoes its input cannot block the write. A command that does not read blocks the
    /// write up to the command's timeout, which is enforced meanwhile.
    ///
    /// # Errors
    /// [`Error::CommandEnded`] when the command has ended (with its output);
    /// [`Error::StdinClosed`] when the command is not interactive, its stdin was closed, or
    /// its input no longer reaches it.
    pub fn write_stdin(&mut self, data: &[u8]) -> Result<()> {
        let mut sent = 0usize;
        for chunk in data.chunks(crate::proc::CHUNK) {
            let mut chunk = chunk.to_vec();
            loop {
                match self.feeder()?.offer(chunk, PUMP) {
                    Ok(None) => break,
                    Ok(Some(back)) => {
                        chunk = back;
                        self.receive(Some(Instant::now()), None, &mut |_| false)?;
                    }
                    Err(()) => return Err(self.stdin_broken(None)),
                }
            }
            sent += 1;
        }
        while sent > 0 {
            match self.feeder()?.ack(PUMP) {
                Some(Ok(())) => sent -= 1,
                Some(Err(e)) => return Err(self.stdin_broken(Some(e))),
                None => {
                    self.receive(Some(Instant::now()), None, &mut |_| false)?;
                }
            }
        }
        Ok(())
    }

    /// Closes the stdin of a command started with [`Cmd::interactive`]: it reads EOF once it
    /// has read what was written. Closing it again does nothing.
    ///
    /// # Errors
    /// [`Error::StdinClosed`] when the command is not interactive.
    pub fn close_stdin(&mut self) -> Result<()> {
        match self.job.as_mut().map(|job| job.feeder.as_mut()) {
            Some(Some(feeder)) => {
                feeder.close();
                Ok(())
            }
            Some(None) => Err(self.stdin_closed("the command was not started with `Cmd::interactive`")),
            // Over: its stdin went with it.
            None => Ok(()),
        }
    }

    /// Waits until `needle` appears on `stream` and returns that stream's output up to and
    /// including it; [`wait`](Running::wait) and later calls no longer see those bytes. What
    /// came after it, on either stream, is kept for the next `expect` and for `wait`.
    ///
    /// ```
    /// # fn main() -> boxshell::Result<()> {
    /// use std::time::Duration;
    /// use boxshell::Stream;
    /// let mut sh = boxshell::Session::builder("-").runtime(boxshell::Runtime::Local).open()?;
    /// let mut r = sh.cmd("printf 'login: '; read -r u; echo \"hi $u\" >&2").interactive().spawn()?;
    /// r.expect(Stream::Stdout, b"login: ", Duration::from_secs(5))?;
    /// r.write_stdin(b"ann\n")?;
    /// assert_eq!(r.expect(Stream::Stderr, b"\n", Duration::from_secs(5))?, b"hi ann\n");
    /// assert_eq!(r.wait()?.exit_code, 0);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::ExpectTimeout`] when `needle` has not appeared within `timeout`, with what the
    /// stream showed meanwhile; the command goes on and can be driven further.
    /// [`Error::CommandEnded`] when the command ends first, with its exit code and output.
    pub fn expect(&mut self, stream: Stream, needle: &[u8], timeout: Duration) -> Result<Vec<u8>> {
        let mut scanned = 0usize;
        self.expect_with(stream, timeout, |seen| {
            let found = find(seen, needle, scanned.saturating_sub(needle.len().saturating_sub(1)));
            scanned = seen.len();
            found
        })
    }

    /// As [`expect`](Running::expect), with `matcher` deciding where the awaited output ends:
    /// it is called with all of `stream`'s output not consumed yet, each time more has come,
    /// and returns the length of the part to consume (a prompt, a whole line, a count of
    /// records), or `None` to wait for more.
    ///
    /// ```
    /// # fn main() -> boxshell::Result<()> {
    /// use std::time::Duration;
    /// use boxshell::Stream;
    /// let mut sh = boxshell::Session::builder("-").runtime(boxshell::Runtime::Local).open()?;
    /// let mut r = sh.cmd("seq 1 5").interactive().spawn()?;
    /// // The first three lines, whatever pieces they come in.
    /// let lines = |seen: &[u8]| {
    ///     seen.iter().enumerate().filter(|(_, b)| **b == b'\n').nth(2).map(|(i, _)| i + 1)
    /// };
    /// assert_eq!(r.expect_with(Stream::Stdout, Duration::from_secs(5), lines)?, b"1\n2\n3\n");
    /// assert_eq!(r.wait()?.stdout, b"4\n5\n");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As for [`expect`](Running::expect).
    pub fn expect_with(
        &mut self,
        stream: Stream,
        timeout: Duration,
        mut matcher: impl FnMut(&[u8]) -> Option<usize>,
    ) -> Result<Vec<u8>> {
        let s = stream as usize;
        let deadline = Instant::now() + timeout;
        let mut found = if self.held[s].is_empty() { None } else { matcher(&self.held[s]) };
        if found.is_none() {
            let mut len = self.held[s].len();
            let ended = self.receive(Some(deadline), Some(stream), &mut |held| {
                if held[s].len() == len {
                    return false;
                }
                len = held[s].len();
                found = matcher(&held[s]);
                found.is_some()
            })?;
            if ended && found.is_none() {
                return Err(self.ended());
            }
        }
        let result = match found {
            Some(end) => Ok(self.held[s].drain(..end.min(self.held[s].len())).collect()),
            None if self.job.is_none() => Err(self.ended()),
            None => Err(Error::ExpectTimeout {
                command: self.command().to_string(),
                stream,
                seen: self.held[s].clone(),
                waited: timeout,
            }),
        };
        self.trim_held(s);
        result
    }

    /// Receives the command's output into `held` until `until` passes, the command ends
    /// (`true`) or `stop` says it has what it waited for. `held` of streams other than
    /// `expected` is trimmed to the cap as it grows, the oldest bytes going to the collector.
    fn receive(
        &mut self,
        until: Option<Instant>,
        expected: Option<Stream>,
        stop: &mut dyn FnMut(&[Vec<u8>; 2]) -> bool,
    ) -> Result<bool> {
        let Some(job) = self.job.as_mut() else { return Ok(true) };
        let (held, collector, cap) = (&mut self.held, &mut self.collector, self.cap);
        let finish = self.session.drive(job, until, &mut |ev| {
            let stream = ev.stream();
            collector.tap(stream, ev.bytes());
            let buf = &mut held[stream as usize];
            buf.extend_from_slice(ev.bytes());
            if Some(stream) != expected && buf.len() > cap {
                collector.keep(stream, buf.drain(..buf.len() - cap).collect());
            }
            stop(held)
        })?;
        let Some(finish) = finish else { return Ok(false) };
        self.release_held();
        if let Some(mut job) = self.job.take() {
            self.done = Some(self.collector.output(&mut job, finish));
        }
        Ok(true)
    }

    /// Keeps no more than the cap of `held[s]`, the oldest bytes going to the collector.
    fn trim_held(&mut self, s: usize) {
        let buf = &mut self.held[s];
        if buf.len() > self.cap {
            let stream = if s == 0 { Stream::Stdout } else { Stream::Stderr };
            self.collector.keep(stream, buf.drain(..buf.len() - self.cap).collect());
        }
    }

    /// Hands what `expect` kept over to the collector, before what comes later.
    fn release_held(&mut self) {
        for (stream, buf) in [Stream::Stdout, Stream::Stderr].into_iter().zip(&mut self.held) {
            self.collector.keep(stream, std::mem::take(buf));
        }
    }

    /// The live stdin, if the command is running, interactive, and its stdin open.
    fn feeder(&self) -> Result<&Feeder> {
        match self.job.as_ref().map(|job| job.feeder.as_ref()) {
            None => Err(self.ended()),
            Some(None) => Err(self.stdin_closed("the command was not started with `Cmd::interactive`")),
            Some(Some(feeder)) if !feeder.is_open() => Err(self.stdin_closed("its stdin was closed")),
            Some(Some(feeder)) => Ok(feeder),
        }
    }

    /// The error for input that could not be written: the command ended, or it runs but its
    /// feeder has stopped (killed from outside).
    fn stdin_broken(&mut self, cause: Option<std::io::Error>) -> Error {
        // Let the command's end, if it is one, arrive.
        let _ = self.receive(Some(Instant::now() + PUMP), None, &mut |_| false);
        match (&self.job, cause) {
            (None, _) => self.ended(),
            (Some(_), Some(e)) => self.stdin_closed(format!("its input no longer reaches it: {e}")),
            (Some(_), None) => self.stdin_closed("its input no longer reaches it"),
        }
    }

    fn stdin_closed(&self, reason: impl Into<String>) -> Error {
        Error::StdinClosed { command: self.command().to_string(), reason: reason.into() }
    }

    /// [`Error::CommandEnded`] with the output, once the command has ended.
    fn ended(&self) -> Error {
        match &self.done {
            Some(out) => Error::CommandEnded { output: Box::new(out.clone()) },
            None => self.stdin_closed("the command has ended"),
        }
    }

    /// The command line.
    fn command(&self) -> &str {
        match (&self.job, &self.done) {
            (Some(job), _) => &job.command,
            (None, Some(out)) => &out.command,
            (None, None) => "",
        }
    }
}

/// How long a write or an expect waits on its own before it lets the command's output in and
/// its deadline act.
const PUMP: Duration = Duration::from_millis(20);

/// The end of the first `needle` in `haystack` at or after `from`.
fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|i| from + i + needle.len())
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Some(mut job) = self.job.take() {
            if let Some(feeder) = job.feeder.as_mut() {
                feeder.close();
            }
            // What `expect` kept and nobody consumed is unread output, as the rest will be.
            for (stream, buf) in [Stream::Stdout, Stream::Stderr].into_iter().zip(&self.held) {
                self.session.shared.push_unread(stream, buf);
            }
            self.session.pending = Some(job);
        }
    }
}
