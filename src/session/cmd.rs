//! The public face of a command: its options ([`Cmd`]) and the command in flight
//! ([`Running`]): waiting for it, interrupting it, and driving an interactive one (its stdin,
//! `expect`). Each call drives the command through the phases of [`driver`](super::driver).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::driver::{ChunkFn, Collector, Deliver, Finish, Job, Stdin};
use super::input::Feeder;
use super::overlay::Overlay;
use super::protocol::Refusal;
use super::stop::{Abort, Limits};
use super::{Event, Output, Session, Stream};
use crate::error::{Error, Result};
use crate::output::PerStream;
use crate::text;

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
    /// Its timeouts: the session's unless set here.
    pub(super) limits: Limits,
    pub(super) stdin: Option<Vec<u8>>,
    pub(super) interactive: bool,
    /// A terminal of this many columns and rows.
    pub(super) terminal: Option<(u16, u16)>,
    /// The cap per stream: the session's unless set here.
    pub(super) max_output: usize,
    pub(super) on_chunk: Option<ChunkFn<'s>>,
    /// Its own environment variables and working directory.
    pub(super) overlay: Overlay,
    /// Makes the subshell the command runs in from its body, when not `( BODY )`.
    pub(super) launch: Option<Launch<'s>>,
}

/// Shell text around a command's body (see [`Overlay::wrap_with`]).
pub(super) type Launch<'s> = Box<dyn FnOnce(&str) -> String + 's>;

impl std::fmt::Debug for Cmd<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cmd")
            .field("command", &self.command)
            .field("timeout", &self.limits.timeout)
            .field("idle_timeout", &self.limits.idle)
            .field("stdin_bytes", &self.stdin.as_ref().map(Vec::len))
            .field("interactive", &self.interactive)
            .field("terminal", &self.terminal)
            .field("max_output", &self.max_output)
            .field("env", &text::EnvNames(&self.overlay.vars))
            .field("workdir", &self.overlay.workdir)
            .finish_non_exhaustive()
    }
}

