//! Persistent shell sessions: [`Session`], its builder, and running commands in it.
//!
//! # Design note
//!
//! A session is one child process: `docker exec -i CONTAINER SHELL` (or podman's, or a local
//! shell) with three pipes. Commands go in on stdin as framed lines ([`protocol`]); two reader
//! threads ([`route`]) scan stdout and stderr for the per-command sentinels and feed one bounded
//! crossbeam channel per command. Waiting is done on the caller's thread with a deadline, so a
//! timeout fires on time whatever the command does, and a full channel pushes back on the
//! container (a command printing faster than it is read waits, it does not fill memory).
//!
//! Killing the `exec` client does not kill what it started in the container, so interrupting
//! a command and closing a session go through a second, short-lived exec that signals PIDs
//! inside the container (`reap.sh`): on an interrupt or a timeout, the shell (an interactive
//! shell, which abandons the whole command line on SIGINT, see [`protocol`]) and the command's
//! process tree; on close, the shell's whole process group and session. After signalling the
//! shell, the session writes a recovery line that ends the command whether or not the shell
//! dropped the rest of its frame.
//!
//! Bytes for a command's stdin go inline, as `printf` text in the frame, when they are few;
//! more go through a second `exec -i ... cat` into a file in the container, at pipe speed.

mod output;
pub(crate) mod protocol;
mod route;

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

pub use self::output::{Event, Gap, Output, Stream};
use self::protocol::{Dialect, Input, Token};
use self::route::{Completion, End, Kept, Shared, Sink, Tap};
use crate::engine::{Engine, ExecSpec, Op, REAP_SCRIPT};
use crate::error::{Error, Result};
use crate::proc;
use crate::runtime::{Runtime, validate_target};
use crate::text;

/// How many output events a running command may have in flight before the readers wait.
const CHANNEL_CAP: usize = 32;

/// How often a waiting call checks that the shell is still there.
const TICK: Duration = Duration::from_millis(100);

/// Longest time a signalling exec may take.
const REAP_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest stdin given inline, as `printf` text in the frame (up to four bytes of text per
/// byte, so the frame fits a pipe's buffer); more goes through an upload exec.
const INLINE_STDIN: usize = 8 << 10;

/// Timeouts of a session. Every wait in boxshell is bounded by one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Timeouts {
    /// Default per-command timeout; `None` waits for ever.
    command: Option<Duration>,
    /// Default idle timeout: a command that prints nothing on either stream for this long is
    /// aborted. `None`: off.
    idle: Option<Duration>,
    /// Between the interrupt (SIGINT) of a timed-out command and SIGKILL, and between each
    /// later step.
    grace: Duration,
    /// For the shell to start and answer its first command.
    open: Duration,
    /// For the shell to exit on close before it is killed.
    close: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            command: Some(Duration::from_secs(60)),
            idle: None,
            grace: Duration::from_secs(2),
            open: Duration::from_secs(30),
            close: Duration::from_secs(5),
        }
    }
}

/// Configures and opens a [`Session`]. Made by [`Session::builder`].
#[must_use = "a builder does nothing until `open` is called"]
pub struct SessionBuilder {
    target: String,
    engine: Option<Engine>,
    exec_args: Vec<OsString>,
    shell: String,
    env: Vec<(String, String)>,
    workdir: Option<String>,
    user: Option<String>,
    timeouts: Timeouts,
    max_output: usize,
    unread_cap: usize,
    tap: Option<Tap>,
}

