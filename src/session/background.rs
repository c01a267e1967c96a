//! Background processes: a command the session's shell starts with `&`, whose output a second
//! exec of its own (the outlet) carries to this process, kept here as a ring, and followed by
//! a [`Process`] handle.
//!
//! The outlet exec says `ready PID` and then waits on its stdin (a pipe from this process)
//! with its stdout and stderr open: pipes to this process. The session's shell starts the
//! command in the background writing to `/proc/PID/fd/1` and `/proc/PID/fd/2`, the outlet's
//! own pipes, so its output moves at the engine's pipe speed, never through the container's
//! disk and never into the session's streams. The command runs in a subshell of a group that,
//! when it ends, writes a sentinel on both pipes, with the exit code on stderr's: everything
//! the command wrote before it ended comes before. This process then closes the outlet's
//! stdin, and the streams end when the last process holding them (the command's own
//! background children, if any) lets go.

use std::collections::VecDeque;
use std::io::Read;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use super::protocol::{Scanner, Token};
use super::signal::Signaller;
use super::{Cmd, Session, lock};
use crate::engine::{ExecSpec, Op};
use crate::error::{Error, Result};
use crate::output::{Logs, Output, PerStream, Stream};
use crate::proc;
use crate::reap::{Procs, Reaped, Signal};

/// The outlet's script: `$1` is the `NAME=VALUE` put in the environment of its `cat`, so that
/// it can be found and ended; `$2` the nonce of its [`Hello`](proc::Hello), on stderr before
/// the ready line: the process, started once that line is read, writes after it.
const OUTLET: &str = "if [ -p /proc/$$/fd/1 ] && [ -p /proc/$$/fd/2 ]; then echo \"$2\" >&2; echo \"ready $2 $$\"; \
    export \"$1\"; exec cat; else echo 'the exec has no pipes for stdout and stderr'; exit 1; fi";

/// Where a reader thread learns that the process has started (or, when the sender is
/// dropped, that it never will).
type Started = crossbeam_channel::Receiver<Arc<Shared>>;

/// What an outlet's stdout says: its PID, or what it printed instead.
type StartResult = std::result::Result<u32, String>;

/// What a [`Process`] and its session share with the outlet's reader threads.
pub(super) struct Shared {
    command: String,
    pid: u32,
    /// The process's start time (clock ticks since boot): its PID names it only while that holds.
    start: u64,
    started: Instant,
    state: Mutex<LogState>,
    changed: Condvar,
    outlet: Mutex<Outlet>,
}

/// The second exec that carries a background process's output.
struct Outlet {
    child: Option<Child>,
    /// Closed once the process has ended: the outlet's `cat` then ends.
    stdin: Option<ChildStdin>,
    threads: Vec<JoinHandle<()>>,
    /// `BOXSHELL_OUTLET=...`, in the environment of the outlet's `cat` only.
    mark: String,
}

/// An outlet that is ready: its PID in the container, and where to tell its reader threads
/// that the process has started.
struct Ready {
    outlet: Outlet,
    pid: u32,
    notify: [Sender<Arc<Shared>>; 2],
}

/// A background process's output and how it ended.
#[derive(Default)]
struct LogState {
    streams: PerStream<Ring>,
    /// Chunks received, numbered in the order they came: the order of lines across streams.
    seq: u64,
    /// The exit code, once the group that started the process has said it.
    exit: Option<i32>,
    /// Streams that have ended.
    closed: PerStream<bool>,
    /// Streams that have said the process ended (its group's sentinel), or ended: everything
    /// the process wrote to them before it ended has come.
    done: PerStream<bool>,
    /// How far [`Process::wait_for`] has consumed each stream (bytes since the start).
    cursor: PerStream<u64>,
}

impl LogState {
    fn ended(&self) -> bool {
        self.done.stdout && self.done.stderr
    }

