//! How the session drives a command to its end: sending it, receiving its output, stopping it
//! step by step past its deadline, and booking how it ended. The public face of a command,
//! [`Cmd`](super::Cmd) and [`Running`](super::Running), is in [`running`](super::running).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::input::Feeder;
use super::protocol::{self, Input, Token};
use super::route::{Completion, End, Kept, Sink};
use super::stop::{Limits, Stop};
use super::{Event, Output, Session, Stream, TICK};
use crate::error::{Error, Result};
use crate::reap::{Reap, Scope, Signal};
use crate::text;

/// The built-ins and programs `reap.sh` calls, which a user's functions could replace.
pub(super) const UNSHADOWED: &str = "kill read set test [ echo rm shift exit return unset : true";

/// How many output events a running command may have in flight before the readers wait.
pub(super) const CHANNEL_CAP: usize = 32;

/// Largest stdin given inline, as `printf` text in the frame (up to four bytes of text per
/// byte, so the frame fits a pipe's buffer); more goes through a feeding exec.
pub(super) const INLINE_STDIN: usize = 8 << 10;

/// A command being run, for the session's internal bookkeeping. Its deadlines are the
/// watch's ([`Stop`]).
pub(super) struct Job {
    pub(super) seq: u64,
    pub(super) rx: Receiver<Event>,
    pub(super) command: String,
    pub(super) started: Instant,
    /// The live stdin of an interactive command.
    pub(super) feeder: Option<Feeder>,
    /// Counted in the session's metrics (the session's own fences are not).
    pub(super) counted: bool,
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

/// How a job ended.
pub(super) struct Finish {
    pub(super) exit_code: i32,
    pub(super) timed_out: bool,
    pub(super) duration: Duration,
    /// Output kept by the readers (for [`Deliver::Keep`]).
    pub(super) kept: [Kept; 2],
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
        let known_job = self.signaller.known_job();
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
        let started = Instant::now();
        let job = Job { seq: self.seq, rx, command: command.to_string(), started, feeder, counted: true };
        if !self.shared.begin(job.seq, token.marker(), sink, done, limits.idle.is_some()) {
            self.mark_dead(None, true);
            return Err(self.shell_exited());
        }
        self.watch.begin(job.seq, token, Stop::new(started, limits, self.timeouts.grace));
        // Its processes must start in a later clock tick than the last background job did.
        self.signaller.tick_apart();
        if let Err(e) = self.write(text.as_bytes()) {
            // The shell is gone (EPIPE): its pipes are closing, and waiting for the job finds
            // out how it ended and what it printed.
            log::debug!("{e}");
        }
        Ok(job)
    }

    /// Kills what is left of the processes an aborted command's interrupt signalled (its
    /// background jobs ignore SIGINT), through the session's own shell: `reap.sh` in a
    /// subshell, safe from the user's aliases and functions. Its end comes after every byte
    /// they wrote, so none reaches the next command: they are background output, for `read`.
    fn end_leftovers(&mut self, tree: &[u32], command: &str) {
        let reap = Reap {
            scope: Scope::Pids(tree),
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
    /// says it has what it waited for (`None`). The watch stops the command at its deadlines;
    /// this notices the shell's exec client exiting, and the command given up.
    pub(super) fn drive(
        &mut self,
        job: &mut Job,
        until: Option<Instant>,
        sink: &mut dyn FnMut(Event) -> bool,
    ) -> Result<Option<Finish>> {
        loop {
            let wake = until.map_or(Instant::now() + TICK, |u| u.min(Instant::now() + TICK));
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
                    if self.life.is_live() && self.client.has_exited() {
                        // The shell is gone but something it left still holds its pipes open:
                        // ending what it left closes them; the readers get a grace period.
                        self.mark_dead(None, !self.watch.unreachable(job.seq));
                        self.watch.shell_gone(job.seq);
                    }
                    if self.watch.given_up(job.seq) {
                        return Ok(Some(self.finish(job)));
                    }
                    if until.is_some_and(|u| Instant::now() >= u) {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// Books the end of `job` and works out its exit code.
    pub(super) fn finish(&mut self, job: &mut Job) -> Finish {
        if let Some(mut feeder) = job.feeder.take() {
            feeder.end(self.timeouts.grace);
        }
        let stop = self.watch.end(job.seq);
        let (timed_out, unreachable) = stop.as_ref().map_or((false, false), |s| (s.timed_out(), s.unreachable()));
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
            self.signaller.saw(status);
        }
        let shell_gone =
            !matches!(completion, Some(Completion { stdout: End::Sentinel(_), stderr: End::Sentinel(_), .. }));
        if shell_gone && self.life.is_live() {
            self.mark_dead(None, !unreachable);
        } else if let Some(tree) = stop.as_ref().map(Stop::tree).filter(|t| !shell_gone && !t.is_empty()) {
            // The command is over, but what ignored its interrupt (background processes do)
            // must not outlive it.
            self.end_leftovers(tree, &job.command);
        }
        let exit_code = match status {
            Some(status) => status.code,
            None => self.life.exit_code().unwrap_or(if timed_out { 137 } else { -1 }),
        };
        if job.counted {
            self.metrics.commands += 1;
            self.metrics.busy += duration;
            self.metrics.last_used = Instant::now();
        }
        let kept = completion.map(|c| c.kept).unwrap_or_default();
        Finish { exit_code, timed_out, duration, kept }
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
