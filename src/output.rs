//! What a command gives back: [`Output`], and the [`Event`]s of a running command.

use std::borrow::Cow;
use std::time::Duration;

use crate::error::{Error, Result};

/// One of the two output streams of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// Standard output.
    Stdout = 0,
    /// Standard error.
    Stderr = 1,
}

impl Stream {
    /// Both streams, stdout first.
    pub(crate) const BOTH: [Stream; 2] = [Stream::Stdout, Stream::Stderr];
}

/// One value per stream, picked by [`Stream`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PerStream<T> {
    pub(crate) stdout: T,
    pub(crate) stderr: T,
}

impl<T> PerStream<T> {
    /// Applies `f` to both values.
    pub(crate) fn map<U>(self, mut f: impl FnMut(T) -> U) -> PerStream<U> {
        PerStream { stdout: f(self.stdout), stderr: f(self.stderr) }
    }
}

impl<T> std::ops::Index<Stream> for PerStream<T> {
    type Output = T;
    fn index(&self, stream: Stream) -> &T {
        match stream {
            Stream::Stdout => &self.stdout,
            Stream::Stderr => &self.stderr,
        }
    }
}

impl<T> std::ops::IndexMut<Stream> for PerStream<T> {
    fn index_mut(&mut self, stream: Stream) -> &mut T {
        match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        }
    }
}

/// A piece of output from a running command, in the order the stream delivered it.
///
/// Pieces of one stream arrive in order; the two streams are independent of each other.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Bytes the command wrote to stdout.
    Stdout(Vec<u8>),
    /// Bytes the command wrote to stderr.
    Stderr(Vec<u8>),
}

impl Event {
    pub(crate) fn new(stream: Stream, bytes: Vec<u8>) -> Event {
        match stream {
            Stream::Stdout => Event::Stdout(bytes),
            Stream::Stderr => Event::Stderr(bytes),
        }
    }

    /// Which stream the bytes came from.
    pub fn stream(&self) -> Stream {
        match self {
            Event::Stdout(_) => Stream::Stdout,
            Event::Stderr(_) => Stream::Stderr,
        }
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Event::Stdout(b) | Event::Stderr(b) => b,
        }
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        match self {
            Event::Stdout(b) | Event::Stderr(b) => b,
        }
    }
}

/// Where output past the cap was dropped from a stream, and how much.
///
/// Past the cap (`max_output`), a stream keeps its first `max_output / 2` bytes and its last
/// `max_output - max_output / 2`: the start of a log says what ran, its end where it failed.
/// The bytes between were read (the command never waits on a full pipe) and dropped.
///
/// ```
/// # fn main() -> boxshell::Result<()> {
/// let mut sh = boxshell::Session::builder("-").runtime(boxshell::Runtime::Local).open()?;
/// let out = sh.cmd("seq 1 100000").max_output(20).run()?;
/// let gap = out.stdout_gap.expect("over the cap");
/// assert_eq!(&out.stdout[..gap.at], b"1\n2\n3\n4\n5\n"); // the first 10 bytes
/// assert_eq!(&out.stdout[gap.at..], b"99\n100000\n");     // the last 10
/// assert_eq!(gap.dropped, 588_895 - 20);
/// assert!(out.truncated);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Gap {
    /// The offset in the kept bytes where the dropped bytes were: the head is before it, the
    /// tail after it.
    pub at: usize,
    /// How many bytes were dropped there.
    pub dropped: u64,
}

/// The result of one command.
///
/// `stdout` and `stderr` hold exactly the bytes the command wrote (no newline added or
/// removed, binary data kept), up to the output cap; both are complete when the command
/// returns. Past the cap a stream keeps its start and its end, and says where the rest was
/// dropped ([`Gap`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// What the command wrote to stdout: all of it, or its start and end past the cap.
    pub stdout: Vec<u8>,
    /// What the command wrote to stderr: all of it, or its start and end past the cap.
    pub stderr: Vec<u8>,
    /// The exit status, as `$?` shows it: 0 to 255, 128 + N after signal N (130 after an
    /// interrupt or a timeout). If the shell itself exited during the command, its exit code.
    /// When the shell's end was never seen: [`Output::KILLED`] after a timeout or an abort,
    /// else [`Output::UNKNOWN`].
    pub exit_code: i32,
    /// The command ran past its timeout (or printed nothing for its idle timeout) and was
    /// aborted.
    pub timed_out: bool,
    /// Output of a stream went past the cap: see [`stdout_gap`](Output::stdout_gap) and
    /// [`stderr_gap`](Output::stderr_gap).
    pub truncated: bool,
    /// Where stdout went past the cap, and how many bytes were dropped.
    pub stdout_gap: Option<Gap>,
    /// Where stderr went past the cap, and how many bytes were dropped.
    pub stderr_gap: Option<Gap>,
    /// From sending the command to receiving the end of both streams.
    pub duration: Duration,
    pub(crate) command: String,
}