    /// What `stream` holds past [`Process::wait_for`]'s cursor up to and including the first
    /// `needle`, consumed; `searched` is how far an earlier call found nothing (an offset in
    /// the stream), and is moved on when nothing is found again.
    fn take_through(&mut self, stream: Stream, needle: &[u8], searched: &mut u64) -> Option<Vec<u8>> {
        let ring = &self.streams[stream];
        let from = self.cursor[stream].max(ring.window_start());
        let hay = ring.from(from);
        let done = usize::try_from(searched.saturating_sub(from)).unwrap_or(usize::MAX).min(hay.len());
        let skip = done.saturating_sub(needle.len().saturating_sub(1));
        let Some(at) = find(&hay[skip..], needle).map(|at| skip + at) else {
            *searched = from + hay.len() as u64;
            return None;
        };
        let found = hay[..at + needle.len()].to_vec();
        self.cursor[stream] = from + found.len() as u64;
        Some(found)
    }
}

/// The last `cap` bytes of a stream (up to twice that is held, so that trimming is cheap),
/// with where each chunk began and its number.
#[derive(Default)]
struct Ring {
    data: Vec<u8>,
    /// The offset in the stream of `data[0]`.
    base: u64,
    /// `(offset, seq)` of each chunk still held.
    chunks: VecDeque<(u64, u64)>,
    cap: usize,
}

impl Ring {
    fn push(&mut self, bytes: &[u8], seq: u64) {
        self.chunks.push_back((self.end(), seq));
        self.data.extend_from_slice(bytes);
        if self.data.len() > 2 * self.cap.max(1) {
            let drop = self.data.len() - self.cap;
            self.data.drain(..drop);
            self.base += drop as u64;
            while self.chunks.len() > 1 && self.chunks[1].0 <= self.base {
                self.chunks.pop_front();
            }
        }
    }

    fn end(&self) -> u64 {
        self.base + self.data.len() as u64
    }

    /// Where the last `cap` bytes start.
    fn window_start(&self) -> u64 {
        self.end() - self.data.len().min(self.cap) as u64
    }

    /// The bytes from `from` (an offset in the stream, within what is held) to the end.
    fn from(&self, from: u64) -> &[u8] {
        &self.data[(from.max(self.base) - self.base) as usize..]
    }

    /// The number of the chunk holding offset `at`.
    fn seq_at(&self, at: u64) -> u64 {
        let i = self.chunks.partition_point(|&(start, _)| start <= at);
        self.chunks.get(i.saturating_sub(1)).map_or(0, |&(_, seq)| seq)
    }

    /// The lines of the last `cap` bytes, each with its chunk's number and offset.
    fn lines(&self) -> Vec<(u64, u64, Vec<u8>)> {
        let start = self.window_start();
        let mut at = start;
        self.from(start)
            .split_inclusive(|&b| b == b'\n')
            .map(|line| {
                let entry = (self.seq_at(at), at, line.to_vec());
                at += line.len() as u64;
                entry
            })
            .collect()
    }
}

/// A process started in the background by a session ([`Cmd::background`]).
///
/// Its output is kept in this process (the last [`Cmd::max_output`] bytes of each stream, as
/// a ring; nothing is written to the container's disk) and it is followed without the session:
/// unlike the sketch of `web.logs(&mut sh, ..)`, no method takes the session, because the
/// output comes on an exec of its own and signals go through one. The session can run other
/// commands meanwhile. It is cheap to clone; every clone follows the same process.
///
/// ```no_run
/// # fn main() -> boxshell::Result<()> {
/// use std::time::Duration;
/// use boxshell::{Session, Stream};
/// let mut sh = Session::builder("web").open()?;
/// let web = sh.cmd("python3 -m http.server 8000").workdir("/srv").background()?;
/// web.wait_for(Stream::Stderr, b"Serving HTTP", Duration::from_secs(10))?;
/// sh.exec("curl -s localhost:8000 >/dev/null")?.check()?;
/// println!("{:?}", web.logs(Some(50)).lines);
/// web.interrupt()?;
/// assert_eq!(web.wait(Duration::from_secs(5)), Some(130));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Process {
    shared: Arc<Shared>,
    signaller: Arc<Signaller>,
    grace: Duration,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("pid", &self.shared.pid)
            .field("command", &self.shared.command)
            .field("running", &self.is_running())
            .finish_non_exhaustive()
    }
}