impl<'s> Cmd<'s> {
    /// This command's timeout, instead of the session's: `Some(duration)`, or `None` to wait
    /// for ever. It is kept by a thread of the session's, whatever the caller does meanwhile
    /// (waits, writes the command's input, or calls nothing at all).
    pub fn timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.limits.timeout = timeout.into();
        self
    }

    /// This command's idle timeout, instead of the session's: aborted (as on a timeout) once
    /// it has printed nothing on either stream for this long. `None`: off.
    pub fn idle_timeout(mut self, idle: impl Into<Option<Duration>>) -> Self {
        self.limits.idle = idle.into();
        self
    }

    /// Bytes the command reads as its stdin (then EOF), any size. Without this, stdin is empty.
    /// Up to 8 KiB go in the command's frame (into a file in the session's directory); more go
    /// through a second, short-lived `exec -i`, whose stdin pipe the command reads, at the
    /// speed of that pipe and with no copy of the bytes in this process.
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

    /// Runs the command on a terminal of `cols` columns and `rows` rows: a PTY as its stdin,
    /// stdout and stderr, so that programs that want a terminal (`vi`, `top`, `less`, REPLs,
    /// `read -p`) behave as they do for a person, and `stty size` sees the size. The command
    /// runs in the session as any other: it sees the session's cwd, variables, functions and
    /// aliases, and what it changes stays.
    ///
    /// Its input is live, as with [`interactive`](Cmd::interactive): keystrokes as typed,
    /// written with [`Running::write_stdin`] (`\r` for Enter, `\x1b` for Escape). [`Running::resize`]
    /// changes the size; the command's processes get SIGWINCH. Its output is the terminal's
    /// byte stream, escape sequences and all, on [`Stream::Stdout`]; stderr is empty. A
    /// terminal has no end of input: [`Running::close_stdin`] and [`Running::wait`] stop the
    /// writing, and the program ends when it ends (type `\x04`, Ctrl-D, for the end of a
    /// line-mode input). Timeouts, interrupts and the output cap hold as for any command.
    ///
    /// Ctrl-C (`\x03`, unless the program has put the terminal in raw mode) sends SIGINT to the
    /// command's processes, and the command is then abandoned as by [`Running::interrupt`]
    /// (exit code 130) once its program has ended, with no SIGKILL after the grace: a REPL that
    /// takes Ctrl-C as a key goes on. Ctrl-Z and Ctrl-\ do nothing: the session has no job
    /// control. The command ends when its program does: a background job it leaves (`server &`)
    /// runs on, but the terminal goes, and what the job writes to it afterwards is lost.
    ///
    /// The terminal's session leader is the exec that holds it, not the command, which runs in
    /// the session's shell: a program that opens `/dev/tty` itself, rather than its stdin
    /// (`sudo` or `ssh` asking for a password), does not find it.
    ///
    /// The terminal is made by the runtime (`exec -i -t`, one exec's start-up more; for the
    /// local runtime, `setsid -c` on a PTY of this process's): [`Custom`](crate::Custom)
    /// runtimes need their [`terminal`](crate::Custom::terminal) form. The feature
    /// `terminal` (on by default) adds this. A size of 0 columns or rows is
    /// [`Error::InvalidValue`] when the command starts.
    ///
    /// ```
    /// # fn main() -> boxshell::Result<()> {
    /// use std::time::Duration;
    /// use boxshell::Stream;
    /// let mut sh = boxshell::Session::builder("-").runtime(boxshell::Runtime::Local).open()?;
    /// let mut r = sh.cmd("read -p 'Name? ' n; stty size").terminal(80, 24).spawn()?;
    /// r.expect(Stream::Stdout, b"Name? ", Duration::from_secs(5))?;
    /// r.write_stdin(b"ann\r")?;
    /// let out = r.wait()?;
    /// assert_eq!(out.stdout, b"ann\r\n24 80\r\n");
    /// assert_eq!(sh.exec("echo $n")?.stdout, b"ann\n");
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "terminal")]
    pub fn terminal(mut self, cols: u16, rows: u16) -> Self {
        self.terminal = Some((cols, rows));
        self
    }

    /// An environment variable for this command only, as `std::process::Command::env`: the
    /// session's environment is as it was afterwards. The value may hold any bytes but NUL;
    /// the name must be one a shell can export (ASCII letters, digits and `_`).
    ///
    /// With `env` or [`workdir`](Cmd::workdir) the command runs in a subshell of the session's
    /// shell: it sees the session's functions, aliases and unexported variables, and what it
    /// changes (`cd`, `export`, `exit`) ends with it.
    ///
    /// ```
    /// # fn main() -> boxshell::Result<()> {
    /// let mut sh = boxshell::Session::builder("-").runtime(boxshell::Runtime::Local).open()?;
    /// sh.exec("greet() { echo \"$GREETING, $1\"; }")?;
    /// let out = sh.cmd("greet world; pwd").env("GREETING", "hello").workdir("/tmp").run()?;
    /// assert_eq!(out.stdout, b"hello, world\n/tmp\n");
    /// assert_eq!(sh.exec("echo \"${GREETING-unset}\"")?.stdout, b"unset\n");
    /// # Ok(()) }
    /// ```
    pub fn env(mut self, key: impl Into<String>, value: impl AsRef<OsStr>) -> Self {
        self.overlay.vars.push((key.into(), value.as_ref().to_os_string()));
        self
    }

    /// The directory this command runs in, as `std::process::Command::current_dir` (a relative
    /// one is taken from the session's cwd): the session's cwd is as it was afterwards. A
    /// directory that does not exist, is not a directory or cannot be entered is
    /// [`Error::Fs`] (kind `NotFound`, `NotADirectory` or `PermissionDenied`, op `workdir`),
    /// and the command is not run. See [`env`](Cmd::env) for what the command sees.
    pub fn workdir(mut self, dir: impl AsRef<Path>) -> Self {
        self.overlay.workdir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// The cap on bytes kept per stream, instead of the session's.
    pub fn max_output(mut self, bytes: usize) -> Self {
        self.max_output = bytes;
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

    /// Starts the command; `keep`: its output is kept for [`Running::wait`], not sent as events.
    pub(super) fn start(self, keep: bool) -> Result<Running<'s>> {
        let (session, limits, cap) = (self.session, self.limits, self.max_output);
        let deliver = if keep { Deliver::Keep(cap) } else { Deliver::Events };
        let (stdin, first_input) = match (self.stdin, self.interactive) {
            #[cfg(feature = "terminal")]
            (data, _) if self.terminal.is_some() => {
                let (cols, rows) = self.terminal.unwrap_or_default();
                (Stdin::Terminal(cols, rows), data)
            }
            (data, true) => (Stdin::Live, data),
            (Some(data), false) => (Stdin::Bytes(data), None),
            (None, false) => (Stdin::Empty, None),
        };
        let workdir = self.overlay.workdir.clone();
        let job = if self.overlay.is_empty() && self.launch.is_none() {
            session.start(&self.command, limits, stdin, deliver)?
        } else {
            self.overlay.check()?;
            let text = match self.launch {
                Some(launch) => self.overlay.wrap_with(&self.command, launch),
                None => self.overlay.wrap(&self.command),
            };
            let mut job = session.start(&text, limits, stdin, deliver)?;
            // Errors and the output name the command as given, not its wrapping.
            job.command = self.command;
            job
        };
        let mut running = Running {
            session,
            events: job.events.clone(),
            progress: Progress::Running(job),
            collector: Collector::new(cap, self.on_chunk),
            held: PerStream::default(),
            cap,
            workdir,
        };
        if let Some(data) = first_input {
            running.write_stdin(&data)?;
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
    session: &'s mut Session,
    events: Receiver<Event>,
    progress: Progress,
    collector: Collector<'s>,
    /// Output received by [`expect`](Running::expect) and not consumed by it: searched by
    /// the next `expect`, handed to `wait` first.
    held: PerStream<Vec<u8>>,
    /// The output cap per stream.
    cap: usize,
    /// Its own working directory, if it was given one.
    workdir: Option<PathBuf>,
}

/// Where a [`Running`] command is.
enum Progress {
    Running(Job),
    /// Ended; its output is kept for later calls.
    Ended(Output),
    /// Not run: its working directory could not be entered. Holds the command line.
    Refused(Refusal, String),
    /// The connection dropped during it ([`Error::Disconnected`]); its output so far.
    Lost(Output),
    /// Its output was handed over by `wait`.
    HandedOver,
}

impl std::fmt::Debug for Running<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("command", &self.command())
            .field("finished", &!matches!(self.progress, Progress::Running(_)))
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
        if let Some(feeder) = self.job_mut().and_then(|job| job.feeder.as_mut()) {
            feeder.close();
        }
        self.release_held();
        // Without a deadline the command is driven to its end.
        while matches!(self.progress, Progress::Running(_)) {
            self.advance(None)?;
        }
        match std::mem::replace(&mut self.progress, Progress::HandedOver) {
            Progress::Ended(out) => Ok(out),
            Progress::Refused(refusal, _) => Err(refusal.error(self.workdir())),
            Progress::Lost(out) => Err(self.disconnected(out)),
            _ => Err(self.ended()),
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

    /// Gives a [`terminal`](Cmd::terminal) command's terminal `cols` columns and `rows` rows,
    /// and returns once the command's processes have had SIGWINCH for the new size (at once,
    /// if that is its size already).
    ///
    /// # Errors
    /// [`Error::InvalidValue`] when the command has no terminal, or the size has 0 columns or
    /// rows; [`Error::CommandEnded`] when it has ended; [`Error::Io`] when the new size does
    /// not reach it within 10 s.
    #[cfg(feature = "terminal")]
    pub fn resize(&mut self, cols: u16, rows: u16) -> Result<()> {
        let no_terminal = Error::InvalidValue { what: "resize", reason: "the command has no terminal" };
        super::terminal::no_zero_size(cols, rows)?;
        let Some(job) = self.job_mut() else { return Err(self.ended()) };
        let Some(pty) = job.feeder.as_mut().and_then(|f| f.terminal.as_mut()) else { return Err(no_terminal) };
        let context = || format!("resizing the terminal of `{}`", job.command);
        if !pty.resize(cols, rows).map_err(|e| Error::io(context(), e))? {
            return Ok(());
        }
        let deadline = Instant::now() + super::terminal::Pty::resize_wait();
        loop {
            let Some(job) = self.job_mut() else { return Err(self.ended()) };
            let command = job.command.clone();
            let Some(pty) = job.feeder.as_ref().and_then(|f| f.terminal.as_ref()) else { return Err(self.ended()) };
            if pty.resized(PUMP) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let message =
                    format!("the command did not get the new size within {:?}", super::terminal::Pty::resize_wait());
                return Err(Error::io(format!("resizing the terminal of `{command}`"), std::io::Error::other(message)));
            }
            self.receive(Some(Instant::now()), None, &mut |_| false)?;
        }
    }

    fn abort(&self, how: Abort) -> Result<()> {
        match self.progress {
            Progress::Running(_) => self.session.watch.ask(how),
            _ => Ok(()),
        }
    }

    /// Drives the command until it ends or `until` passes; a copy of its output once it has.
    fn wait_until(&mut self, until: Option<Instant>) -> Result<Option<Output>> {
        self.release_held();
        self.advance(until)?;
        match &self.progress {
            Progress::Ended(out) => Ok(Some(out.clone())),
            Progress::Refused(..) | Progress::Lost(_) => Err(self.ended()),
            _ => Ok(None),
        }
    }

    /// Drives the command, gathering its output, until it ends or `until` passes.
    fn advance(&mut self, until: Option<Instant>) -> Result<()> {
        let Progress::Running(job) = &mut self.progress else { return Ok(()) };
        let collector = &mut self.collector;
        let finish = self.session.drive(job, until, &mut |ev| {
            collector.push(ev);
            false
        })?;
        if let Some(finish) = finish {
            self.conclude(finish);
        }
        Ok(())
    }

    /// Turns the finished job into its output.
    fn conclude(&mut self, finish: Finish) {
        let Progress::Running(job) = &mut self.progress else { return };
        if let Some(refusal) = finish.refused {
            self.progress = Progress::Refused(refusal, std::mem::take(&mut job.command));
            return;
        }
        let client_exit = finish.client_exit;
        let out = self.collector.output(job, finish);
        // The client's own words, if any, are the last on its stderr.
        let said = &out.stderr[out.stderr.len().saturating_sub(4096)..];
        let runtime = self.session.engine.runtime();
        self.progress = match client_exit {
            Some(code) if runtime.lost_connection(code, said) => Progress::Lost(out),
            _ => Progress::Ended(out),
        };
    }

    fn job_mut(&mut self) -> Option<&mut Job> {
        match &mut self.progress {
            Progress::Running(job) => Some(job),
            _ => None,
        }
    }

    /// Writes `data` to the stdin of a command started with [`Cmd::interactive`], and
    /// returns once it is on its way to the container (in the exec client's pipe). Output
    /// that arrives meanwhile is kept, as by [`expect`](Running::expect), so a command that
    /// echoes its input cannot block the write. A command that does not read blocks the
    /// write up to the command's timeout; a command past its timeout is stopped meanwhile,
    /// and the write then says it has ended.
    ///
    /// # Errors
    /// [`Error::CommandEnded`] when the command has ended (with its output), also by its
    /// timeout while the caller kept writing;
    /// [`Error::StdinClosed`] when the command is not interactive, its stdin was closed, or
    /// its input no longer reaches it.
    pub fn write_stdin(&mut self, data: &[u8]) -> Result<()> {
        let acks = self.feeder()?.acks();
        let mut sent = 0usize;
        for chunk in data.chunks(WRITE_CHUNK) {
            // Past its deadline the command is being stopped: let its end in, if it came.
            self.feeder()?;
            self.receive(Some(Instant::now()), None, &mut |_| false)?;
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
        // A command that ends on reading this input (`exit` typed to a shell) may be seen
        // ending before the writer's word: the input landed all the same.
        while sent > 0 {
            match acks.recv_timeout(PUMP) {
                Ok(Ok(())) => sent -= 1,
                Ok(Err(e)) => return Err(self.stdin_broken(Some(e))),
                Err(RecvTimeoutError::Timeout) if matches!(self.progress, Progress::Running(_)) => {
                    self.receive(Some(Instant::now()), None, &mut |_| false)?;
                }
                Err(RecvTimeoutError::Timeout) => return Err(self.ended()),
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(self.stdin_broken(Some(std::io::ErrorKind::BrokenPipe.into())));
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
        match self.job_mut().map(|job| job.feeder.as_mut().filter(|feeder| feeder.live)) {
            Some(Some(feeder)) => {
                feeder.close();
                Ok(())
            }
            Some(None) => Err(self.stdin_closed(NOT_INTERACTIVE)),
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
        let deadline = Instant::now() + timeout;
        let mut found = if self.held[stream].is_empty() { None } else { matcher(&self.held[stream]) };
        if found.is_none() {
            let mut len = self.held[stream].len();
            let ended = self.receive(Some(deadline), Some(stream), &mut |held| {
                if held[stream].len() == len {
                    return false;
                }
                len = held[stream].len();
                found = matcher(&held[stream]);
                found.is_some()
            })?;
            if ended && found.is_none() {
                return Err(self.ended());
            }
        }
        let held = &mut self.held[stream];
        let result = match found {
            Some(end) => Ok(held.drain(..end.min(held.len())).collect()),
            None if !matches!(self.progress, Progress::Running(_)) => Err(self.ended()),
            None => Err(Error::ExpectTimeout {
                command: self.command().to_string(),
                stream,
                seen: self.held[stream].clone(),
                waited: timeout,
            }),
        };
        self.trim_held(stream);
        result
    }

    /// Receives the command's output into `held` until `until` passes, the command ends
    /// (`true`) or `stop` says it has what it waited for. `held` of streams other than
    /// `expected` is trimmed to the cap as it grows, the oldest bytes going to the collector.
    fn receive(
        &mut self,
        until: Option<Instant>,
        expected: Option<Stream>,
        stop: &mut dyn FnMut(&PerStream<Vec<u8>>) -> bool,
    ) -> Result<bool> {
        let Progress::Running(job) = &mut self.progress else { return Ok(true) };
        let (held, collector, cap) = (&mut self.held, &mut self.collector, self.cap);
        let finish = self.session.drive(job, until, &mut |ev| {
            let stream = ev.stream();
            collector.tap(stream, ev.bytes());
            let buf = &mut held[stream];
            buf.extend_from_slice(ev.bytes());
            if Some(stream) != expected {
                collector.keep_excess(stream, buf, cap);
            }
            stop(held)
        })?;
        let Some(finish) = finish else { return Ok(false) };
        self.release_held();
        self.conclude(finish);
        Ok(true)
    }

    /// Keeps no more than the cap of what `stream` holds, the oldest bytes going to the
    /// collector.
    fn trim_held(&mut self, stream: Stream) {
        self.collector.keep_excess(stream, &mut self.held[stream], self.cap);
    }

    /// Hands what `expect` kept over to the collector, before what comes later.
    fn release_held(&mut self) {
        for stream in Stream::BOTH {
            self.collector.keep(stream, std::mem::take(&mut self.held[stream]));
        }
    }

    /// The live stdin, if the command is running, interactive, and its stdin open.
    fn feeder(&self) -> Result<&Feeder> {
        let job = match &self.progress {
            Progress::Running(job) => Some(job),
            _ => None,
        };
        match job.map(|job| job.feeder.as_ref().filter(|feeder| feeder.live)) {
            None => Err(self.ended()),
            Some(None) => Err(self.stdin_closed(NOT_INTERACTIVE)),
            Some(Some(feeder)) if !feeder.is_open() => Err(self.stdin_closed("its stdin was closed")),
            Some(Some(feeder)) => Ok(feeder),
        }
    }

    /// The error for input that could not be written: the command ended, or it runs but its
    /// feeder has stopped (killed from outside).
    fn stdin_broken(&mut self, cause: Option<std::io::Error>) -> Error {
        // Let the command's end, if it is one, arrive: when the command is being stopped,
        // whatever it takes (its steps all have an end); else for a grace period.
        let stopping = match &self.progress {
            Progress::Running(job) => self.session.watch.stopping(job.seq),
            _ => false,
        };
        let until = (!stopping).then(|| Instant::now() + self.session.timeouts.grace);
        let _ = self.receive(until, None, &mut |_| false);
        match (&self.progress, cause) {
            (Progress::Running(_), Some(e)) => self.stdin_closed(format!("its input no longer reaches it: {e}")),
            (Progress::Running(_), None) => self.stdin_closed("its input no longer reaches it"),
            _ => self.ended(),
        }
    }

    fn stdin_closed(&self, reason: impl Into<String>) -> Error {
        Error::StdinClosed { command: self.command().to_string(), reason: reason.into() }
    }

    /// [`Error::CommandEnded`] with the output, once the command has ended.
    fn ended(&self) -> Error {
        match &self.progress {
            Progress::Ended(out) => Error::CommandEnded { output: Box::new(out.clone()) },
            Progress::Refused(refusal, _) => refusal.error(self.workdir()),
            Progress::Lost(out) => self.disconnected(out.clone()),
            _ => self.stdin_closed("the command has ended"),
        }
    }

    /// [`Error::Disconnected`] for the command that printed `output`.
    fn disconnected(&self, output: Output) -> Error {
        let said = String::from_utf8_lossy(&output.stderr);
        let message = match said.lines().map(str::trim).rfind(|l| !l.is_empty()) {
            Some(line) => line.to_string(),
            None => format!("its client exited with code {}", output.exit_code),
        };
        Error::Disconnected {
            via: self.session.engine.via(),
            container: self.session.target.clone(),
            message,
            output: Box::new(output),
        }
    }

    /// The working directory asked for, as errors show it.
    fn workdir(&self) -> String {
        self.workdir.as_deref().map(|dir| dir.to_string_lossy().into_owned()).unwrap_or_default()
    }

    /// The command line.
    fn command(&self) -> &str {
        match &self.progress {
            Progress::Running(job) => &job.command,
            Progress::Ended(out) | Progress::Lost(out) => &out.command,
            Progress::Refused(_, command) => command,
            Progress::HandedOver => "",
        }
    }
}

/// Why a command that is not interactive takes no input.
const NOT_INTERACTIVE: &str = "the command was not started with `Cmd::interactive`";

/// The most [`Running::write_stdin`] hands the writer thread at once. The writer owns a copy
/// (a command that does not read can hold it past the call); two are in flight at most.
const WRITE_CHUNK: usize = 1 << 20;

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
        if let Progress::Running(mut job) = std::mem::replace(&mut self.progress, Progress::HandedOver) {
            if let Some(feeder) = job.feeder.as_mut() {
                feeder.close();
            }
            // What `expect` kept and nobody consumed is unread output, as the rest will be.
            for stream in Stream::BOTH {
                self.session.router.push_unread(stream, &self.held[stream]);
            }
            self.session.pending = Some(job);
        }
    }
}
