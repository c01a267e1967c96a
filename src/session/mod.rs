//! Persistent shell sessions: [`Session`], its builder, and running commands in it.
//!
//! A session is made of parts, each in its own file and owning its own state: the shell and
//! its exec client ([`shell`]), the text written to it and the scanning of what it prints
//! ([`protocol`]), the reader threads routing its output ([`readers`]), the signaller that
//! reaches its processes from outside ([`signal`]), the watch that stops a command at its
//! deadlines ([`watch`], deciding with [`stop`]), the input feeder and the session's directory
//! in the container ([`input`]). One command's life, from sending it to booking its end, reads
//! top to bottom in [`driver`]; its public face is [`cmd`]. Opening is in [`builder`], the end
//! of the session in [`close`].
//!
//! The mechanism (the interactive shell, the frame and its sentinels, input, aborting a
//! command, closing): see `docs/DESIGN.md`.

mod background;
mod builder;
mod close;
mod cmd;
mod driver;
mod fs;
mod input;
mod overlay;
pub(crate) mod protocol;
mod readers;
mod shell;
mod signal;
mod snapshot;
mod stop;
#[cfg(feature = "terminal")]
mod terminal;
mod watch;

use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use self::background::{Process, ProcessStatus};
pub use self::builder::SessionBuilder;
use self::builder::Timeouts;
pub use self::cmd::{Cmd, Running};
use self::driver::{Deliver, Job, Stdin};
use self::input::Scratch;
#[cfg(test)]
pub(crate) use self::input::feeder_argv;
use self::overlay::Overlay;
use self::readers::Router;
use self::shell::Shell;
use self::signal::Signaller;
pub use self::snapshot::{Restored, ShellState};
use self::stop::{Abort, Limits};
pub use self::watch::Interrupter;
use self::watch::Watch;
use crate::engine::Engine;
use crate::error::Result;
use crate::output::{Event, Output, Stream};
use crate::runtime::Runtime;

/// How often a waiting call checks that the shell is still there.
const TICK: Duration = Duration::from_millis(100);

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

/// Locks `mutex`, whatever a panicking holder left: every update under these locks is a single
/// assignment or write.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
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
    shell: Shell,
    router: Arc<Router>,
    signaller: Arc<Signaller>,
    watch: Arc<Watch>,
    /// The reader threads, and the watch's.
    threads: Vec<JoinHandle<()>>,
    scratch: Scratch,
    /// The number of the last command sent.
    seq: u64,
    /// A command started by `send` or a dropped [`Running`], not yet finished.
    pending: Option<Job>,
    timeouts: Timeouts,
    max_output: usize,
    metrics: Metrics,
    /// The background processes it started.
    background: Vec<Arc<background::Shared>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("runtime", &self.engine.runtime())
            .field("target", &self.target)
            .field("shell", &self.shell.program)
            .field("pid", &self.pid())
            .field("alive", &self.shell.is_live())
            .finish_non_exhaustive()
    }
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
            restore: None,
        }
    }

    /// Runs `command` and waits for it, with the session's default timeout and output cap.
    ///
    /// A non-zero exit code or a timeout is not an error: see [`Output::exit_code`],
    /// [`Output::timed_out`], [`Output::check`]. If the command ends the shell (`exit 3`, a
    /// failure under `set -e`), the output so far comes back with the shell's exit code and
    /// later calls return [`Error::ShellExited`](crate::Error::ShellExited).
    ///
    /// # Errors
    /// [`Error::ShellExited`](crate::Error::ShellExited) if the shell had already exited; [`Error::InvalidValue`](crate::Error::InvalidValue) for a
    /// command holding a NUL byte; [`Error::Io`](crate::Error::Io) if the shell's stdin cannot be written.
    pub fn exec(&mut self, command: &str) -> Result<Output> {
        self.cmd(command).run()
    }

    /// A command with options (timeout, stdin, output cap, chunk callback), run with
    /// [`Cmd::run`] or started with [`Cmd::spawn`].
    pub fn cmd(&mut self, command: impl Into<String>) -> Cmd<'_> {
        let limits = Limits { timeout: self.timeouts.command, idle: self.timeouts.idle };
        let max_output = self.max_output;
        Cmd {
            session: self,
            command: command.into(),
            limits,
            stdin: None,
            interactive: false,
            terminal: None,
            max_output,
            on_chunk: None,
            overlay: Overlay::default(),
            launch: None,
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
        let job = self.start(command, limits, Stdin::Empty, Deliver::Unread)?;
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
        self.drive_pending(Some(Instant::now()))?;
        let unread = self.router.take_unread();
        let (stdout, stderr) = (unread.bufs.stdout, unread.bufs.stderr);
        Ok(Unread { stdout, stderr, dropped: unread.dropped, busy: self.pending.is_some() })
    }

    /// Calls `tap` with every piece of output from now on (see [`SessionBuilder::on_output`]);
    /// replaces the previous one.
    pub fn on_output(&mut self, tap: impl FnMut(Stream, &[u8]) + Send + 'static) {
        self.router.set_tap(Some(Box::new(tap)));
    }

    /// Aborts a command started with [`send`](Session::send) (or a dropped [`Running`]) as
    /// Ctrl-C aborts a command line at a prompt. To interrupt [`exec`](Session::exec) from
    /// another thread, use an [`interrupter`](Session::interrupter).
    ///
    /// SIGINT goes to the command's processes inside the container, not to background jobs of
    /// earlier commands. The shell abandons the rest of the command (a list, a loop, a
    /// function, a subshell, a pipeline), keeps its cwd, variables, functions, aliases and
    /// options, and answers the next command; the command's output so far comes back, with
    /// exit code 130. As after a timeout, what is still running a grace period later (what
    /// ignores SIGINT) gets SIGKILL, and so does what the command leaves running when it ends
    /// (its own background jobs). A shell that ignores SIGINT itself (`trap '' INT`) runs the
    /// rest of the command once its child is gone.
    ///
    /// # Errors
    /// When the signalling exec fails.
    pub fn interrupt(&mut self) -> Result<()> {
        match self.pending {
            Some(_) => self.watch.ask(Abort::Interrupt),
            None => Ok(()),
        }
    }

    /// A handle that interrupts this session's running command from another thread.
    pub fn interrupter(&self) -> Interrupter {
        Interrupter { watch: Arc::clone(&self.watch) }
    }

    /// The PID of the shell inside the container (on the host, for [`Runtime::Local`]).
    pub fn pid(&self) -> u32 {
        self.signaller.pid
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

    /// Whether the shell is still there to run commands, as far as can be told without
    /// waiting: the exec client has not exited. Runs nothing and takes no lock; a shell that
    /// exited is noticed (and what it left cleaned up) at the latest by the next command.
    pub fn is_alive(&mut self) -> bool {
        self.shell.is_live() && !self.shell.client.has_exited()
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
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            log::warn!("closing session {} in {}: {e}", self.id, self.target);
        }
    }
}
