//! Input to commands: bytes given up front, uploaded by a second exec when they are more than
//! fit in a frame, and live input to an interactive command, through a FIFO in the container
//! that a second exec feeds.
//!
//! The feeding exec runs `cat >FIFO` with its stdin on a pipe from this process, so input
//! moves at the speed of the engine's stream, never through the session's shell as text. It
//! creates the FIFO and says `ready` before the command is sent, so the command's redirection
//! finds a writer at once; when the feeder is closed the command reads EOF.

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::Session;
use super::shell::{Reaper, Scope};
use crate::engine::{ExecSpec, Op};
use crate::error::{Error, Result};
use crate::proc;

/// What the feeder prints once the FIFO exists and `cat` is about to open it.
const READY: &[u8] = b"ready\n";

/// The live stdin of an interactive command: a second exec running `cat >FIFO`, written to by
/// a thread, so that a command that does not read cannot block the caller's thread.
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
    reaper: Arc<Reaper>,
    ended: bool,
}

impl Session {
    /// The session's directory for temporary files in the container.
    pub(super) fn temp_dir(&self) -> String {
        format!("{}/.boxshell-{}", self.tmp_dir, self.id.simple())
    }

    /// Writes `data` to `path` in the container (creating `dir`, mode 700, if needed) through a
    /// second exec that pipes it into `cat`, as the session's user.
    pub(super) fn upload(&self, dir: &str, path: &str, data: &[u8]) -> Result<()> {
        const SCRIPT: &str = "umask 077 && { [ -d \"$1\" ] || mkdir -m 700 -- \"$1\"; } && exec cat >| \"$2\"";
        let argv = [self.shell.as_str(), "-c", SCRIPT, "boxshell-upload", dir, path].map(OsStr::new);
        let user = self.reaper.user.as_deref();
        let spec = ExecSpec { target: &self.target, interactive: true, user, extra: &[] };
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

    /// Starts the feeder of the FIFO `fifo` (made in `dir`, mode 700, if needed) and waits
    /// until it has made the FIFO: the command reading it can be sent.
    pub(super) fn feeder(&self, dir: &str, fifo: &str) -> Result<Feeder> {
        // The FIFO goes once `cat` ends; a `cat` killed by `Feeder::finish` leaves it to the
        // removal of the session's directory.
        const SCRIPT: &str = "exec 2>&1; umask 077 && { [ -d \"$1\" ] || mkdir -m 700 -- \"$1\"; } \
            && mkfifo -- \"$2\" && export \"$3\" && echo ready && cat >\"$2\"; s=$?; rm -f -- \"$2\"; exit $s";
        let mark = format!("BOXSHELL_FEED={}", uuid::Uuid::new_v4().simple());
        let argv = [self.shell.as_str(), "-c", SCRIPT, "boxshell-feed", dir, fifo, &mark].map(OsStr::new);
        let user = self.reaper.user.as_deref();
        let spec = ExecSpec { target: &self.target, interactive: true, user, extra: &[] };
        let mut cmd = self.engine.exec(&spec, &argv);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let op = Op("feed", &self.target);
        let mut child = cmd.spawn().map_err(|e| self.engine.spawn_error(cmd.get_program(), e))?;
        let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let (Some(stdin), Some(stdout), Some(stderr)) = (stdin, stdout, stderr) else {
            unreachable!("all three pipes were asked for")
        };
        let (said_tx, said) = crossbeam_channel::bounded(1);
        let reader = proc::spawn_thread("boxshell-feed-out".into(), move || await_ready(stdout, stderr, &said_tx));
        let (tx, chunks) = crossbeam_channel::bounded::<Vec<u8>>(1);
        let (acks_tx, acks) = crossbeam_channel::unbounded();
        let writer = proc::spawn_thread("boxshell-feed-in".into(), move || {
            let mut stdin = stdin;
            for chunk in chunks {
                let written = stdin.write_all(&chunk);
                let failed = written.is_err();
                let _ = acks_tx.send(written);
                if failed {
                    break;
                }
            }
        });
        let (mut threads, mut failed) = (Vec::new(), None);
        for thread in [reader, writer] {
            match thread {
                Ok(handle) => threads.push(handle),
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        let mut feeder =
            Feeder { tx: Some(tx), acks, child, threads, mark, reaper: Arc::clone(&self.reaper), ended: false };
        if let Some(e) = failed {
            // Dropping the feeder ends it.
            return Err(Error::io(format!("{}: starting the threads of a command's stdin", self.target), e));
        }
        let message = match said.recv_timeout(self.timeouts.open) {
            Ok(None) => return Ok(feeder),
            Ok(Some(message)) => message,
            Err(_) => format!("no answer within {:?}", self.timeouts.open),
        };
        feeder.end(Duration::ZERO);
        let fallback = self.engine.failed(op, &cmd, format!("making the FIFO {fifo} for stdin: {message}"));
        Err(self.engine.diagnose(&self.target, &message, fallback))
    }
}

/// Reads the feeder's stdout until it says it is ready (sends `None`), or to its end, then
/// its stderr: what it printed instead (sends `Some`). After `ready`, whatever `cat` says is
/// logged.
fn await_ready(mut stdout: impl Read, mut stderr: impl Read, said: &Sender<Option<String>>) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        match stdout.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
        if seen.starts_with(READY) {
            let _ = said.send(None);
            let mut rest = seen.split_off(READY.len());
            let _ = stdout.read_to_end(&mut rest);
            if !rest.is_empty() {
                log::debug!("the feeder of a command's stdin said: {}", proc::said(&rest));
            }
            return;
        }
    }
    let _ = stderr.read_to_end(&mut seen);
    let _ = said.send(Some(proc::said(&seen)));
}

impl Feeder {
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

    /// The writer's result for the next chunk, waiting up to `wait`: `None` if it has not
    /// come yet, an error if the writer failed or stopped.
    pub(super) fn ack(&self, wait: Duration) -> Option<io::Result<()>> {
        match self.acks.recv_timeout(wait) {
            Ok(result) => Some(result),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Err(io::ErrorKind::BrokenPipe.into())),
        }
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
        let deadline = Instant::now() + grace;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                _ => {
                    if let Err(e) = self.reaper.signal(Scope::Environ(&self.mark), "KILL", None) {
                        log::warn!("ending the feeder of a command's stdin: {e}");
                    }
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
            }
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for Feeder {
    /// A feeder not ended (the command could not be sent) is ended without waiting.
    fn drop(&mut self) {
        self.end(Duration::ZERO);
    }
}