impl std::fmt::Debug for SessionBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Environment values are secrets until proven otherwise: only their names are shown.
        f.debug_struct("SessionBuilder")
            .field("target", &self.target)
            .field("engine", &self.engine)
            .field("shell", &self.shell)
            .field("env", &self.env.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("workdir", &self.workdir)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl SessionBuilder {
    /// The runtime that reaches the container: a [`Runtime`], or an [`Engine`] for a program,
    /// global arguments or CLI environment of its own (`DOCKER_HOST`, `--context`). Default:
    /// [`Runtime::detect`] at `open`.
    pub fn runtime(mut self, engine: impl Into<Engine>) -> Self {
        self.engine = Some(engine.into());
        self
    }

    /// Extra arguments for `exec`, put after `-i` and `-u` (e.g. `--privileged`).
    pub fn exec_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.exec_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// The shell to run. Default `/bin/sh`. dash, busybox ash and bash (also as `sh`) are
    /// tested; another POSIX shell runs the way dash does, as `SHELL -i /dev/stdin`, and reads
    /// whatever its interactive start-up reads (zsh its `.zshrc`).
    pub fn shell(mut self, shell: impl Into<String>) -> Self {
        self.shell = shell.into();
        self
    }

    /// Exports `key=value` in the shell before the first command. The value is sent through the
    /// shell's stdin, never on a command line, and never logged.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The directory the shell starts in. `open` fails if it does not exist.
    pub fn workdir(mut self, dir: impl Into<String>) -> Self {
        self.workdir = Some(dir.into());
        self
    }

    /// The user the shell runs as (`exec -u`): a name or `uid[:gid]`. Containers only.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// The default timeout of each command: `Some(duration)`, or `None` to wait for ever.
    /// Default: 60 seconds. A command can set its own with [`Cmd::timeout`]. A command past
    /// its timeout is aborted as Ctrl-C would abort it at a prompt (see [`Session::interrupt`]).
    pub fn timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.timeouts.command = timeout.into();
        self
    }

    /// The default idle timeout of each command: a command that prints nothing on either
    /// stream for this long is aborted as on a timeout (and its [`Output::timed_out`] is set).
    /// Default: `None`, off. A command can set its own with [`Cmd::idle_timeout`].
    pub fn idle_timeout(mut self, idle: impl Into<Option<Duration>>) -> Self {
        self.timeouts.idle = idle.into();
        self
    }

    /// How long an aborted command gets between SIGINT and SIGKILL. Default: 2 seconds.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.timeouts.grace = grace;
        self
    }

    /// How long `open` waits for the shell to answer. Default: 30 seconds.
    pub fn open_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.open = timeout;
        self
    }

    /// How long `close` waits for the shell to exit before killing it. Default: 5 seconds.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.close = timeout;
        self
    }

    /// The default cap on the bytes kept per stream of each command. Past it, the first half
    /// of the cap is kept from the start of the stream and the rest from its end; the bytes
    /// between are read and dropped, and [`Output::stdout_gap`] / [`Output::stderr_gap`] say
    /// where and how many ([`Gap`]). Default: 64 MiB.
    pub fn max_output(mut self, bytes: usize) -> Self {
        self.max_output = bytes;
        self
    }

    /// Calls `tap` with every piece of output the shell writes, command output and
    /// background output alike, as it arrives. It runs on the session's reader threads, so it
    /// must not block for long.
    pub fn on_output(mut self, tap: impl FnMut(Stream, &[u8]) + Send + 'static) -> Self {
        self.tap = Some(Box::new(tap));
        self
    }

    /// Starts the shell and waits until it answers.
    ///
    /// # Errors
    /// - [`Error::NoRuntime`] when no runtime was given and none answers;
    /// - [`Error::InvalidName`] for an empty or malformed container name or environment name;
    /// - [`Error::RuntimeNotFound`] when the runtime's program is missing;
    /// - [`Error::ContainerNotFound`], [`Error::ContainerNotRunning`],
    ///   [`Error::RuntimeUnavailable`] when the exec fails for those reasons, with the CLI's message;
    /// - [`Error::Open`] when the shell does not start (wrong path, bad workdir) or does not
    ///   answer within the open timeout;
    /// - [`Error::Unsupported`] for `user` with [`Runtime::Local`].
    pub fn open(self) -> Result<Session> {
        let engine = match self.engine.clone() {
            Some(engine) => engine,
            None => Engine::detect()?,
        };
        let runtime = engine.runtime().clone();
        self.validate(&runtime)?;
        let target = if runtime.is_container() { self.target.clone() } else { "-".to_string() };
        let spec = ExecSpec { target: &target, interactive: true, user: self.user.as_deref(), extra: &self.exec_args };
        let shell = OsStr::new(&self.shell);
        let mut cmd = engine.exec(&spec, &[shell, OsStr::new("-c"), OsStr::new(protocol::LAUNCH), shell]);
        let command_line = proc::describe(&cmd);
        log::info!("opening session: {command_line}");
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        // Own process group: a Ctrl-C meant for this program does not kill its sessions
        // midway; they are closed in order instead.
        cmd.process_group(0);
        let mut child = cmd.spawn().map_err(|e| engine.spawn_error(cmd.get_program(), e))?;
        let id = uuid::Uuid::new_v4();
        let shared = Shared::new(self.unread_cap);
        let mut readers = Vec::with_capacity(2);
        let pipes = (child.stdout.take(), child.stderr.take());
        if let (Some(out), Some(err)) = pipes {
            let short = &id.simple().to_string()[..8];
            for (stream, started) in [
                (Stream::Stdout, shared.start_reader(Stream::Stdout, out, format!("boxshell-out-{short}"))),
                (Stream::Stderr, shared.start_reader(Stream::Stderr, err, format!("boxshell-err-{short}"))),
            ] {
                match started {
                    Ok(handle) => readers.push(handle),
                    Err(e) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err(Error::io(format!("starting the {stream:?} reader thread"), e));
                    }
                }
            }
        }
        let line = Arc::new(Mutex::new(Line { stdin: child.stdin.take(), running: None }));
        let now = Instant::now();
        let mut session = Session {
            id,
            engine,
            target,
            shell: self.shell,
            user: self.user,
            child,
            line,
            shared,
            readers,
            reaper: None,
            dialect: Dialect::Posix,
            seq: 0,
            pending: None,
            dead: None,
            closed: false,
            cleanup_owed: false,
            unreachable: false,
            timeouts: self.timeouts,
            max_output: self.max_output,
            tmp_dir: None,
            stdin_used: false,
            metrics: Metrics { commands: 0, busy: Duration::ZERO, created: now, last_used: now },
        };
        session.start_shell(&self.env, self.workdir.as_deref(), &command_line)?;
        session.shared.set_tap(self.tap);
        log::info!(
            "session {} open in {} {} (shell pid {})",
            session.id,
            session.engine.runtime(),
            session.target,
            session.pid()
        );
        Ok(session)
    }

    fn validate(&self, runtime: &Runtime) -> Result<()> {
        validate_target(runtime, &self.target)?;
        if self.user.is_some() && !runtime.manages_containers() {
            return Err(Error::Unsupported {
                runtime: runtime.to_string(),
                what: "`user` (only docker and podman exec take one)",
            });
        }
        if self.shell.is_empty() || self.shell.starts_with('-') {
            return Err(Error::InvalidName {
                what: "shell",
                value: self.shell.clone(),
                reason: "the shell must be a program name or path",
            });
        }
        for (key, value) in &self.env {
            text::env_var(key, value, true)?;
        }
        if let Some(dir) = &self.workdir {
            text::no_nul("workdir", dir)?;
        }
        Ok(())
    }
}

/// Counters of a session's use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metrics {
    /// Commands completed (timed out ones included).
    pub commands: u64,
    /// Total time spent running commands.
    pub busy: Duration,
    /// When the session was opened.
    pub created: Instant,
    /// When the last command completed (or the session was opened).
    pub last_used: Instant,
}