/// What [`Session::processes`] says of a background process.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProcessStatus {
    /// The PID, in the container, of the group that started it (its processes are that
    /// group's descendants).
    pub pid: u32,
    /// The command line.
    pub command: String,
    /// Its exit code once it has ended (`128 + N` when signal N ended it).
    pub exit_code: Option<i32>,
    /// Whether it is still running.
    pub running: bool,
}

impl Process {
    /// The PID, in the container, of the group that started the process: the process and
    /// whatever it starts are its descendants.
    pub fn pid(&self) -> u32 {
        self.shared.pid
    }

    /// The command line.
    pub fn command(&self) -> &str {
        &self.shared.command
    }

    /// Waits until `needle` appears on `stream`, as [`Running::expect`](super::Running::expect):
    /// returns what the stream held from the end of the last match up to and including the
    /// needle, and the next call searches after it.
    ///
    /// # Errors
    /// [`Error::ExpectTimeout`] (the process goes on) with what was seen; [`Error::CommandEnded`]
    /// when the stream has ended without it, with the process's output and exit code.
    pub fn wait_for(&self, stream: Stream, needle: &[u8], timeout: Duration) -> Result<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut state = lock(&self.shared.state);
        // Where the stream has been searched to already (an offset in the stream).
        let mut searched: u64 = 0;
        loop {
            if let Some(found) = state.take_through(stream, needle, &mut searched) {
                return Ok(found);
            }
            if state.closed[stream] {
                return Err(Error::CommandEnded { output: Box::new(self.output(&state)) });
            }
            let now = Instant::now();
            if now >= deadline {
                let ring = &state.streams[stream];
                let seen = ring.from(state.cursor[stream].max(ring.window_start())).to_vec();
                return Err(Error::ExpectTimeout {
                    command: self.shared.command.clone(),
                    stream,
                    seen,
                    waited: timeout,
                });
            }
            state = self.shared.changed.wait_timeout(state, deadline - now).map_or_else(|e| e.into_inner().0, |r| r.0);
        }
    }

    /// The last `lines` lines of both streams (all that is kept, with `None`), each with its
    /// stream, in the order they came, as [`Containers::logs`](crate::container::Containers::logs)
    /// gives a container's.
    pub fn logs(&self, lines: Option<usize>) -> Logs {
        let state = lock(&self.shared.state);
        let mut all: Vec<(u64, Stream, u64, Vec<u8>)> = Stream::BOTH
            .into_iter()
            .flat_map(|s| state.streams[s].lines().into_iter().map(move |(seq, at, line)| (seq, s, at, line)))
            .collect();
        all.sort_by_key(|&(seq, stream, at, _)| (seq, stream == Stream::Stderr, at));
        let skip = lines.map_or(0, |n| all.len().saturating_sub(n));
        Logs::from_lines(all.into_iter().skip(skip).map(|(_, stream, _, line)| (stream, line)).collect())
    }

    /// Whether it is still running: its group has not yet said on both streams that it ended
    /// (and they are still open).
    pub fn is_running(&self) -> bool {
        !lock(&self.shared.state).ended()
    }

    /// Waits up to `timeout` for it to end: its exit code (`128 + N` when signal N ended it;
    /// [`Output::UNKNOWN`] when it ended without saying, as when its session was closed), or
    /// `None` if it is still running then.
    pub fn wait(&self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        let mut state = lock(&self.shared.state);
        while !state.ended() {
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            state = self.shared.changed.wait_timeout(state, deadline - now).map_or_else(|e| e.into_inner().0, |r| r.0);
        }
        Some(state.exit.unwrap_or(Output::UNKNOWN))
    }

    /// Sends SIGINT to its processes (the whole tree it started, not processes that only
    /// reuse their PIDs) and waits up to the session's grace period for it to end; then sends
    /// SIGKILL to what is left of that tree (children that ignore SIGINT, as a command's
    /// background jobs do, outlive it otherwise), as a session does when it aborts a command.
    ///
    /// dash and busybox ash start background jobs with SIGINT ignored (POSIX shells do, and
    /// only bash lets it be undone), so there a process that does not set its own handler
    /// ends at the SIGKILL; bash sessions give it SIGINT's default.
    ///
    /// # Errors
    /// When the signalling exec fails (the container is gone or does not answer).
    pub fn interrupt(&self) -> Result<()> {
        if !self.is_running() {
            return Ok(());
        }
        let tree = match self.signal(Signal::Int)? {
            Reaped::Signalled(tree) => tree,
            Reaped::ShellGone | Reaped::Restarted => return Ok(()),
        };
        if self.wait(self.grace).is_none() {
            self.kill()?;
        }
        if !tree.is_empty() {
            self.signaller.signal(Procs::Pids(&tree), Signal::Kill, None)?;
        }
        Ok(())
    }

    /// Sends SIGKILL to its processes, and waits (up to the session's grace period) for it to
    /// be seen ending.
    ///
    /// # Errors
    /// When the signalling exec fails.
    pub fn kill(&self) -> Result<()> {
        if !self.is_running() {
            return Ok(());
        }
        self.signal(Signal::Kill)?;
        self.wait(self.grace);
        Ok(())
    }

    fn signal(&self, signal: Signal) -> Result<Reaped> {
        let roots = [(self.shared.pid, self.shared.start)];
        self.signaller.signal(Procs::Tree(&roots), signal, None)
    }

    /// Its output so far, as an [`Output`].
    fn output(&self, state: &LogState) -> Output {
        let window = |s: Stream| state.streams[s].from(state.streams[s].window_start()).to_vec();
        Output {
            stdout: window(Stream::Stdout),
            stderr: window(Stream::Stderr),
            exit_code: state.exit.unwrap_or(Output::UNKNOWN),
            timed_out: false,
            truncated: Stream::BOTH.into_iter().any(|s| state.streams[s].window_start() > 0),
            stdout_gap: None,
            stderr_gap: None,
            duration: self.shared.started.elapsed(),
            command: self.shared.command.clone(),
        }
    }

    fn status(&self) -> ProcessStatus {
        let state = lock(&self.shared.state);
        let running = !state.ended();
        let exit_code = (!running).then(|| state.exit.unwrap_or(Output::UNKNOWN));
        ProcessStatus { pid: self.shared.pid, command: self.shared.command.clone(), exit_code, running }
    }
}

