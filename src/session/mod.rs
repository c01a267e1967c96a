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
//! inside the container (`reap.sh`): a timed-out command's process tree on timeout, the shell's
//! whole process group and session on close.

mod output;
pub(crate) mod protocol;
mod route;

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

pub use self::output::{Event, Output, Stream};
use self::protocol::{Input, Token};
use self::route::{Completion, End, Kept, Shared, Sink, Tap};
use crate::error::{Error, Result};
use crate::proc;
use crate::runtime::{Cli, ExecSpec, Op, Runtime, validate_target};

/// The script that signals a session's processes inside the container.
pub(crate) const REAP_SCRIPT: &str = include_str!("reap.sh");

/// How many output events a running command may have in flight before the readers wait.
const CHANNEL_CAP: usize = 32;

/// How often a waiting call checks that the shell is still there.
const TICK: Duration = Duration::from_millis(100);

/// Longest time a signalling exec may take.
const REAP_TIMEOUT: Duration = Duration::from_secs(5);

/// Timeouts of a session. Every wait in boxshell is bounded by one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Timeouts {
    /// Default per-command timeout; `None` waits for ever.
    command: Option<Duration>,
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
    runtime: Option<Runtime>,
    program: Option<OsString>,
    global_args: Vec<OsString>,
    cli_env: Vec<(OsString, OsString)>,
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
            .field("runtime", &self.runtime)
            .field("shell", &self.shell)
            .field("env", &self.env.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("workdir", &self.workdir)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl SessionBuilder {
    /// The runtime that reaches the container. Default: [`Runtime::detect`] at `open`.
    pub fn runtime(mut self, runtime: Runtime) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// The runtime's program, when it is not `docker` / `podman` on `PATH`. For
    /// [`Runtime::Local`] this is ignored: the shell is the program.
    pub fn program(mut self, program: impl Into<OsString>) -> Self {
        self.program = Some(program.into());
        self
    }

    /// Global arguments for the runtime CLI, put before `exec` (e.g. `--context`, `prod`).
    pub fn global_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.global_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable of the runtime CLI process, such as `DOCKER_HOST`,
    /// `DOCKER_CONTEXT` or `CONTAINER_HOST`, without changing this process's environment.
    /// (Those set in this process's environment apply too, as on the command line.)
    pub fn cli_env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.cli_env.push((key.into(), value.into()));
        self
    }

    /// Uses `cli` (runtime, program, global arguments, environment) as it is.
    pub(crate) fn cli(mut self, cli: Cli) -> Self {
        self.runtime = Some(cli.runtime);
        self.program = Some(cli.program);
        self.global_args = cli.global_args;
        self.cli_env = cli.env;
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

    /// The shell to run. Default `/bin/sh`. Any POSIX shell works (dash, bash, busybox sh).
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
    /// Default: 60 seconds. A command can set its own with [`Cmd::timeout`].
    pub fn timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.timeouts.command = timeout.into();
        self
    }

    /// How long a timed-out command gets between SIGINT and SIGKILL. Default: 2 seconds.
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

    /// The default cap on the bytes kept per stream of each command; past it, output is read
    /// and dropped and [`Output::truncated`] is set. Default: 64 MiB.
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
        let runtime = match self.runtime.clone() {
            Some(runtime) => runtime,
            None => Runtime::detect()?,
        };
        let mut cli = Cli::new(runtime.clone());
        cli.global_args = self.global_args.clone();
        cli.env = self.cli_env.clone();
        if let Some(program) = &self.program {
            cli.program = program.clone();
        }
        self.validate(&runtime)?;
        let target = if runtime.is_container() { self.target.clone() } else { "-".to_string() };
        let spec = ExecSpec { target: &target, interactive: true, user: self.user.as_deref(), extra: &self.exec_args };
        let mut cmd = cli.exec(&spec, &[OsStr::new(&self.shell), OsStr::new(protocol::SCRIPT)]);
        let command_line = proc::describe(&cmd);
        log::info!("opening session: {command_line}");
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        // Own process group: a Ctrl-C meant for this program does not kill its sessions
        // midway; they are closed in order instead.
        cmd.process_group(0);
        let mut child = cmd.spawn().map_err(|e| cli.spawn_error(cmd.get_program(), e))?;
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
        let stdin = child.stdin.take();
        let now = Instant::now();
        let mut session = Session {
            id,
            cli,
            target,
            shell: self.shell,
            user: self.user,
            child,
            stdin,
            shared,
            readers,
            reaper: None,
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
            session.cli.runtime,
            session.target,
            session.pid()
        );
        Ok(session)
    }

    fn validate(&self, runtime: &Runtime) -> Result<()> {
        validate_target(runtime, &self.target)?;
        if self.user.is_some() && !runtime.is_engine() {
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
            let valid = key.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid {
                return Err(Error::InvalidName {
                    what: "environment variable name",
                    value: key.clone(),
                    reason: "a name holds ASCII letters, digits and `_`, and does not start with a digit",
                });
            }
            if value.contains('\0') {
                return Err(Error::InvalidCommand { reason: "an environment value contains a NUL byte" });
            }
        }
        if self.workdir.as_deref().is_some_and(|w| w.contains('\0')) {
            return Err(Error::InvalidCommand { reason: "the workdir contains a NUL byte" });
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
    /// The running command's process tree (background jobs of earlier commands are spared).
    Command,
    /// Every process of the session, the shell included.
    Session,
    /// These processes, if still in the session, and their descendants.
    Pids(&'a [u32]),
}

/// Signals processes of one session from outside it. Shared with [`Interrupter`]s.
#[derive(Debug)]
struct Reaper {
    cli: Cli,
    target: String,
    user: Option<String>,
    shell: String,
    pid: u32,
    /// The highest `$!` any command reported: children of the shell above it are the running
    /// command's.
    watermark: AtomicU32,
}

impl Reaper {
    /// Signals the processes of `scope`; returns the PIDs it signalled.
    fn signal(&self, scope: Scope<'_>, signal: &str, remove_dir: Option<&str>) -> Result<Vec<u32>> {
        let (scope_arg, pids) = match scope {
            Scope::Command => ("command", &[][..]),
            Scope::Session => ("session", &[][..]),
            Scope::Pids(pids) => ("pids", pids),
        };
        let pid = self.pid.to_string();
        let mark = self.watermark.load(Ordering::Acquire).to_string();
        let fixed = [&self.shell, "-c", REAP_SCRIPT, "reap", scope_arg, &pid, signal, &mark, remove_dir.unwrap_or("")];
        let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
        let argv: Vec<&OsStr> = fixed.iter().map(OsStr::new).chain(pids.iter().map(OsStr::new)).collect();
        let spec = ExecSpec { target: &self.target, interactive: false, user: self.user.as_deref(), extra: &[] };
        let mut cmd = self.cli.exec(&spec, &argv);
        let out = self.cli.run_command(Op("signal", &self.target), &mut cmd, None, REAP_TIMEOUT)?;
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
                self.cli.failed(Op("signal", &self.target), &cmd, format!("{scope_arg} {signal}: {message}"));
            Err(self.cli.diagnose(&self.target, &message, fallback))
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
/// let out = sh.exec("sleep 30")?;
/// assert_eq!(out.exit_code, 130); // 128 + SIGINT
/// t.join().unwrap()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Interrupter {
    reaper: Arc<Reaper>,
}

impl Interrupter {
    /// Sends SIGINT to the running command's processes (not to the shell, not to background
    /// jobs of earlier commands). Does nothing when no command is running.
    ///
    /// # Errors
    /// When the signalling exec fails, e.g. the container is gone.
    pub fn interrupt(&self) -> Result<()> {
        self.reaper.signal(Scope::Command, "INT", None).map(drop)
    }

    /// Sends SIGKILL to the running command's processes.
    ///
    /// # Errors
    /// As for [`interrupt`](Interrupter::interrupt).
    pub fn kill(&self) -> Result<()> {
        self.reaper.signal(Scope::Command, "KILL", None).map(drop)
    }
}

/// A persistent shell in a container (or on this host), that runs one command at a time.
///
/// State carries over between commands: the working directory, exported and shell variables,
/// functions, aliases, `set` options, background jobs. Each command's stdout and stderr come
/// back separately and byte for byte; its stdin is empty unless given with [`Cmd::stdin`].
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
    cli: Cli,
    target: String,
    shell: String,
    user: Option<String>,
    child: Child,
    stdin: Option<ChildStdin>,
    shared: Arc<Shared>,
    readers: Vec<JoinHandle<()>>,
    reaper: Option<Arc<Reaper>>,
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
            .field("runtime", &self.cli.runtime)
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
    step: Step,
    timed_out: bool,
    /// The processes a timeout signalled, killed once the command is over if any survive.
    tree: Vec<u32>,
}

/// Where a timed-out command is on the way to being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Running,
    /// SIGINT sent to the command; SIGKILL at the instant.
    Interrupted(Instant),
    /// SIGKILL sent to the command; the whole session is killed at the instant.
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
            runtime: None,
            program: None,
            global_args: Vec::new(),
            cli_env: Vec::new(),
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
    /// [`Error::ShellExited`] if the shell had already exited; [`Error::InvalidCommand`] for a
    /// command holding a NUL byte; [`Error::Io`] if the shell's stdin cannot be written.
    pub fn exec(&mut self, command: &str) -> Result<Output> {
        self.cmd(command).run()
    }

    /// A command with options (timeout, stdin, output cap, chunk callback), run with
    /// [`Cmd::run`] or started with [`Cmd::spawn`].
    pub fn cmd(&mut self, command: impl Into<String>) -> Cmd<'_> {
        Cmd { session: self, command: command.into(), timeout: None, stdin: None, max_output: None, on_chunk: None }
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
        let timeout = self.timeouts.command;
        let job = self.start(command, timeout, None, Deliver::Unread)?;
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

    /// Interrupts (SIGINT) a command started with [`send`](Session::send). To interrupt
    /// [`exec`](Session::exec) from another thread, use an [`interrupter`](Session::interrupter).
    ///
    /// # Errors
    /// When the signalling exec fails.
    pub fn interrupt(&mut self) -> Result<()> {
        match (&self.pending, &self.reaper) {
            (Some(_), Some(reaper)) => reaper.signal(Scope::Command, "INT", None).map(drop),
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
        &self.cli.runtime
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
        self.cmd(format!("cat >| {}", protocol::quote(path))).stdin(data).max_output(64 << 10).run()?.check()?;
        Ok(())
    }

    /// Reads the file `path` in the container, through the session's shell.
    ///
    /// # Errors
    /// [`Error::CommandFailed`] when the file cannot be read (or holds more than the output
    /// cap), or as for [`exec`](Session::exec).
    pub fn read_file(&mut self, path: &str) -> Result<Vec<u8>> {
        let out = self.cmd(format!("cat -- {}", protocol::quote(path))).run()?.check()?;
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
    /// `workdir` and reports the shell's PID and temporary directory.
    fn start_shell(&mut self, env: &[(String, String)], workdir: Option<&str>, command_line: &str) -> Result<()> {
        let mut setup = String::from("if [ -n \"${BASH_VERSION-}\" ]; then shopt -s expand_aliases; fi; ");
        for (key, value) in env {
            setup.push_str(&format!("export {key}={} && ", protocol::quote(value)));
        }
        if let Some(dir) = workdir {
            setup.push_str(&format!("cd -- {} && ", protocol::quote(dir)));
        }
        setup.push_str("printf '%s %s\\n' \"$$\" \"${TMPDIR:-/tmp}\"");
        let (runtime, container) = (self.cli.runtime.to_string(), self.target.clone());
        let open_error =
            |message: String| Error::Open { runtime, container, command: command_line.to_string(), message };
        // A failed write means the exec has ended already; the setup job then says how.
        let _ = self.write(protocol::BOOTSTRAP.as_bytes());
        let result = self
            .start(&setup, Some(self.timeouts.open), None, Deliver::Keep(usize::MAX))
            .and_then(|mut job| self.collect(&mut job, &mut Collector::new(0, None), None));
        let out = match result {
            Ok(Some(out)) => out,
            Ok(None) => unreachable!("collecting without a limit runs to the end"),
            Err(e) => {
                let _ = self.child.kill();
                return Err(e);
            }
        };
        let stderr = proc::said(&out.stderr);
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
            return Err(self.cli.diagnose(&self.target, &message, fallback));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let parsed = text.trim_end_matches('\n').split_once(' ').and_then(|(pid, tmp)| Some((pid.parse().ok()?, tmp)));
        match parsed {
            Some((pid, tmp)) if out.exit_code == 0 => {
                self.tmp_dir = Some(tmp.to_string());
                self.reaper = Some(Arc::new(Reaper {
                    cli: self.cli.clone(),
                    target: self.target.clone(),
                    user: self.user.clone(),
                    shell: self.shell.clone(),
                    pid,
                    watermark: AtomicU32::new(0),
                }));
                let now = Instant::now();
                self.metrics = Metrics { commands: 0, busy: Duration::ZERO, created: now, last_used: now };
                Ok(())
            }
            _ => {
                self.kill_client();
                Err(open_error(if stderr.is_empty() {
                    format!("unexpected answer {:?}", proc::said(&out.stdout))
                } else {
                    stderr
                }))
            }
        }
    }

    /// Sends `command` to the shell. Waits for a pending command first.
    fn start(
        &mut self,
        command: &str,
        timeout: Option<Duration>,
        stdin: Option<&[u8]>,
        deliver: Deliver,
    ) -> Result<Job> {
        if command.contains('\0') {
            return Err(Error::InvalidCommand { reason: "the command contains a NUL byte" });
        }
        self.settle()?;
        if let Some(code) = self.dead {
            return Err(self.shell_exited(code));
        }
        let mut text = String::new();
        let stdin_path;
        let input = match stdin {
            None => Input::Null,
            Some(data) => {
                let dir = format!("{}/.boxshell-{}", self.tmp_dir.as_deref().unwrap_or("/tmp"), self.id.simple());
                stdin_path = format!("{dir}/stdin");
                let mkdir = (!self.stdin_used).then_some(dir.as_str());
                text.push_str(&protocol::encode_file(&stdin_path, mkdir, data));
                self.stdin_used = true;
                Input::File(&stdin_path)
            }
        };
        let token = Token::random();
        text.push_str(&protocol::encode_command(command, &token, input));
        self.seq += 1;
        let (done, rx) = crossbeam_channel::bounded(if deliver == Deliver::Events { CHANNEL_CAP } else { 0 });
        let sink = match deliver {
            Deliver::Events => Sink::Events(done.clone()),
            Deliver::Keep(cap) => Sink::Keep(cap),
            Deliver::Unread => Sink::Unread,
        };
        if self.seq > 1 {
            log::debug!("exec in {} {}: {command}", self.cli.runtime, self.target);
        }
        let job = Job {
            seq: self.seq,
            rx,
            command: command.to_string(),
            started: Instant::now(),
            deadline: timeout.map(|t| Instant::now() + t),
            step: Step::Running,
            timed_out: false,
            tree: Vec::new(),
        };
        if !self.shared.begin(job.seq, token.marker(), sink, done) {
            self.mark_dead(None);
            return Err(self.shell_exited(self.dead.flatten()));
        }
        if let Err(e) = self.write(text.as_bytes()) {
            // The shell is gone (EPIPE): its pipes are closing, and waiting for the job finds
            // out how it ended and what it printed.
            log::debug!("{e}");
        }
        Ok(job)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let stdin = self.stdin.as_mut().ok_or_else(|| {
            Error::io("writing to the shell", std::io::Error::new(std::io::ErrorKind::BrokenPipe, "stdin closed"))
        })?;
        stdin.write_all(bytes).map_err(|e| Error::io(format!("writing to the shell in {}", self.target), e))
    }

    fn shell_exited(&self, code: Option<i32>) -> Error {
        Error::ShellExited { runtime: self.cli.runtime.to_string(), container: self.target.clone(), code }
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
            for t in [until, job.next_step()].into_iter().flatten() {
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
                    if job.next_step().is_some_and(|t| now >= t) {
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
                let (signal, next) = if job.step == Step::Running {
                    job.timed_out = true;
                    log::warn!("`{}` in {} timed out; interrupting it", job.command, self.target);
                    ("INT", Step::Interrupted(now + grace))
                } else {
                    log::warn!("`{}` did not stop on SIGINT; killing it", job.command);
                    ("KILL", Step::Killed(now + grace))
                };
                match reaper.signal(Scope::Command, signal, None) {
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
        let completion = self.shared.take_completion(job.seq);
        let duration = job.started.elapsed();
        let status = match &completion {
            Some(Completion { stderr: End::Sentinel(trailer), .. }) => protocol::parse_status(trailer),
            _ => None,
        };
        if let (Some(status), Some(reaper)) = (status, &self.reaper) {
            reaper.watermark.fetch_max(status.last_job, Ordering::AcqRel);
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
        self.stdin = None;
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
        } else {
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
        self.stdin_used.then(|| format!("{}/.boxshell-{}", self.tmp_dir.as_deref().unwrap_or("/tmp"), self.id.simple()))
    }

    fn kill_client(&mut self) {
        self.stdin = None;
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
            // An idle shell cleans up after itself, as a command whose sentinel confirms it ran:
            // no second exec needed, and a slow exec client need not be waited for.
            let mut script = String::from(
                "\\command unalias -a 2>/dev/null; \\command unset -f kill read set test echo 2>/dev/null; set +eu; set -- session \"$$\" KILL 0 ",
            );
            script.push_str(&protocol::quote(self.stdin_dir().as_deref().unwrap_or("")));
            script.push('\n');
            script.push_str(REAP_SCRIPT);
            let close = self.timeouts.close;
            let cleaned = self.cmd(script).timeout(close).max_output(4096).run();
            match cleaned {
                Ok(out) if out.success() && self.dead.is_none() => {
                    let _ = self.write(b"exit 0\n");
                    self.stdin = None;
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
        self.stdin = None;
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
    /// When the next timeout step is due.
    fn next_step(&self) -> Option<Instant> {
        match self.step {
            Step::Running => self.deadline,
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
    cap: usize,
    on_chunk: Option<ChunkFn<'a>>,
}

impl<'a> Collector<'a> {
    fn new(cap: usize, on_chunk: Option<ChunkFn<'a>>) -> Self {
        Collector { kept: Default::default(), cap, on_chunk }
    }

    fn push(&mut self, ev: Event) {
        let stream = ev.stream();
        if let Some(f) = self.on_chunk.as_mut() {
            f(stream, ev.bytes());
        }
        self.kept[stream as usize].push(self.cap, ev.into_bytes());
    }

    /// The output of `job`: what came as events, or what the readers kept.
    fn output(&mut self, job: &Job, finish: Finish) -> Output {
        let [stdout, stderr] = std::mem::take(&mut self.kept);
        let [kept_out, kept_err] = finish.kept;
        let (stdout, stderr) = (stdout.or(kept_out), stderr.or(kept_err));
        let truncated = stdout.truncated || stderr.truncated;
        Output {
            stdout: stdout.bytes,
            stderr: stderr.bytes,
            exit_code: finish.exit_code,
            timed_out: finish.timed_out,
            truncated,
            duration: finish.duration,
            command: job.command.clone(),
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
    stdin: Option<Vec<u8>>,
    max_output: Option<usize>,
    on_chunk: Option<ChunkFn<'s>>,
}

impl std::fmt::Debug for Cmd<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cmd")
            .field("command", &self.command)
            .field("timeout", &self.timeout)
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

    /// Bytes the command reads as its stdin (then EOF). Without this, stdin is empty.
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
        let timeout = self.timeout.unwrap_or(session.timeouts.command);
        let cap = self.max_output.unwrap_or(session.max_output);
        let deliver = if keep { Deliver::Keep(cap) } else { Deliver::Events };
        let job = session.start(&self.command, timeout, self.stdin.as_deref(), deliver)?;
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

    /// Sends SIGINT to the command's processes.
    ///
    /// # Errors
    /// When the signalling exec fails.
    pub fn interrupt(&self) -> Result<()> {
        self.signal("INT")
    }

    /// Sends SIGKILL to the command's processes.
    ///
    /// # Errors
    /// When the signalling exec fails.
    pub fn kill(&self) -> Result<()> {
        self.signal("KILL")
    }

    fn signal(&self, sig: &str) -> Result<()> {
        match (&self.job, &self.session.reaper) {
            (Some(_), Some(reaper)) => reaper.signal(Scope::Command, sig, None).map(drop),
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