impl Metrics {
    /// Time since the session was opened.
    pub fn uptime(&self) -> Duration {
        self.created.elapsed()
    }

    /// Time since the last command completed.
    pub fn idle(&self) -> Duration {
        self.last_used.elapsed()
    }
}

/// Output that arrived while no command was waiting for it, from [`Session::read`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unread {
    /// Unclaimed stdout bytes, oldest first.
    pub stdout: Vec<u8>,
    /// Unclaimed stderr bytes, oldest first.
    pub stderr: Vec<u8>,
    /// Bytes dropped because more than the buffer's cap (1 MiB per stream) was waiting.
    pub dropped: u64,
    /// A command started with [`Session::send`] is still running.
    pub busy: bool,
}

/// What the second exec signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope<'a> {
    /// The running command's process tree (background jobs of earlier commands are spared),
    /// and the shell itself with these signals (space-separated, may be empty).
    Command(&'a str),
    /// Every process of the session, the shell included.
    Session,
    /// These processes, if still in the session, and their descendants.
    Pids(&'a [u32]),
}

/// The shell's stdin, and the command it is running: shared with [`Interrupter`]s, which
/// write a recovery line after they signal the shell.
struct Line {
    stdin: Option<ChildStdin>,
    /// The running command's number and sentinel.
    running: Option<(u64, Token)>,
}

impl Line {
    fn write(&mut self, bytes: &[u8], target: &str) -> Result<()> {
        let stdin = self.stdin.as_mut().ok_or_else(|| {
            Error::io("writing to the shell", std::io::Error::new(std::io::ErrorKind::BrokenPipe, "stdin closed"))
        })?;
        stdin.write_all(bytes).map_err(|e| Error::io(format!("writing to the shell in {target}"), e))
    }
}

/// Locks `mutex`, whatever a panicking holder left: every update under these locks is a single
/// assignment or write.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// How hard to abort the running command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Abort {
    /// SIGINT to the shell and the command's processes: Ctrl-C.
    Interrupt,
    /// SIGKILL to the command's processes, SIGINT to the shell.
    Kill,
}

/// Signals processes of one session from outside it. Shared with [`Interrupter`]s.
struct Reaper {
    engine: Engine,
    target: String,
    user: Option<String>,
    shell: String,
    pid: u32,
    dialect: Dialect,
    watermark: Mutex<Watermark>,
    line: Arc<Mutex<Line>>,
    shared: Arc<Shared>,
}

/// The newest background job the shell started, and the boot time (centiseconds) when the
/// command that started it ended: the shell's children that started later are the running
/// command's, the others are background jobs to spare. Without the time (the shell could not
/// read `/proc/uptime`), children with a higher PID are taken for the command's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Watermark {
    pid: u32,
    since: Option<u64>,
}

impl Watermark {
    /// As `reap.sh` takes it: `PID` or `PID:SINCE`.
    fn arg(&self) -> String {
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
    fn known_job(&self) -> u32 {
        let mark = lock(&self.watermark);
        if mark.pid == 0 || mark.since.is_some() { mark.pid } else { u32::MAX }
    }

    /// Books what a command's sentinel said about background jobs.
    fn saw(&self, status: protocol::Status) {
        let mut mark = lock(&self.watermark);
        if status.last_job != mark.pid {
            *mark = Watermark { pid: status.last_job, since: status.since };
        } else if mark.since.is_none() {
            mark.since = status.since;
        }
    }

    /// Aborts the running command, if any: signals the shell and the command's processes,
    /// then writes the recovery line. Returns the command's processes it signalled.
    fn abort(&self, how: Abort) -> Result<Vec<u32>> {
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
    fn signal(&self, scope: Scope<'_>, signal: &str, remove_dir: Option<&str>) -> Result<Vec<u32>> {
        let (scope_arg, shell_signals, pids) = match scope {
            Scope::Command(shell) => ("command", shell, &[][..]),
            Scope::Session => ("session", "", &[][..]),
            Scope::Pids(pids) => ("pids", "", pids),
        };
        let pid = self.pid.to_string();
        let mark = lock(&self.watermark).arg();
        let mut args = vec![scope_arg, &pid, signal, shell_signals, &mark, remove_dir.unwrap_or("")];
        let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
        args.extend(pids.iter().map(String::as_str));
        let mut cmd = self.engine.reap(&self.target, self.user.as_deref(), &self.shell, &args);
        let out = self.engine.run_command(Op("signal", &self.target), &mut cmd, None, REAP_TIMEOUT)?;
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
    reaper: Arc<Reaper>,
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

/// A persistent shell in a container (or on this host), that runs one command at a time.
///
/// State carries over between commands: the working directory, exported and shell variables,
/// functions, aliases, `set` options, background jobs. Each command's stdout and stderr come
/// back separately and byte for byte; its stdin is empty unless given with [`Cmd::stdin`].
///
/// A command that runs past its timeout, or is interrupted, is aborted as Ctrl-C aborts a
/// command line at a prompt: the rest of it does not run, and the shell goes on with its
/// state (see [`Session::interrupt`]).
///
/// Dropping a session closes it like [`close`](Session::close) does, logging instead of
/// returning errors: the shell and every process it started (background jobs too) are ended.
///
/// ```
/// # fn main() -> boxshell::Result<()> {
/// use boxshell::{Runtime, Session};
/// let mut sh = Session::builder("my-container").runtime(Runtime::Local).open()?;
/// sh.exec("cd /tmp && export GREETING=hello")?;
/// let out = sh.exec("printf '%s from %s' \"$GREETING\" \"$PWD\"")?;
/// assert_eq!(out.stdout, b"hello from /tmp");
/// sh.close()?;
/// # Ok(()) }
/// ```
pub struct Session {
    id: uuid::Uuid,
    engine: Engine,
    target: String,
    shell: String,
    user: Option<String>,
    child: Child,
    line: Arc<Mutex<Line>>,
    shared: Arc<Shared>,
    readers: Vec<JoinHandle<()>>,
    reaper: Option<Arc<Reaper>>,
    dialect: Dialect,
    seq: u64,
    /// A command started by `send` or a dropped [`Running`], not yet finished.
    pending: Option<Job>,
    /// Set once the shell has exited, with its exit code when known.
    dead: Option<Option<i32>>,
    closed: bool,
    /// Cleaning up after the shell failed (the container was paused, the engine did not
    /// answer): `close` tries again.
    cleanup_owed: bool,
    /// A signalling exec failed during the last timeout: the container cannot be reached.
    unreachable: bool,
    timeouts: Timeouts,
    max_output: usize,
    /// `$TMPDIR` (or `/tmp`) in the container, as the shell saw it at start.
    tmp_dir: Option<String>,
    stdin_used: bool,
    metrics: Metrics,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("runtime", &self.engine.runtime())
            .field("target", &self.target)
            .field("shell", &self.shell)
            .field("pid", &self.pid())
            .field("alive", &self.dead.is_none())
            .finish_non_exhaustive()
    }
}

/// A command being run, for the session's internal bookkeeping.
struct Job {
    seq: u64,
    rx: Receiver<Event>,
    command: String,
    started: Instant,
    deadline: Option<Instant>,
    /// Aborted after printing nothing for this long.
    idle: Option<Duration>,
    step: Step,
    timed_out: bool,
    /// The processes a timeout signalled, killed once the command is over if any survive.
    tree: Vec<u32>,
}

/// Where a timed-out command is on the way to being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
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
struct Finish {
    exit_code: i32,
    timed_out: bool,
    duration: Duration,
    /// Output kept by the readers (for [`Deliver::Keep`]).
    kept: [Kept; 2],
}

/// The time limits of one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Limits {
    timeout: Option<Duration>,
    idle: Option<Duration>,
}

/// How a command's output reaches its waiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deliver {
    /// As events on the job's channel.
    Events,
    /// Kept by the readers up to this many bytes per stream, handed over at the end.
    Keep(usize),
    /// Into the session's unread buffer.
    Unread,
}

impl Session {
    /// Starts configuring a session in `target`: a container name or id (ignored by
    /// [`Runtime::Local`]).
    pub fn builder(target: impl Into<String>) -> SessionBuilder {
        SessionBuilder {
            target: target.into(),
            engine: None,
            exec_args: Vec::new(),
            shell: "/bin/sh".into(),
            env: Vec::new(),
            workdir: None,
            user: None,
            timeouts: Timeouts::default(),
            max_output: 64 << 20,
            unread_cap: 1 << 20,
            tap: None,
        }
    }