/// The first position of `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Shared {
    fn push(&self, stream: Stream, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut state = lock(&self.state);
        state.seq += 1;
        let seq = state.seq;
        state.streams[stream].push(bytes, seq);
        drop(state);
        self.changed.notify_all();
    }

    fn close(&self, stream: Stream) {
        let both = {
            let mut state = lock(&self.state);
            state.closed[stream] = true;
            state.closed.stdout && state.closed.stderr
        };
        self.done(stream, None);
        if both {
            // The outlet's client is ending (its pipes are closed): it is reaped now, not left a
            // zombie until the session closes.
            let child = lock(&self.outlet).child.take();
            if let Some(mut child) = child
                && proc::wait_until(&mut child, Instant::now() + Duration::from_secs(2)).is_none()
            {
                lock(&self.outlet).child = Some(child);
            }
        }
    }

    /// Drops the output of an ended process no handle follows any more: the session keeps
    /// only how it ended.
    fn forget_output(self: &Arc<Self>) {
        if Arc::strong_count(self) == 1 {
            let mut state = lock(&self.state);
            if state.ended() && state.closed.stdout && state.closed.stderr {
                state.streams = PerStream::default();
            }
        }
    }

    /// `stream` has said the process ended (on stderr, with its exit code): once both have,
    /// the outlet may go.
    fn done(&self, stream: Stream, code: Option<i32>) {
        let mut state = lock(&self.state);
        state.done[stream] = true;
        if code.is_some() {
            state.exit = code;
        }
        let ended = state.ended();
        drop(state);
        self.changed.notify_all();
        if ended {
            lock(&self.outlet).stdin = None;
        }
    }

    /// Ends the outlet: closes its stdin, waits up to `grace` for it, then ends its `cat` in
    /// the container and its client; the reader threads end with its pipes.
    fn end_outlet(&self, signaller: &Signaller, grace: Duration) {
        let mut outlet = lock(&self.outlet);
        outlet.stdin = None;
        let Some(mut child) = outlet.child.take() else { return };
        if proc::wait_until(&mut child, Instant::now() + grace).is_none() {
            if let Err(e) = signaller.signal(Procs::Environ(&outlet.mark), Signal::Kill, None) {
                log::warn!("ending the outlet of `{}`: {e}", self.command);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let deadline = Instant::now() + grace.max(Duration::from_secs(1));
        for thread in outlet.threads.drain(..) {
            if proc::poll_until(deadline, proc::QUICK_POLL, || thread.is_finished()) {
                let _ = thread.join();
            }
        }
    }
}

/// Reads the outlet's stdout: its ready line (the PID sent on `ready`; what came instead,
/// at its end), then the process's stdout.
fn read_stdout(mut pipe: impl Read, hello: &proc::Hello, token: Token, ready: Sender<StartResult>, started: Started) {
    match proc::read_until(&mut pipe, |seen| hello.ready(seen)) {
        Ok((Some(pid), rest)) => {
            let _ = ready.send(Ok(pid));
            let Ok(shared) = started.recv() else { return };
            follow(&shared, Stream::Stdout, pipe, token, rest);
        }
        Ok((None, seen)) | Err(seen) => {
            let _ = ready.send(Err(proc::said(&seen)));
        }
    }
}

/// Reads the outlet's stderr: its nonce line, then the process's stderr. What comes before
/// the nonce is the login's or the client's, not the process's: if the process never
/// starts, it goes to `complaint`.
fn read_stderr(mut pipe: impl Read, hello: &proc::Hello, token: Token, started: Started, complaint: Sender<String>) {
    match proc::read_until(&mut pipe, |seen| hello.past_stderr(seen).map(|end| ((), end))) {
        Ok((_, rest)) => {
            let Ok(shared) = started.recv() else { return };
            follow(&shared, Stream::Stderr, pipe, token, rest);
        }
        Err(seen) => {
            let _ = complaint.send(proc::said(&seen));
        }
    }
}

/// Keeps what `pipe` brings of `stream` (after `first`) up to the group's sentinel line (on
/// stderr, with the exit code), then whatever the process's children still write, to its end.
fn follow(shared: &Shared, stream: Stream, pipe: impl Read, token: Token, first: Vec<u8>) {
    let mut scanner = Some(Scanner::new(token.marker()));
    let mut feed = |chunk: &[u8]| match &mut scanner {
        Some(s) => {
            let scan = s.feed(chunk.to_vec());
            shared.push(stream, &scan.data);
            if let Some(trailer) = scan.end {
                let code = std::str::from_utf8(&trailer).ok().and_then(|t| t.trim().parse().ok());
                let code = (stream == Stream::Stderr).then(|| code.unwrap_or(Output::UNKNOWN));
                scanner = None;
                shared.done(stream, code);
                shared.push(stream, &scan.rest);
            }
        }
        None => shared.push(stream, chunk),
    };
    feed(&first);
    let _ = proc::pump(pipe, &mut feed);
    if let Some(s) = &mut scanner {
        shared.push(stream, &s.flush());
    }
    shared.close(stream);
}

impl Cmd<'_> {
    /// Starts the command in the background of the session's shell and returns a handle to
    /// it once it runs; the session runs other commands meanwhile. Its environment and
    /// directory are the session's, with this command's [`env`](Cmd::env) and
    /// [`workdir`](Cmd::workdir); its stdin is empty; its output goes to the [`Process`] (the
    /// last [`max_output`](Cmd::max_output) bytes of each stream), never to the session's
    /// commands. Closing the session ends it.
    ///
    /// Costs one exec of its own (the outlet that carries its output: tens of milliseconds
    /// on docker, about a hundred on podman) and one command of the session. The command's
    /// timeouts bound that start, not the process, which runs until it ends or is stopped.
    ///
    /// # Errors
    /// [`Error::Fs`] when its workdir cannot be entered; [`Error::InvalidValue`] when it was
    /// given [`stdin`](Cmd::stdin), [`interactive`](Cmd::interactive) or
    /// [`on_chunk`](Cmd::on_chunk); when the outlet exec cannot be started; as for
    /// [`Session::exec`](super::Session::exec).
    pub fn background(self) -> Result<Process> {
        let Cmd { session, command, limits, overlay, max_output, stdin, interactive, terminal, on_chunk, .. } = self;
        overlay.check()?;
        if stdin.is_some() || interactive || terminal.is_some() || on_chunk.is_some() {
            let reason =
                "its stdin is empty and its output goes to the Process: stdin, interactive and on_chunk do not apply";
            return Err(Error::InvalidValue { what: "background command", reason });
        }
        let token = Token::random();
        let Ready { outlet, pid: outlet_pid, notify } = session.outlet(token)?;
        let (a, b) = token.halves();
        // The exit code is taken in an AND-OR list, which the session's `set -e` does not end.
        let launch = format!(
            "{{ ( \\command trap - INT QUIT; {{BODY}} ) && __bx_s=0 || __bx_s=$?; \\command printf '\\037bx%s%s %d\\n' {a} {b} \"$__bx_s\" >&2; \\command printf '\\037bx%s%s\\n' {a} {b}; }} \
             </dev/null >/proc/{outlet_pid}/fd/1 2>/proc/{outlet_pid}/fd/2 & \
             \\command read -r __bx_bg </proc/$!/stat && \\command printf '%s\\n' \"$__bx_bg\"; \\command unset __bx_bg"
        );
        let launcher = Cmd {
            session: &mut *session,
            command: command.clone(),
            limits,
            stdin: None,
            interactive: false,
            terminal: None,
            max_output: 4096,
            on_chunk: None,
            overlay,
            launch: Some(Box::new(move |body: &str| launch.replace("{BODY}", body))),
        };
        let launched = launcher.run().and_then(Output::check).and_then(|out| {
            parse_stat(&out.stdout).ok_or_else(|| {
                let message = format!("unexpected answer {:?}", String::from_utf8_lossy(&out.stdout));
                Error::io(format!("starting `{command}` in the background"), std::io::Error::other(message))
            })
        });
        let (pid, start) = match launched {
            Ok(started) => started,
            Err(e) => {
                Shared::detached(command, outlet).end_outlet(&session.signaller, Duration::ZERO);
                return Err(e);
            }
        };
        let ring = || Ring { cap: max_output, ..Ring::default() };
        let shared = Arc::new(Shared {
            command,
            pid,
            start,
            started: Instant::now(),
            state: Mutex::new(LogState {
                streams: PerStream { stdout: ring(), stderr: ring() },
                ..LogState::default()
            }),
            changed: Condvar::new(),
            outlet: Mutex::new(outlet),
        });
        for tx in notify {
            let _ = tx.send(Arc::clone(&shared));
        }
        session.background.iter().for_each(Shared::forget_output);
        session.background.push(Arc::clone(&shared));
        Ok(session.handle(&shared))
    }
}