impl Output {
    /// The exit code of a command stopped by SIGKILL (128 + 9), also when the shell had to be
    /// killed with it and its own status was never seen.
    pub const KILLED: i32 = 137;

    /// The exit code of a command whose end was never seen and that nobody stopped: the shell
    /// went away during it without an exit code (its exec client was killed from outside).
    pub const UNKNOWN: i32 = -1;

    pub(crate) fn new(
        stdout: Vec<u8>,
        stderr: Vec<u8>,
        exit_code: i32,
        timed_out: bool,
        duration: Duration,
        command: String,
    ) -> Output {
        Output {
            stdout,
            stderr,
            exit_code,
            timed_out,
            truncated: false,
            stdout_gap: None,
            stderr_gap: None,
            duration,
            command,
        }
    }

    /// Stdout as text; invalid UTF-8 becomes U+FFFD.
    pub fn stdout_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.stdout)
    }

    /// Stderr as text; invalid UTF-8 becomes U+FFFD.
    pub fn stderr_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.stderr)
    }

    /// Exit code 0 and no timeout.
    pub fn success(&self) -> bool {
        self.exit_code == 0 && !self.timed_out
    }

    /// The command this is the output of.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// `Ok(self)` on [`success`](Output::success), otherwise [`Error::CommandFailed`] with the
    /// code and the end of stderr.
    ///
    /// ```
    /// # fn main() -> boxshell::Result<()> {
    /// let mut sh = boxshell::Session::builder("-").runtime(boxshell::Runtime::Local).open()?;
    /// let err = sh.exec("echo oops >&2; (exit 3)")?.check().unwrap_err();
    /// assert_eq!(err.to_string(), "command `echo oops >&2; (exit 3)` exited with code 3: oops");
    /// # Ok(()) }
    /// ```
    pub fn check(self) -> Result<Output> {
        if self.success() {
            return Ok(self);
        }
        const TAIL: usize = 2048;
        let text = self.stderr_str();
        let text = text.trim_end();
        let mut start = text.len().saturating_sub(TAIL);
        while !text.is_char_boundary(start) {
            start += 1;
        }
        Err(Error::CommandFailed {
            command: self.command.clone(),
            exit_code: self.exit_code,
            timed_out: self.timed_out,
            stderr: text[start..].to_string(),
        })
    }
}

/// What a container or a tmux pane printed, as `logs` returns it: stdout and stderr apart, and
/// every line in the order it was written. ANSI codes kept. A tmux pane's text is all stdout.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Logs {
    /// The container's stdout.
    pub stdout: Vec<u8>,
    /// The container's stderr.
    pub stderr: Vec<u8>,
    /// The lines of both, each with its stream and its newline, in the order they were
    /// written by the engine's timestamps (nanoseconds). Lines of the two streams stamped
    /// with the same instant cannot be ordered between them: each stream keeps its own order
    /// and stdout comes first. A container with a terminal (`tty`) has one stream, stdout.
    pub lines: Vec<(Stream, Vec<u8>)>,
}

impl Logs {
    /// Logs from lines in the order written.
    pub(crate) fn from_lines(lines: Vec<(Stream, Vec<u8>)>) -> Logs {
        let mut logs = Logs::default();
        for (stream, line) in &lines {
            match stream {
                Stream::Stdout => logs.stdout.extend_from_slice(line),
                Stream::Stderr => logs.stderr.extend_from_slice(line),
            }
        }
        logs.lines = lines;
        logs
    }
}
