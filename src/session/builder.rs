//! Opening a session: the builder, its checks, the exec that starts the shell, and the
//! handshake that makes it ready (see [`protocol::bootstrap`]).

use std::ffi::{OsStr, OsString};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;

use super::input::Scratch;
use super::protocol::{self, Dialect, Input, Token};
use super::readers::{Completion, End, Router, Sink, Tap};
use super::shell::{Client, Line, Shell};
use super::signal::Signaller;
use super::watch::Watch;
use super::{Metrics, Session, Stream, lock};
use crate::engine::{Engine, ExecSpec};
use crate::error::{Error, Result};
use crate::output::PerStream;
use crate::proc;
use crate::reap::Instance;
use crate::runtime::{Runtime, validate_target};
use crate::text;

/// Timeouts of a session. Every wait in boxshell is bounded by one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Timeouts {
    /// Default per-command timeout; `None` waits for ever.
    pub(super) command: Option<Duration>,
    /// Default idle timeout: a command that prints nothing on either stream for this long is
    /// aborted. `None`: off.
    pub(super) idle: Option<Duration>,
    /// Between the interrupt (SIGINT) of a timed-out command and SIGKILL, and between each
    /// later step.
    pub(super) grace: Duration,
    /// For the shell to start and answer its first command.
    pub(super) open: Duration,
    /// For the shell to exit on close before it is killed.
    pub(super) close: Duration,
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
    pub(super) target: String,
    pub(super) engine: Option<Engine>,
    pub(super) exec_args: Vec<OsString>,
    pub(super) shell: String,
    pub(super) env: Vec<(String, String)>,
    pub(super) workdir: Option<String>,
    pub(super) user: Option<String>,
    pub(super) timeouts: Timeouts,
    pub(super) max_output: usize,
    pub(super) unread_cap: usize,
    pub(super) tap: Option<Tap>,
    /// A state to apply once open.
    pub(super) restore: Option<super::ShellState>,
}

