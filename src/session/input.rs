//! Input to commands: bytes given up front, and live input to an interactive command, both
//! through a second exec that the session's shell takes its stdin from.
//!
//! The feeding exec makes a FIFO, says `ready` with its PID, and waits on the FIFO without
//! reading its own stdin, a pipe from this process. The command reads that pipe itself, as
//! `/proc/PID/fd/0`, so input moves at the speed of the engine's stream, never through the
//! session's shell as text and with no copy in the container. Its frame holds the FIFO open
//! while it runs; once the command is over the feeder reads EOF there and ends. Where the
//! exec's stdin is no pipe (or `/proc` is missing), the feeder runs `cat >FIFO` instead and
//! the command reads the FIFO: one copy more. When this process closes the pipe, the command
//! reads EOF.

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::Session;
use super::protocol::Input;
use super::signal::Signaller;
use crate::engine::{ExecSpec, Op};
use crate::error::{Error, Result};
use crate::proc;
use crate::reap::{Procs, Signal};

/// The stdin of a command, from a second exec (see the module docs), written to by a
/// thread, so that a command that does not read cannot block the caller's thread.
pub(super) struct Feeder {
    /// Chunks for the writer thread; `None` once the input is closed.
    tx: Option<Sender<Vec<u8>>>,
    /// One result per chunk written: `Ok`, or the error that stopped the writer.
    acks: Receiver<io::Result<()>>,
    child: Child,
    threads: Vec<JoinHandle<()>>,
    /// `BOXSHELL_FEED=...`, in the environment of the feeding `cat` only.
    mark: String,
    /// To end that `cat` when it does not end by itself.
    signaller: Arc<Signaller>,
    ended: bool,
    /// The FIFO in the container.
    fifo: String,
    /// The feeder's PID, when the command reads the feeder's stdin.
    pid: Option<u32>,
    /// Whether input is written while the command runs (interactive), not all given at start.
    pub(super) live: bool,
    /// The host side of a terminal command's PTY.
    #[cfg(feature = "terminal")]
    pub(super) terminal: Option<super::terminal::Pty>,
}

/// The writer thread's input, its results, and the thread.
type Writer = (Sender<Vec<u8>>, Receiver<io::Result<()>>, io::Result<JoinHandle<()>>);

/// Starts the thread that writes a command's input to `stdin`: chunks go in on the sender,
/// one result per chunk comes back on the receiver.
fn spawn_writer(mut stdin: impl Write + Send + 'static) -> Writer {
    let (tx, chunks) = crossbeam_channel::bounded::<Vec<u8>>(1);
    let (acks_tx, acks) = crossbeam_channel::unbounded();
    let writer = proc::spawn_thread("boxshell-feed-in".into(), move || {
        for chunk in chunks {
            let written = stdin.write_all(&chunk).and_then(|()| stdin.flush());
            let failed = written.is_err();
            let _ = acks_tx.send(written);
            if failed {
                break;
            }
        }
    });
    (tx, acks, writer)
}

/// The feeder's argv: `shell` makes `fifo` in `dir` and copies its stdin into it, with `mark`
/// (`NAME=VALUE`) in the environment of its `cat`.
pub(crate) fn feeder_argv<'a>(
    shell: &'a str,
    dir: &'a str,
    fifo: &'a str,
    mark: &'a str,
    nonce: &'a str,
) -> [&'a OsStr; 8] {
    // The FIFO goes once its `cat` (or `head`, which reads the frame's `end` line) ends; one
    // killed by `Feeder::end` leaves it to the removal of the session's directory. The mark
    // is in the environment of `cat` or `head` only. Once
    // the FIFO exists, it says so with its `Hello`: with its PID when the command is to read
    // its stdin, without when the command is to read the FIFO.
    const SCRIPT: &str = "exec 2>&1; umask 077 && { [ -d \"$1\" ] || mkdir -m 700 -- \"$1\"; } \
        && mkfifo -- \"$2\" && export \"$3\" || exit; \
        if [ -p /proc/$$/fd/0 ]; then echo \"ready $4 $$\"; head -n 1 -- \"$2\" >/dev/null; else echo \"ready $4\"; cat >\"$2\"; fi; \
        s=$?; rm -f -- \"$2\"; exit $s";
    [shell, "-c", SCRIPT, "boxshell-feed", dir, fifo, mark, nonce].map(OsStr::new)
}

/// The session's directory for temporary files in the container (stdin files, FIFOs), made
/// when first needed and removed at close.
#[derive(Debug)]
pub(super) struct Scratch {
    dir: String,
    made: bool,
}

impl Scratch {
    /// The directory of session `id` under `tmp` (the container's `$TMPDIR`, `/dev/shm` or
    /// `/tmp`).
    pub(super) fn new(tmp: &str, id: uuid::Uuid) -> Scratch {
        Scratch { dir: format!("{tmp}/.boxshell-{}", id.simple()), made: false }
    }

    pub(super) fn dir(&self) -> &str {
        &self.dir
    }