impl Shared {
    /// The state of a process that never started, to end its outlet.
    fn detached(command: String, outlet: Outlet) -> Shared {
        Shared {
            command,
            pid: 0,
            start: 0,
            started: Instant::now(),
            state: Mutex::new(LogState::default()),
            changed: Condvar::new(),
            outlet: Mutex::new(outlet),
        }
    }
}

/// The PID and start time in a `/proc/PID/stat` line.
fn parse_stat(line: &[u8]) -> Option<(u32, u64)> {
    let line = std::str::from_utf8(line).ok()?.trim();
    let pid = line.split(' ').next()?.parse().ok()?;
    let start = line.rsplit_once(") ")?.1.split(' ').nth(19)?.parse().ok()?;
    Some((pid, start))
}

impl Session {
    /// The background processes this session started ([`Cmd::background`]), in the order
    /// started, with the exit codes of those that ended. The output of one that has ended is
    /// kept only while a [`Process`] handle to it remains.
    pub fn processes(&self) -> Vec<ProcessStatus> {
        self.background.iter().for_each(Shared::forget_output);
        self.background.iter().map(|shared| self.handle(shared).status()).collect()
    }

    fn handle(&self, shared: &Arc<Shared>) -> Process {
        Process { shared: Arc::clone(shared), signaller: Arc::clone(&self.signaller), grace: self.timeouts.grace }
    }