impl std::fmt::Debug for SessionBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionBuilder")
            .field("target", &self.target)
            .field("engine", &self.engine)
            .field("shell", &self.shell)
            .field("env", &text::EnvNames(&self.env))
            .field("workdir", &self.workdir)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl SessionBuilder {
    /// Applies `state` (from [`Session::snapshot`]) once the session is open, as
    /// [`Session::restore`] does: one command. What the shell could not take is logged as a
    /// warning; call [`Session::restore`] yourself for the list.
    pub fn restore(mut self, state: super::ShellState) -> Self {
        self.restore = Some(state);
        self
    }

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
    /// Default: 60 seconds. A command can set its own with [`Cmd::timeout`](super::Cmd::timeout). A command past
    /// its timeout is aborted as Ctrl-C would abort it at a prompt (see [`Session::interrupt`]).
    pub fn timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.timeouts.command = timeout.into();
        self
    }

    /// The default idle timeout of each command: a command that prints nothing on either
    /// stream for this long is aborted as on a timeout (and its [`Output::timed_out`](super::Output::timed_out) is set).
    /// Default: `None`, off. A command can set its own with [`Cmd::idle_timeout`](super::Cmd::idle_timeout).
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
    /// between are read and dropped, and [`Output::stdout_gap`](super::Output::stdout_gap) / [`Output::stderr_gap`](super::Output::stderr_gap) say
    /// where and how many ([`Gap`](crate::Gap)). Default: 64 MiB.
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
        let id = uuid::Uuid::new_v4();
        let started = self.spawn_shell(&engine, &target, id)?;
        let setup = setup_command(&self.env, self.workdir.as_deref());
        let answer = handshake(&started, &setup, self.timeouts.open, &target);
        let hello = match self.hello(answer, &engine, &target, &started) {
            Ok(hello) => hello,
            Err(e) => {
                started.client.kill_and_wait();
                return Err(e);
            }
        };
        // Start-up noise that came before the handshake began (busybox's banner, when the shell
        // starts fast) went unclaimed: it is not output of any command.
        let _ = started.router.take_unread();
        started.router.set_tap(self.tap);
        let signaller = Arc::new(Signaller::new(
            engine.clone(),
            target.clone(),
            self.user.clone(),
            self.shell.clone(),
            hello.pid,
            hello.dialect,
            hello.instance,
        ));
        let Started { client, line, router, mut threads, .. } = started;
        let name = format!("boxshell-watch-{}", &id.simple().to_string()[..8]);
        let watch =
            Watch::start(Arc::clone(&signaller), Arc::clone(&line), Arc::clone(&router), Arc::clone(&client), name);
        let (watch, watch_thread) = watch.map_err(|e| {
            client.kill_and_wait();
            Error::io("starting the watch thread", e)
        })?;
        threads.push(watch_thread);
        let now = Instant::now();
        let restore = self.restore;
        let mut session = Session {
            id,
            engine,
            target,
            shell: Shell::new(self.shell, client, line),
            router,
            signaller,
            watch,
            threads,
            scratch: Scratch::new(&hello.tmp_dir, id),
            seq: HANDSHAKE_SEQ,
            pending: None,
            timeouts: self.timeouts,
            max_output: self.max_output,
            metrics: Metrics { commands: 0, busy: Duration::ZERO, created: now, last_used: now },
            background: Vec::new(),
        };
        let (runtime, pid) = (session.engine.runtime(), session.pid());
        log::info!("session {id} open in {runtime} {} (shell pid {pid})", session.target);
        if let Some(state) = restore {
            let restored = session.restore(&state)?;
            if !restored.missed.is_empty() {
                log::warn!("session {id}: the shell state could not all be restored: {}", restored.missed.join(", "));
            }
        }
        Ok(session)
    }

    /// Starts the exec that runs the shell, and the threads reading its output.
    fn spawn_shell(&self, engine: &Engine, target: &str, id: uuid::Uuid) -> Result<Started> {
        let spec =
            ExecSpec { target, interactive: true, tty: false, user: self.user.as_deref(), extra: &self.exec_args };
        let shell = OsStr::new(&self.shell);
        let mut argv = vec![shell, OsStr::new("-c"), OsStr::new(protocol::LAUNCH), shell];
        // A local shell runs in a session of its own, as an exec'd one does in its container:
        // an interactive shell that shares this program's terminal stops itself (SIGTTIN)
        // trying to take it over. A shell that is not there is started as it is, so that the
        // error names it, not `setsid`.
        let own_session =
            *engine.runtime() == Runtime::Local && which::which(&self.shell).is_ok() && which::which("setsid").is_ok();
        if own_session {
            argv.insert(0, OsStr::new("setsid"));
        }
        let mut cmd = engine.exec(&spec, &argv);
        let command_line = proc::describe(&cmd);
        log::info!("opening session: {command_line}");
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        if !own_session {
            // Own process group: a Ctrl-C meant for this program does not kill its sessions
            // midway; they are closed in order instead. (`setsid` above makes both.)
            cmd.process_group(0);
        }
        let mut child = cmd.spawn().map_err(|e| engine.spawn_error(cmd.get_program(), e))?;
        let router = Router::new(self.unread_cap);
        let mut threads = Vec::with_capacity(3);
        if let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) {
            let short = &id.simple().to_string()[..8];
            for (stream, started) in [
                (Stream::Stdout, router.start_reader(Stream::Stdout, out, format!("boxshell-out-{short}"))),
                (Stream::Stderr, router.start_reader(Stream::Stderr, err, format!("boxshell-err-{short}"))),
            ] {
                match started {
                    Ok(handle) => threads.push(handle),
                    Err(e) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err(Error::io(format!("starting the {stream:?} reader thread"), e));
                    }
                }
            }
        }
        let line = Arc::new(Mutex::new(Line { stdin: child.stdin.take() }));
        Ok(Started { client: Arc::new(Client::new(child)), line, router, threads, command_line })
    }

    /// What the shell said to the handshake, or why it did not open.
    fn hello(&self, answer: Answer, engine: &Engine, target: &str, started: &Started) -> Result<Hello> {
        let open_error = |message: String| Error::Open {
            via: engine.via(),
            container: target.to_string(),
            command: started.command_line.clone(),
            message,
        };
        let stderr = proc::said(&answer.stderr);
        let hello = match answer.status {
            _ if answer.timed_out => {
                return Err(open_error(format!("the shell did not answer within {:?}", self.timeouts.open)));
            }
            None => {
                // The exec ended: what it printed says why.
                let code = started.client.wait_until(Instant::now() + self.timeouts.close).map(proc::exit_code);
                // docker says why an exec could not start (no such shell, no such user) on
                // stdout.
                let stdout = proc::said(&answer.stdout);
                let message = match (stderr.is_empty(), stdout.is_empty()) {
                    (false, _) => stderr,
                    (true, false) => stdout,
                    (true, true) => {
                        format!("the exec exited with code {}", code.map_or("unknown".into(), |c| c.to_string()))
                    }
                };
                let fallback = open_error(message.clone());
                return Err(engine.diagnose(target, &message, fallback));
            }
            Some(0) => Hello::parse(&answer.stdout),
            Some(_) => None,
        };
        hello.ok_or_else(|| {
            open_error(if stderr.is_empty() {
                format!("unexpected answer {:?}", proc::said(&answer.stdout))
            } else {
                stderr
            })
        })
    }

    fn validate(&self, runtime: &Runtime) -> Result<()> {
        validate_target(runtime, &self.target)?;
        if self.user.is_some() && !runtime.manages_containers() {
            return Err(Error::Unsupported {
                via: runtime.clone().into(),
                what: "`user` (only docker and podman exec take one)",
            });
        }
        text::word("shell", &self.shell)?;
        for (key, value) in &self.env {
            text::env_var(key, value, true)?;
        }
        if let Some(dir) = &self.workdir {
            text::no_nul("workdir", dir)?;
        }
        Ok(())
    }
}