    /// The directory, if the next command is to make it: it will exist from then on.
    pub(super) fn make(&mut self) -> Option<String> {
        (!std::mem::replace(&mut self.made, true)).then(|| self.dir.clone())
    }

    /// Notes that the directory was made.
    pub(super) fn made(&mut self) {
        self.made = true;
    }

    /// The directory, if it was made.
    pub(super) fn existing(&self) -> Option<&str> {
        self.made.then_some(self.dir.as_str())
    }
}

impl Session {
    /// Starts a feeder for the next command, with its FIFO in the session's directory (made
    /// if needed), and waits until it is ready: the command reading from it can be sent.
    pub(super) fn feeder(&mut self) -> Result<Feeder> {
        let dir = self.scratch.dir();
        let fifo = format!("{dir}/in-{}", self.seq + 1);
        let mark = format!("BOXSHELL_FEED={}", uuid::Uuid::new_v4().simple());
        let hello = proc::Hello::new();
        let argv = feeder_argv(&self.shell.program, dir, &fifo, &mark, hello.nonce());
        let user = self.signaller.user.as_deref();
        let spec = ExecSpec { target: &self.target, interactive: true, tty: false, user, extra: &[] };
        let mut cmd = self.engine.exec(&spec, &argv);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| self.engine.spawn_error(cmd.get_program(), e))?;
        let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let (Some(stdin), Some(stdout), Some(stderr)) = (stdin, stdout, stderr) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::io("starting the feeder", std::io::Error::other("a pipe is missing")));
        };
        let (said_tx, said) = crossbeam_channel::bounded(1);
        let reader =
            proc::spawn_thread("boxshell-feed-out".into(), move || await_ready(stdout, stderr, &hello, &said_tx));
        let (feeder, failed) = Feeder::new(child, reader, stdin, mark, fifo.clone(), Arc::clone(&self.signaller));
        if let Some(e) = failed {
            // Dropping the feeder ends it.
            return Err(Error::io(format!("{}: starting the threads of a command's stdin", self.target), e));
        }
        self.when_ready(feeder, &said, "feed", &cmd, |message| format!("making the FIFO {fifo} for stdin: {message}"))
    }

    /// Waits until `feeder` says it is ready, with its PID if it gave one, and returns it; else
    /// ends it and returns the error of operation `op`, run as `cmd`: `describe` words it from
    /// what the feeder said instead.
    pub(super) fn when_ready(
        &mut self,
        mut feeder: Feeder,
        said: &Receiver<std::result::Result<Option<u32>, String>>,
        op: &'static str,
        cmd: &std::process::Command,
        describe: impl FnOnce(&str) -> String,
    ) -> Result<Feeder> {
        let message = match said.recv_timeout(self.timeouts.open) {
            Ok(Ok(pid)) => {
                feeder.pid = pid;
                self.scratch.made();
                return Ok(feeder);
            }
            Ok(Err(message)) => message,
            Err(_) => {
                // Ended, it says what it printed before it stopped answering.
                feeder.end(Duration::ZERO);
                let printed = match said.recv_timeout(Duration::from_secs(1)) {
                    Ok(Err(printed)) if !printed.is_empty() => format!("; it printed: {printed}"),
                    _ => String::new(),
                };
                format!("no answer within {:?}{printed}", self.timeouts.open)
            }
        };
        feeder.end(Duration::ZERO);
        let fallback = self.engine.failed(Op(op, &self.target), cmd, describe(&message));
        Err(self.engine.diagnose(&self.target, &message, fallback))
    }
}

/// Reads the feeder's stdout until it says it is ready (sends its PID, if it gave one), or to
/// its end, then its stderr: what it printed instead (sends `Err`). After `ready`, whatever
/// the feeder says is logged.
fn await_ready(
    mut stdout: impl Read,
    mut stderr: impl Read,
    hello: &proc::Hello,
    said: &Sender<std::result::Result<Option<u32>, String>>,
) {
    match proc::read_until(&mut stdout, |seen| hello.ready(seen)) {
        Ok((pid, mut rest)) => {
            let _ = said.send(Ok(pid));
            let _ = stdout.read_to_end(&mut rest);
            if !rest.is_empty() {
                log::debug!("the feeder of a command's stdin said: {}", proc::said(&rest));
            }
        }
        Err(mut seen) => {
            let _ = stderr.read_to_end(&mut seen);
            let _ = said.send(Err(proc::said(&seen)));
        }
    }
}