    /// Runs `command` and waits for it, with the session's default timeout and output cap.
    ///
    /// A non-zero exit code or a timeout is not an error: see [`Output::exit_code`],
    /// [`Output::timed_out`], [`Output::check`]. If the command ends the shell (`exit 3`, a
    /// failure under `set -e`), the output so far comes back with the shell's exit code and
    /// later calls return [`Error::ShellExited`].
    ///
    /// # Errors
    /// [`Error::ShellExited`] if the shell had already exited; [`Error::InvalidValue`] for a
    /// command holding a NUL byte; [`Error::Io`] if the shell's stdin cannot be written.
    pub fn exec(&mut self, command: &str) -> Result<Output> {
        self.cmd(command).run()
    }

    /// A command with options (timeout, stdin, output cap, chunk callback), run with
    /// [`Cmd::run`] or started with [`Cmd::spawn`].
    pub fn cmd(&mut self, command: impl Into<String>) -> Cmd<'_> {
        Cmd {
            session: self,
            command: command.into(),
            timeout: None,
            idle_timeout: None,
            stdin: None,
            max_output: None,
            on_chunk: None,
        }
    }

    /// Starts `command` and returns at once; see [`Running`].
    ///
    /// # Errors
    /// As for [`exec`](Session::exec).
    pub fn spawn(&mut self, command: &str) -> Result<Running<'_>> {
        self.cmd(command).spawn()
    }

    /// Starts `command` without waiting for it. Its output is kept for [`read`](Session::read);
    /// the next command first waits for it to finish (within its timeout).
    ///
    /// # Errors
    /// As for [`exec`](Session::exec).
    pub fn send(&mut self, command: &str) -> Result<()> {
        let limits = Limits { timeout: self.timeouts.command, idle: self.timeouts.idle };
        let job = self.start(command, limits, None, Deliver::Unread)?;
        self.pending = Some(job);
        Ok(())
    }

    /// Takes the output that arrived while no command was waiting for it: that of commands
    /// started with [`send`](Session::send), and what background jobs printed between
    /// commands. Does not block.
    ///
    /// # Errors
    /// Only from stopping a sent command that ran past its timeout.
    pub fn read(&mut self) -> Result<Unread> {
        if let Some(mut job) = self.pending.take() {
            let shared = Arc::clone(&self.shared);
            let mut keep = |ev: Event| shared.push_unread(ev.stream(), ev.bytes());
            if self.drive(&mut job, Some(Instant::now()), &mut keep)?.is_none() {
                self.pending = Some(job);
            }
        }
        let unread = self.shared.take_unread();
        let [stdout, stderr] = unread.bufs;
        Ok(Unread { stdout, stderr, dropped: unread.dropped, busy: self.pending.is_some() })
    }

    /// Calls `tap` with every piece of output from now on (see [`SessionBuilder::on_output`]);
    /// replaces the previous one.
    pub fn on_output(&mut self, tap: impl FnMut(Stream, &[u8]) + Send + 'static) {
        self.shared.set_tap(Some(Box::new(tap)));
    }

    /// Aborts a command started with [`send`](Session::send) (or a dropped [`Running`]) as
    /// Ctrl-C aborts a command line at a prompt. To interrupt [`exec`](Session::exec) from
    /// another thread, use an [`interrupter`](Session::interrupter).
    ///
    /// SIGINT goes to the shell and to the command's processes inside the container, not to
    /// background jobs of earlier commands. The shell abandons the rest of the command (a list,
    /// a loop, a function, a subshell, a pipeline), keeps its cwd, variables, functions,
    /// aliases and options, and answers the next command; the command's output so far comes
    /// back, with exit code 130. What ignores SIGINT is left to [`Interrupter::kill`] or the
    /// timeout, which sends SIGKILL after the grace period. A shell that ignores SIGINT itself
    /// (`trap '' INT`) runs the rest of the command once its child is gone.
    ///
    /// # Errors
    /// When the signalling exec fails.
    pub fn interrupt(&mut self) -> Result<()> {
        match (&self.pending, &self.reaper) {
            (Some(_), Some(reaper)) => reaper.abort(Abort::Interrupt).map(drop),
            _ => Ok(()),
        }
    }

    /// A handle that interrupts this session's running command from another thread.
    pub fn interrupter(&self) -> Interrupter {
        Interrupter { reaper: Arc::clone(self.reaper.as_ref().expect("an open session has a reaper")) }
    }

    /// The PID of the shell inside the container (on the host, for [`Runtime::Local`]).
    pub fn pid(&self) -> u32 {
        self.reaper.as_ref().map_or(0, |r| r.pid)
    }

    /// A unique id of this session.
    pub fn id(&self) -> uuid::Uuid {
        self.id
    }

    /// The container name or id (`-` for [`Runtime::Local`]).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The runtime this session runs through.
    pub fn runtime(&self) -> &Runtime {
        self.engine.runtime()
    }

    /// Use counters.
    pub fn metrics(&self) -> Metrics {
        self.metrics
    }

    /// Whether the shell is still there to run commands. Checks the exec client without
    /// blocking; a shell that exited is noticed at the latest by the next command.
    pub fn is_alive(&mut self) -> bool {
        if self.dead.is_none() && matches!(self.child.try_wait(), Ok(Some(_))) {
            self.mark_dead(None);
        }
        self.dead.is_none()
    }

    /// Writes `data` to the file `path` in the container (created or truncated), through
    /// the session's shell.
    ///
    /// # Errors
    /// [`Error::CommandFailed`] when the file cannot be written, or as for [`exec`](Session::exec).
    pub fn write_file(&mut self, path: &str, data: &[u8]) -> Result<()> {
        self.cmd(format!("cat >| {}", text::quote(path))).stdin(data).max_output(64 << 10).run()?.check()?;
        Ok(())
    }

    /// Reads the file `path` in the container, through the session's shell.
    ///
    /// # Errors
    /// [`Error::CommandFailed`] when the file cannot be read (or holds more than the output
    /// cap), or as for [`exec`](Session::exec).
    pub fn read_file(&mut self, path: &str) -> Result<Vec<u8>> {
        let out = self.cmd(format!("cat -- {}", text::quote(path))).run()?.check()?;
        if out.truncated {
            return Err(Error::CommandFailed {
                command: out.command,
                exit_code: 0,
                timed_out: false,
                stderr: format!("file larger than the output cap of {} bytes", self.max_output),
            });
        }
        Ok(out.stdout)
    }

    /// Ends the shell and every process it started in the container, and waits for the exec
    /// client to exit (up to the close timeout, then kills it). If cleaning up after a shell
    /// that died failed earlier (the container was paused), it is tried again here.
    ///
    /// # Errors
    /// When the processes could not be signalled (the engine does not answer, the container is
    /// paused); a container that is gone or stopped has nothing left to clean and is not an
    /// error.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    /// Starts the shell: the bootstrap line, then a first command that applies `env` and
    /// `workdir` and reports the shell's PID, temporary directory and dialect.
    fn start_shell(&mut self, env: &[(String, String)], workdir: Option<&str>, command_line: &str) -> Result<()> {
        let mut setup = String::new();
        for (key, value) in env {
            setup.push_str(&format!("export {key}={} && ", text::quote(value)));
        }
        if let Some(dir) = workdir {
            setup.push_str(&format!("cd -- {} && ", text::quote(dir)));
        }
        setup.push_str("printf '%s %s %s\\n' \"$$\" \"${BASH_VERSION:+bash}\" \"${TMPDIR:-/tmp}\"");
        let (runtime, container) = (self.engine.runtime().to_string(), self.target.clone());
        let open_error =
            |message: String| Error::Open { runtime, container, command: command_line.to_string(), message };
        let boot = Token::random();
        // A failed write means the exec has ended already; the setup job then says how.
        let _ = self.write(protocol::bootstrap(&boot).as_bytes());
        // The dialect is not known yet: the setup runs in the POSIX frame, which bash reads too.
        let limits = Limits { timeout: Some(self.timeouts.open), idle: None };
        let result = self
            .start(&setup, limits, None, Deliver::Keep(usize::MAX))
            .and_then(|mut job| self.collect(&mut job, &mut Collector::new(0, None), None));
        let out = match result {
            Ok(Some(out)) => out,
            Ok(None) => unreachable!("collecting without a limit runs to the end"),
            // The exec ended before the setup was even sent (a CLI that fails at once): what it
            // printed went unclaimed, and says why.
            Err(Error::ShellExited { .. }) => {
                let [stdout, stderr] = self.shared.take_unread().bufs;
                Output::new(stdout, stderr, -1, false, Duration::ZERO, String::new())
            }
            Err(e) => {
                let _ = self.child.kill();
                return Err(e);
            }
        };
        // What the shell printed before the bootstrap line ran (banners, job-control notices)
        // is not the setup's.
        let after_boot = |bytes: &[u8]| {
            let mut mark = boot.marker().to_vec();
            mark.extend_from_slice(b" boot\n");
            match bytes.windows(mark.len()).position(|w| w == mark) {
                Some(at) => bytes[at + mark.len()..].to_vec(),
                None => bytes.to_vec(),
            }
        };
        let (stdout, stderr) = (after_boot(&out.stdout), proc::said(&after_boot(&out.stderr)));
        if out.timed_out {
            self.kill_client();
            return Err(open_error(format!("the shell did not answer within {:?}", self.timeouts.open)));
        }
        if let Some(code) = self.dead {
            let message = if stderr.is_empty() {
                format!("the exec exited with code {}", code.map_or("unknown".into(), |c| c.to_string()))
            } else {
                stderr
            };
            let fallback = open_error(message.clone());
            return Err(self.engine.diagnose(&self.target, &message, fallback));
        }
        let text = String::from_utf8_lossy(&stdout);
        let parsed = text.trim_end_matches('\n').split_once(' ').and_then(|(pid, rest)| {
            let (dialect, tmp) = rest.split_once(' ')?;
            Some((pid.parse().ok()?, dialect, tmp))
        });
        match parsed {
            Some((pid, dialect, tmp)) if out.exit_code == 0 => {
                // Start-up noise that came before the setup was sent (busybox's banner, when
                // the shell starts fast) went unclaimed: it is not output of any command.
                let _ = self.shared.take_unread();
                self.tmp_dir = Some(tmp.to_string());
                self.dialect = if dialect == "bash" { Dialect::Bash } else { Dialect::Posix };
                self.reaper = Some(Arc::new(Reaper {
                    engine: self.engine.clone(),
                    target: self.target.clone(),
                    user: self.user.clone(),
                    shell: self.shell.clone(),
                    pid,
                    dialect: self.dialect,
                    watermark: Mutex::new(Watermark::default()),
                    line: Arc::clone(&self.line),
                    shared: Arc::clone(&self.shared),
                }));
                let now = Instant::now();
                self.metrics = Metrics { commands: 0, busy: Duration::ZERO, created: now, last_used: now };
                Ok(())
            }
            _ => {
                self.kill_client();
                Err(open_error(if stderr.is_empty() {
                    format!("unexpected answer {:?}", proc::said(&stdout))
                } else {
                    stderr
                }))
            }
        }
    }

    /// Sends `command` to the shell. Waits for a pending command first.
    fn start(&mut self, command: &str, limits: Limits, stdin: Option<&[u8]>, deliver: Deliver) -> Result<Job> {
        text::no_nul("command", command)?;
        self.settle()?;
        if let Some(code) = self.dead {
            return Err(self.shell_exited(code));
        }
        let mut text = String::new();
        let stdin_path;
        let input = match stdin {
            None => Input::Null,
            Some(data) => {
                let dir = self.temp_dir();
                stdin_path = format!("{dir}/stdin");
                if data.len() <= INLINE_STDIN {
                    let mkdir = (!self.stdin_used).then_some(dir.as_str());
                    text.push_str(&protocol::encode_file(&stdin_path, mkdir, data));
                } else {
                    self.upload(&dir, &stdin_path, data)?;
                }
                self.stdin_used = true;
                Input::File(&stdin_path)
            }
        };
        let token = Token::random();
        let known_job = self.reaper.as_ref().map_or(0, |r| r.known_job());
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
        };
        if !self.shared.begin(job.seq, token.marker(), sink, done, job.idle.is_some()) {
            self.mark_dead(None);
            return Err(self.shell_exited(self.dead.flatten()));
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

    /// The session's directory for temporary files in the container.
    fn temp_dir(&self) -> String {
        format!("{}/.boxshell-{}", self.tmp_dir.as_deref().unwrap_or("/tmp"), self.id.simple())
    }

    /// Writes `data` to `path` in the container (creating `dir`, mode 700, if needed) through a
    /// second exec that pipes it into `cat`, as the session's user.
    fn upload(&self, dir: &str, path: &str, data: &[u8]) -> Result<()> {
        const SCRIPT: &str = "umask 077 && { [ -d \"$1\" ] || mkdir -m 700 -- \"$1\"; } && exec cat >| \"$2\"";
        let argv = [self.shell.as_str(), "-c", SCRIPT, "boxshell-upload", dir, path].map(OsStr::new);
        let spec = ExecSpec { target: &self.target, interactive: true, user: self.user.as_deref(), extra: &[] };
        let mut cmd = self.engine.exec(&spec, &argv);
        // Generous: a second per MiB beyond the time a shell may take to start.
        let timeout = self.timeouts.open + Duration::from_secs(data.len() as u64 >> 20);
        let op = Op("upload", &self.target);
        let out = self.engine.run_command(op, &mut cmd, Some(data), timeout)?;
        if out.status.success() {
            return Ok(());
        }
        let message = out.message();
        let fallback =
            self.engine.failed(op, &cmd, format!("writing {} bytes of stdin to {path}: {message}", data.len()));
        Err(self.engine.diagnose(&self.target, &message, fallback))
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        lock(&self.line).write(bytes, &self.target)
    }

    fn shell_exited(&self, code: Option<i32>) -> Error {
        Error::ShellExited { runtime: self.engine.runtime().to_string(), container: self.target.clone(), code }
    }

    /// Waits for a pending (sent or detached) command, keeping its output as unread.
    fn settle(&mut self) -> Result<()> {
        if let Some(mut job) = self.pending.take() {
            let shared = Arc::clone(&self.shared);
            self.drive(&mut job, None, &mut |ev: Event| shared.push_unread(ev.stream(), ev.bytes()))?;
        }
        Ok(())
    }

    /// Drives `job` until it ends (`Some`) or `until` passes (`None`), gathering its output.
    fn collect(&mut self, job: &mut Job, out: &mut Collector<'_>, until: Option<Instant>) -> Result<Option<Output>> {
        let Some(finish) = self.drive(job, until, &mut |ev| out.push(ev))? else { return Ok(None) };
        Ok(Some(out.output(job, finish)))
    }

    /// Receives `job`'s events into `sink` until it ends (`Some`) or `until` passes (`None`),
    /// stopping it step by step once its deadline has passed.
    fn drive(&mut self, job: &mut Job, until: Option<Instant>, sink: &mut dyn FnMut(Event)) -> Result<Option<Finish>> {
        loop {
            let now = Instant::now();
            let mut wake = now + TICK;
            for t in [until, job.next_step(&self.shared)].into_iter().flatten() {
                wake = wake.min(t);
            }
            match job.rx.recv_deadline(wake) {
                Ok(ev) => sink(ev),
                Err(RecvTimeoutError::Disconnected) => return Ok(Some(self.finish(job))),
                Err(RecvTimeoutError::Timeout) => {
                    // Drain what is already there before acting on the time.
                    while let Ok(ev) = job.rx.try_recv() {
                        sink(ev);
                    }
                    let now = Instant::now();
                    if self.dead.is_none() && matches!(self.child.try_wait(), Ok(Some(_))) {
                        // The shell is gone but something it left still holds its pipes open:
                        // ending what it left closes them; the readers get a grace period.
                        self.mark_dead(None);
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
    fn escalate(&mut self, job: &mut Job, now: Instant) -> bool {
        let grace = self.timeouts.grace;
        let Some(reaper) = self.reaper.clone() else {
            // Still opening: there is no shell PID to signal yet.
            job.timed_out = true;
            self.shared.abandon(job.seq);
            self.kill_client();
            return true;
        };
        // When the container cannot be reached to signal (paused, engine gone, CLI hanging),
        // more attempts would fail the same way: go straight to killing the exec client.
        let mut unreachable = |e: Error| {
            log::warn!("stopping `{}` in {}: {e}; killing the exec client", job.command, self.target);
            self.unreachable = true;
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
                self.mark_dead(None);
                return true;
            }
        };
        false
    }

    /// Books the end of `job` and works out its exit code.
    fn finish(&mut self, job: &mut Job) -> Finish {
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
        if let (Some(status), Some(reaper)) = (status, &self.reaper) {
            reaper.saw(status);
        }
        let shell_gone =
            !matches!(completion, Some(Completion { stdout: End::Sentinel(_), stderr: End::Sentinel(_), .. }));
        if shell_gone && self.dead.is_none() {
            self.mark_dead(None);
        } else if !shell_gone && !job.tree.is_empty() {
            // The command is over, but what ignored its interrupt (background processes do)
            // must not outlive a timeout.
            if let Some(reaper) = &self.reaper
                && let Err(e) = reaper.signal(Scope::Pids(&job.tree), "KILL", None)
            {
                log::warn!("ending what is left of `{}`: {e}", job.command);
            }
        }
        let exit_code = match status {
            Some(status) => status.code,
            None => self.dead.flatten().unwrap_or(if job.timed_out { 137 } else { -1 }),
        };
        self.metrics.commands += 1;
        self.metrics.busy += duration;
        self.metrics.last_used = Instant::now();
        let kept = completion.map(|c| c.kept).unwrap_or_default();
        Finish { exit_code, timed_out: job.timed_out, duration, kept }
    }

    /// Records that the shell has exited: reaps the exec client (within the close timeout)
    /// and ends whatever the shell left running.
    fn mark_dead(&mut self, code: Option<i32>) {
        if self.dead.is_some() {
            return;
        }
        lock(&self.line).stdin = None;
        let status = proc::wait_until(&mut self.child, Instant::now() + self.timeouts.close).or_else(|| {
            let _ = self.child.kill();
            self.child.wait().ok()
        });
        let code = code.or(status.map(proc::exit_code));
        log::info!("the shell of session {} in {} exited (code {code:?})", self.id, self.target);
        self.dead = Some(code);
        if self.unreachable {
            // Signalling just failed (paused container, engine gone): not again now, `close`
            // tries.
            self.cleanup_owed = true;
        } else if !self.closed {
            // (A shell that ends while closing ended its process group itself.)
            let _ = self.reap_leftovers();
        }
    }

    /// Kills what the shell left behind (background jobs outliving `exit`), and its temporary
    /// files. A container that is gone or stopped has nothing left.
    fn reap_leftovers(&mut self) -> Result<()> {
        let Some(reaper) = self.reaper.clone() else { return Ok(()) };
        let dir = self.stdin_dir();
        let result = match reaper.signal(Scope::Session, "KILL", dir.as_deref()) {
            Ok(_) | Err(Error::ContainerNotFound { .. }) => Ok(()),
            // A stopped container has no processes left; a paused one still has them all.
            Err(Error::ContainerNotRunning { state, .. }) if state != "paused" => Ok(()),
            Err(e) => {
                log::warn!("cleaning up after the session in {}: {e}", self.target);
                Err(e)
            }
        };
        // Owed until it succeeds: `close` tries again.
        self.cleanup_owed = result.is_err();
        result
    }

    fn stdin_dir(&self) -> Option<String> {
        self.stdin_used.then(|| self.temp_dir())
    }

    fn kill_client(&mut self) {
        lock(&self.line).stdin = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.dead.get_or_insert(None);
    }

    fn shutdown(&mut self) -> Result<()> {
        if std::mem::replace(&mut self.closed, true) {
            return Ok(());
        }
        let mut result = Ok(());
        if self.dead.is_none() && self.pending.is_none() && self.reaper.is_some() {
            // An idle shell cleans up after itself, as a command: no second exec needed. As
            // the leader of its own process group (an exec makes it one, and so does this
            // library for a local shell), it is then told to end the group, itself included,
            // with one signal, which the kernel delivers atomically with respect to fork.
            // Otherwise it finds what it started in /proc (slow in a crowded container:
            // busybox reads one byte per system call) and exits.
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
            let cleaned = self.cmd(script).timeout(close).max_output(4096).run();
            match cleaned {
                Ok(out) if out.success() && self.dead.is_none() => {
                    let last = if out.stdout == b"leader\n" { "\\command kill -s KILL 0\n" } else { "exit 0\n" };
                    let _ = self.write(last.as_bytes());
                    lock(&self.line).stdin = None;
                    match proc::wait_until(&mut self.child, Instant::now() + close) {
                        Some(status) => self.dead = Some(Some(proc::exit_code(status))),
                        // The container is clean; only the client is slow to go.
                        None => self.kill_client(),
                    }
                }
                _ => result = self.kill_session(),
            }
        } else if self.dead.is_none() {
            result = self.kill_session();
        } else if self.cleanup_owed {
            result = self.reap_leftovers();
        }
        self.join_readers();
        log::info!("session {} in {} closed", self.id, self.target);
        result
    }

    /// Kills the shell and its processes from outside, then the exec client.
    fn kill_session(&mut self) -> Result<()> {
        let result = self.reap_leftovers();
        lock(&self.line).stdin = None;
        if proc::wait_until(&mut self.child, Instant::now() + self.timeouts.close).is_none() {
            self.kill_client();
        }
        self.dead.get_or_insert(None);
        result
    }

    /// Waits briefly for the reader threads; they end at EOF. One that does not (a process
    /// that escaped the session still holds a pipe) is left to end on its own.
    fn join_readers(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(1);
        while self.readers.iter().any(|r| !r.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        for reader in self.readers.drain(..) {
            if reader.is_finished() {
                let _ = reader.join();
            } else {
                log::warn!("a reader of session {} is still blocked; leaving it to end on its own", self.id);
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            log::warn!("closing session {} in {}: {e}", self.id, self.target);
        }
    }
}

impl Job {
    /// When the next timeout step is due: at the deadline, or once the command has printed
    /// nothing (as `shared` saw it) for its idle timeout, whichever comes first.
    fn next_step(&self, shared: &Shared) -> Option<Instant> {
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
type ChunkFn<'a> = Box<dyn FnMut(Stream, &[u8]) + 'a>;

/// Gathers a command's output up to a cap, passing every piece to a callback first.
struct Collector<'a> {
    /// Stdout and stderr.
    kept: [Kept; 2],
    on_chunk: Option<ChunkFn<'a>>,
}

impl<'a> Collector<'a> {
    fn new(cap: usize, on_chunk: Option<ChunkFn<'a>>) -> Self {
        Collector { kept: [Kept::new(cap), Kept::new(cap)], on_chunk }
    }

    fn push(&mut self, ev: Event) {
        let stream = ev.stream();
        if let Some(f) = self.on_chunk.as_mut() {
            f(stream, ev.bytes());
        }
        self.kept[stream as usize].push(ev.into_bytes());
    }

    /// The output of `job`: what came as events, or what the readers kept.
    fn output(&mut self, job: &mut Job, finish: Finish) -> Output {
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
    session: &'s mut Session,
    command: String,
    timeout: Option<Option<Duration>>,
    idle_timeout: Option<Option<Duration>>,
    stdin: Option<Vec<u8>>,
    max_output: Option<usize>,
    on_chunk: Option<ChunkFn<'s>>,
}

impl std::fmt::Debug for Cmd<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cmd")
            .field("command", &self.command)
            .field("timeout", &self.timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("stdin_bytes", &self.stdin.as_ref().map(Vec::len))
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
        let job = session.start(&self.command, limits, self.stdin.as_deref(), deliver)?;
        Ok(Running {
            session,
            events: job.rx.clone(),
            job: Some(job),
            collector: Collector::new(cap, self.on_chunk),
            done: None,
        })
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
    job: Option<Job>,
    collector: Collector<'s>,
    done: Option<Output>,
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

    /// Waits for the command to finish (or be stopped by its timeout).
    ///
    /// # Errors
    /// [`Error::Io`] only if stopping a timed-out command fails in an unexpected way.
    pub fn wait(mut self) -> Result<Output> {
        match self.wait_until(None)? {
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

    /// Aborts the command with SIGKILL to its processes; see [`Interrupter::kill`].
    ///
    /// # Errors
    /// When the signalling exec fails.
    pub fn kill(&self) -> Result<()> {
        self.abort(Abort::Kill)
    }

    fn abort(&self, how: Abort) -> Result<()> {
        match (&self.job, &self.session.reaper) {
            (Some(_), Some(reaper)) => reaper.abort(how).map(drop),
            _ => Ok(()),
        }
    }

    fn wait_until(&mut self, until: Option<Instant>) -> Result<Option<Output>> {
        if let Some(out) = &self.done {
            return Ok(Some(out.clone()));
        }
        let Some(job) = self.job.as_mut() else { return Ok(None) };
        let Some(out) = self.session.collect(job, &mut self.collector, until)? else { return Ok(None) };
        self.job = None;
        self.done = Some(out.clone());
        Ok(Some(out))
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Some(job) = self.job.take() {
            self.session.pending = Some(job);
        }
    }
}