/// The number of the handshake's command; the session's own commands come after it.
const HANDSHAKE_SEQ: u64 = 1;

/// The first command: applies `env` and `workdir`, and reports the shell's PID, dialect and
/// temporary directory.
fn setup_command(env: &[(String, String)], workdir: Option<&str>) -> String {
    let mut setup = String::new();
    for (key, value) in env {
        setup.push_str("export ");
        setup.push_str(key);
        setup.push('=');
        text::quote_into(&mut setup, value);
        setup.push_str(" && ");
    }
    if let Some(dir) = workdir {
        setup.push_str("cd -- ");
        text::quote_into(&mut setup, dir);
        setup.push_str(" && ");
    }
    // The directory for the session's files: `$TMPDIR`, else `/dev/shm` where it is writable
    // (tmpfs: writing a small stdin file there costs a tenth of a container's overlay `/tmp`).
    // The start times of the shell and of PID 1 tell this container instance from a later one.
    setup.push_str(
        "__bx_tmp=${TMPDIR:-/tmp} \
         && { [ -n \"${TMPDIR-}\" ] || ! [ -d /dev/shm ] || ! [ -w /dev/shm ] || __bx_tmp=/dev/shm; } \
         && __bx_shell=- __bx_init=- __bx_dialect=posix \
         && { [ -z \"${BASH_VERSION-}\" ] || __bx_dialect=bash; } \
         && { ! read -r __bx_l 2>/dev/null </proc/$$/stat || { set -- ${__bx_l##*) }; __bx_shell=${20:--}; }; } \
         && { ! read -r __bx_l 2>/dev/null </proc/1/stat || { set -- ${__bx_l##*) }; __bx_init=${20:--}; }; } \
         && set -- \
         && printf '%s %s %s %s %s\\n' \"$$\" \"$__bx_shell\" \"$__bx_init\" \"$__bx_dialect\" \"$__bx_tmp\" \
         && unset __bx_tmp __bx_shell __bx_init __bx_dialect __bx_l",
    );
    setup
}