    /// Ends the outlets of the background processes (the processes themselves end with the
    /// session's).
    pub(super) fn end_background(&mut self) {
        for shared in self.background.drain(..) {
            shared.end_outlet(&self.signaller, self.timeouts.grace);
        }
    }

    /// Starts an outlet and waits until it is ready: its state, its PID in the container, and
    /// where to tell its reader threads that the process has started.
    fn outlet(&mut self, token: Token) -> Result<Ready> {
        let mark = format!("BOXSHELL_OUTLET={}", uuid::Uuid::new_v4().simple());
        let hello = proc::Hello::new();
        let argv = [self.shell.program.as_str(), "-c", OUTLET, "boxshell-outlet", &mark, hello.nonce()]
            .map(std::ffi::OsStr::new);
        let user = self.signaller.user.as_deref();
        let spec = ExecSpec { target: &self.target, interactive: true, tty: false, user, extra: &[] };
        let mut cmd = self.engine.exec(&spec, &argv);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| self.engine.spawn_error(cmd.get_program(), e))?;
        let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let mut outlet = Outlet { child: Some(child), stdin, threads: Vec::new(), mark };
        let (Some(stdout), Some(stderr)) = (stdout, stderr) else {
            Shared::detached(String::new(), outlet).end_outlet(&self.signaller, Duration::ZERO);
            return Err(Error::io("starting an outlet", std::io::Error::other("a pipe is missing")));
        };
        let (ready_tx, ready) = crossbeam_channel::bounded(1);
        let (complaint_tx, complaint) = crossbeam_channel::bounded(1);
        let (out_tx, out_rx) = crossbeam_channel::bounded(1);
        let (err_tx, err_rx) = crossbeam_channel::bounded(1);
        let threads = [
            proc::spawn_thread("boxshell-bg-out".into(), {
                let hello = hello.clone();
                move || read_stdout(stdout, &hello, token, ready_tx, out_rx)
            }),
            proc::spawn_thread("boxshell-bg-err".into(), move || {
                read_stderr(stderr, &hello, token, err_rx, complaint_tx)
            }),
        ];
        let mut failed = None;
        for thread in threads {
            match thread {
                Ok(handle) => outlet.threads.push(handle),
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        if let Some(e) = failed {
            Shared::detached(String::new(), outlet).end_outlet(&self.signaller, Duration::ZERO);
            return Err(Error::io(format!("{}: starting the threads of an outlet", self.target), e));
        }
        let said = match ready.recv_timeout(self.timeouts.open) {
            Ok(Ok(pid)) => return Ok(Ready { outlet, pid, notify: [out_tx, err_tx] }),
            Ok(Err(said)) => said,
            Err(_) => format!("no answer within {:?}", self.timeouts.open),
        };
        drop((out_tx, err_tx));
        Shared::detached(String::new(), outlet).end_outlet(&self.signaller, Duration::ZERO);
        let message = match complaint.recv_timeout(Duration::from_secs(1)) {
            Ok(client) if !client.is_empty() => format!("{said} {client}").trim().to_string(),
            _ => said,
        };
        let op = Op("outlet", &self.target);
        let fallback = self.engine.failed(op, &cmd, format!("starting the outlet of a background process: {message}"));
        Err(self.engine.diagnose(&self.target, &message, fallback))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_keeps_the_last_cap_bytes_and_where_each_chunk_began() {
        let mut ring = Ring { cap: 10, ..Ring::default() };
        for (seq, chunk) in [&b"abc\n"[..], b"defgh\nij", b"klmnopqrstuvwxyz\n"].into_iter().enumerate() {
            ring.push(chunk, seq as u64 + 1);
        }
        assert_eq!(ring.from(ring.window_start()), b"rstuvwxyz\n");
        assert!(ring.data.len() <= 20);
        assert_eq!(ring.seq_at(ring.end() - 1), 3);
        let lines: Vec<_> = ring.lines().into_iter().map(|(seq, _, line)| (seq, line)).collect();
        assert_eq!(lines, [(3, b"rstuvwxyz\n".to_vec())]);
        let mut small = Ring { cap: 100, ..Ring::default() };
        small.push(b"one\ntw", 1);
        small.push(b"o\n", 5);
        assert_eq!(small.lines(), [(1, 0, b"one\n".to_vec()), (1, 4, b"two\n".to_vec())]);
    }

    #[test]
    fn wait_for_finds_a_needle_across_chunks_and_trimming_and_consumes_it() {
        let mut state = LogState::default();
        state.streams.stdout.cap = 8;
        let mut searched = 0;
        let push = |state: &mut LogState, bytes: &[u8]| {
            state.seq += 1;
            let seq = state.seq;
            state.streams.stdout.push(bytes, seq);
        };
        push(&mut state, b"abcREA");
        assert_eq!(state.take_through(Stream::Stdout, b"READY", &mut searched), None);
        assert_eq!(searched, 6);
        push(&mut state, b"DY!");
        assert_eq!(state.take_through(Stream::Stdout, b"READY", &mut searched).as_deref(), Some(&b"bcREADY"[..]));
        // Consumed: the next search starts after it.
        searched = 0;
        assert_eq!(state.take_through(Stream::Stdout, b"!", &mut searched).as_deref(), Some(&b"!"[..]));
        // Output past the cap moves the window: the search goes on from its start.
        push(&mut state, b"0123456789READY");
        assert_eq!(state.take_through(Stream::Stdout, b"READY", &mut searched).as_deref(), Some(&b"789READY"[..]));
        assert_eq!(state.take_through(Stream::Stdout, b"", &mut searched).as_deref(), Some(&b""[..]));
    }

    #[test]
    fn stat_lines_give_pid_and_start_time() {
        let line = b"4242 (sh) S 1 4242 4242 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10\n";
        assert_eq!(parse_stat(line), Some((4242, 987654)));
        let odd = b"77 (a) b (c) S 1 77 77 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 55 1000 10\n";
        assert_eq!(parse_stat(odd), Some((77, 55)));
        assert_eq!(parse_stat(b"nonsense"), None);
    }
}