impl Feeder {
    /// A feeder of `child` (a feeding exec, whose `mark` is in its environment and `fifo` the
    /// FIFO it makes): `reader` reads what it says, a thread started here writes the command's
    /// input to `input`. With the error that kept a thread from starting, if one did: the
    /// feeder then ends when dropped.
    pub(super) fn new(
        child: Child,
        reader: io::Result<JoinHandle<()>>,
        input: impl Write + Send + 'static,
        mark: String,
        fifo: String,
        signaller: Arc<Signaller>,
    ) -> (Feeder, Option<io::Error>) {
        let (tx, acks, writer) = spawn_writer(input);
        let (mut threads, mut failed) = (Vec::new(), None);
        for thread in [reader, writer] {
            match thread {
                Ok(handle) => threads.push(handle),
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        let feeder = Feeder {
            tx: Some(tx),
            acks,
            child,
            threads,
            mark,
            signaller,
            ended: false,
            fifo,
            pid: None,
            live: true,
            #[cfg(feature = "terminal")]
            terminal: None,
        };
        (feeder, failed)
    }

    /// Where the command reads its input.
    pub(super) fn input(&self) -> Input<'_> {
        match self.pid {
            Some(pid) => Input::Pipe { pid, hold: &self.fifo },
            None => Input::File(&self.fifo),
        }
    }

    /// The command as its frame runs it: on the terminal, for a terminal's feeder.
    pub(super) fn framed<'a>(&self, command: &'a str) -> std::borrow::Cow<'a, str> {
        #[cfg(feature = "terminal")]
        if let (Some(_), Some(pid)) = (&self.terminal, self.pid) {
            return std::borrow::Cow::Owned(super::terminal::on_terminal(command, pid));
        }
        std::borrow::Cow::Borrowed(command)
    }

    /// Hands all of the command's input to the writer, which writes it while the command runs,
    /// and closes the input. `false` if the writer has stopped.
    pub(super) fn feed_all(&mut self, data: Vec<u8>) -> bool {
        self.live = false;
        // The writer is idle: it takes the bytes at once.
        let taken = matches!(self.offer(data, Duration::ZERO), Ok(None));
        self.close();
        taken
    }

    /// Hands `chunk` to the writer, waiting up to `wait`; gives it back if the writer is busy,
    /// `Err` if the input is closed or the writer has stopped.
    pub(super) fn offer(&self, chunk: Vec<u8>, wait: Duration) -> std::result::Result<Option<Vec<u8>>, ()> {
        let Some(tx) = &self.tx else { return Err(()) };
        match tx.send_timeout(chunk, wait) {
            Ok(()) => Ok(None),
            Err(crossbeam_channel::SendTimeoutError::Timeout(chunk)) => Ok(Some(chunk)),
            Err(crossbeam_channel::SendTimeoutError::Disconnected(_)) => Err(()),
        }
    }

    /// The writer's results, one per chunk written: `Ok`, or the error that stopped it. They
    /// outlive the feeder, so a write is known to have landed even when the command, having
    /// read it, has ended since.
    pub(super) fn acks(&self) -> Receiver<io::Result<()>> {
        self.acks.clone()
    }

    /// Whether the input is still open.
    pub(super) fn is_open(&self) -> bool {
        self.tx.is_some()
    }

    /// Closes the input: once the writer has written what it holds, the command reads EOF.
    pub(super) fn close(&mut self) {
        self.tx = None;
    }

    /// Closes the input and waits up to `grace` for the feeder to end; past that, kills its
    /// `cat` in the container (still waiting to open the FIFO, or to write to a command that
    /// does not read) and its exec client.
    pub(super) fn end(&mut self, grace: Duration) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        self.close();
        // A terminal whose holder said the command is over: the client and the reader go on
        // only for a background job left on the PTY, and end with it; the holder is gone.
        #[cfg(feature = "terminal")]
        let over = self.terminal.as_ref().is_some_and(super::terminal::Pty::said_end);
        #[cfg(not(feature = "terminal"))]
        let over = false;
        let wait = if over { grace.min(LINGER) } else { grace };
        if proc::wait_until(&mut self.child, Instant::now() + wait).is_none() {
            // Over, nothing of the feeder is left in the container to kill.
            if !over && let Err(e) = self.signaller.signal(Procs::Environ(&self.mark), Signal::Kill, None) {
                log::warn!("ending the feeder of a command's stdin: {e}");
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if over {
            // Detached: the reader ends when the job lets go of the PTY, the writer when its
            // input (closed) is written or the PTY goes.
            self.threads.clear();
            return;
        }
        // The writer ends once its pipe breaks. On the local runtime the read end is the
        // feeder's own stdin, which a background job of the command may still hold open:
        // then the writer is left to end when that job lets go, not waited for.
        let deadline = Instant::now() + grace.max(Duration::from_secs(1));
        for thread in self.threads.drain(..) {
            if proc::poll_until(deadline, proc::QUICK_POLL, || thread.is_finished()) {
                let _ = thread.join();
            } else {
                log::warn!("the writer of a command's stdin is still blocked; it is left to end by itself");
            }
        }
    }
}

/// How long a terminal's client may take to exit once its holder has said the command is over.
const LINGER: Duration = Duration::from_millis(300);

impl Drop for Feeder {
    /// A feeder not ended (the command could not be sent) is ended without waiting.
    fn drop(&mut self) {
        self.end(Duration::ZERO);
    }
}