/// What the shell said to the handshake: the setup command's output (after what the shell
/// printed before the bootstrap ran) and status.
struct Answer {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    /// The setup's exit status; `None` when the shell ended (or never answered) first.
    status: Option<i32>,
    timed_out: bool,
}

/// Sends the bootstrap and the setup command, and waits up to `timeout` for the setup to end.
/// The setup's output is claimed before anything is written, so that what the shell prints
/// at start (banners, job-control notices) cannot be taken for background output; what comes
/// before the bootstrap's own sentinel is cut off.
fn handshake(started: &Started, setup: &str, timeout: Duration, target: &str) -> Answer {
    let (boot, token) = (Token::random(), Token::random());
    let router = &started.router;
    let done = router.begin(HANDSHAKE_SEQ, token.marker(), Sink::Keep(usize::MAX), false, false);
    // The dialect is not known yet: the setup runs in the POSIX frame, which bash reads too.
    let mut text = protocol::bootstrap(&boot);
    text.push_str(&protocol::encode_command(Dialect::Posix, setup, &token, Input::Null, 0));
    // A failed write means the exec has ended already; its output says how.
    let _ = lock(&started.line).write(text.as_bytes(), target);
    // Output is kept by the readers, and comes with the completion.
    let completion = done.map(|done| done.recv_timeout(timeout));
    let timed_out = matches!(completion, Some(Err(RecvTimeoutError::Timeout)));
    if timed_out {
        router.abandon(HANDSHAKE_SEQ);
    }
    let (status, PerStream { stdout, stderr }) = match completion {
        Some(Ok(Completion { ends: PerStream { stdout: End::Sentinel(out), stderr: End::Sentinel(err) }, kept })) => {
            (protocol::parse_status(&err, &out).map(|s| s.code), kept.map(|k| k.finish().0))
        }
        Some(Ok(Completion { kept, .. })) => (None, kept.map(|k| k.finish().0)),
        // The exec ended before the handshake began: what it printed went unclaimed.
        _ => (None, router.take_unread().bufs),
    };
    let after_boot = |bytes: Vec<u8>| {
        let mut mark = boot.marker().to_vec();
        mark.extend_from_slice(b" boot\n");
        let mut bytes = bytes;
        if let Some(at) = bytes.windows(mark.len()).position(|w| w == mark) {
            bytes.drain(..at + mark.len());
        }
        bytes
    };
    Answer { stdout: after_boot(stdout), stderr: after_boot(stderr), status, timed_out }
}

/// What the setup command reported.
struct Hello {
    pid: u32,
    instance: Instance,
    dialect: Dialect,
    tmp_dir: String,
}

impl Hello {
    /// Parses `PID SHELL_START INIT_START DIALECT TMPDIR` (a start time unknown is `-`).
    fn parse(stdout: &[u8]) -> Option<Hello> {
        let text = std::str::from_utf8(stdout).ok()?.strip_suffix('\n')?;
        let mut words = text.splitn(5, ' ');
        let pid = words.next()?.parse().ok()?;
        let instance = Instance { shell: words.next()?.parse().ok(), init: words.next()?.parse().ok() };
        let dialect = if words.next()? == "bash" { Dialect::Bash } else { Dialect::Posix };
        Some(Hello { pid, instance, dialect, tmp_dir: words.next()?.to_string() })
    }
}

/// A shell's exec, started, with the threads reading its output.
struct Started {
    client: Arc<Client>,
    line: Arc<Mutex<Line>>,
    router: Arc<Router>,
    threads: Vec<JoinHandle<()>>,
    /// The exec's command line, for errors.
    command_line: String,
}
