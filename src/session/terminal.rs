//! Commands on a terminal ([`Cmd::terminal`](super::Cmd::terminal)).
//!
//! The terminal is a PTY made by the runtime: a second exec, `exec -i -t` (for the local
//! runtime, `setsid -c` on a PTY of this process's), runs a small script, the terminal's
//! holder. The runtime makes it the PTY's session leader, with the PTY as its controlling
//! terminal and its process group in the foreground. The holder says `ready PID`, and the
//! command then runs in the session's shell as any other (its cwd, variables, functions,
//! aliases, and what it changes stays), with `/proc/PID/fd/0`, the PTY, as its stdin, stdout
//! and stderr; the frame holds a FIFO open while it runs and writes `end` to it after (a
//! subshell the command left running may hold the FIFO on): the holder ends at that line, or
//! when the FIFO closes.
//! The PTY stays the holder's controlling terminal: no shell built-in can hand it on, and the
//! command's own session is the shell's.
//!
//! What the terminal's line discipline does for its foreground process group reaches the
//! holder, which passes it on: Ctrl-C (SIGINT) comes to this process as a mark in the PTY's
//! output, and is relayed as [`Running::interrupt`](super::Running::interrupt) is, without
//! the kill after the grace; SIGWINCH, after a resize, goes to the command's processes through
//! `reap.sh` run by the holder, which then marks that it did. Marks are OSC sequences holding a
//! random nonce (which nothing the command prints can guess) and are taken out of the output;
//! the last one, `end`, follows every byte the command wrote to the terminal.
//!
//! On the host, the runtime client's stdin, stdout and stderr are the PTY's other side: raw,
//! so that every byte passes as typed (the client puts its own terminal in raw mode too). A
//! resize sets the PTY's size and sends SIGWINCH to the client, which passes the new size on.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use rustix::fs::{Mode, OFlags};
use rustix::process::{Pid, Signal as UnixSignal};
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{self, OptionalActions, Winsize};

use super::Session;
use super::input::Feeder;
use super::readers::Router;
use super::watch::Watch;
use crate::engine::ExecSpec;
use crate::error::{Error, Result};
use crate::proc;
use crate::reap::{Procs, Reap, Signal};
use crate::runtime::Runtime;

/// The holder's script: `DIR FIFO MARK NONCE SHELL REAP ROWS COLS SANE REAP_ARGS...` (see the
/// module docs). It waits (up to 2 s, where `stty` is there) until the runtime has given the
/// PTY its size, so that the command starts with it; with SANE `1`, it then gives the PTY a fresh
/// terminal's modes (`ssh -t` copies the client's, raw, to the remote PTY; docker,
/// podman, kubectl and the local runtime make a fresh one).
const HOLDER: &str = r#"dir=$1 fifo=$2 mark=$3 nonce=$4 sh=$5 reap=$6 want="$7 $8" sane=$9
shift 9
umask 077 && { [ -d "$dir" ] || mkdir -m 700 -- "$dir"; } && mkfifo -- "$fifo" && export "$mark" || exit
say() { printf '\033]boxshell;%s;%s\007' "$nonce" "$1"; }
trap '' INT QUIT TSTP
n=0
while [ $n -lt 100 ] && command -v stty >/dev/null 2>&1 && [ "$(stty size 2>/dev/null)" != "$want" ]; do
    sleep 0.02 2>/dev/null
    n=$((n + 1))
done
[ "$sane" != 1 ] || ! command -v stty >/dev/null 2>&1 || stty sane 2>/dev/null
[ -e /proc/$$/fd/0 ] || { echo "no /proc/$$/fd/0: a terminal needs /proc"; exit 1; }
trap 'say int' INT
trap '"$sh" -c "$reap" reap "$@" >/dev/null 2>&1; say winch' WINCH
say "ready $$"
head -n 1 -- "$fifo" >/dev/null &
c=$!
while :; do wait $c && break; kill -0 $c 2>/dev/null || break; done
rm -f -- "$fifo"
say end"#;

/// Longest a resize waits for the holder to say the command has the new size.
const RESIZE_WAIT: Duration = Duration::from_secs(10);

/// The host side of a terminal command's PTY.
pub(crate) struct Pty {
    master: File,
    /// The runtime client, told of a resize by SIGWINCH; `None` for the local runtime, whose
    /// PTY is the command's terminal itself (the kernel tells its holder).
    client: Option<Pid>,
    size: (u16, u16),
    /// One message per SIGWINCH the holder passed on.
    resized: Receiver<()>,
    /// Set when the holder has said `end`: every byte of the command's output has been read.
    ended: Arc<AtomicBool>,
}

impl Pty {
    /// Gives the terminal `cols` columns and `rows` rows; `false` if that is its size already.
    pub(crate) fn resize(&mut self, cols: u16, rows: u16) -> io::Result<bool> {
        if self.size == (cols, rows) {
            return Ok(false);
        }
        while self.resized.try_recv().is_ok() {}
        termios::tcsetwinsize(&self.master, winsize(cols, rows))?;
        self.size = (cols, rows);
        if let Some(client) = self.client {
            rustix::process::kill_process(client, UnixSignal::WINCH)?;
        }
        Ok(true)
    }

    /// Whether the holder has passed a resize on, waiting up to `wait`.
    pub(crate) fn resized(&self, wait: Duration) -> bool {
        self.resized.recv_timeout(wait).is_ok()
    }

    /// Whether the holder has said the command is over. What still holds the PTY then (and
    /// keeps the runtime's client and the reader going) is a background job the command left
    /// on it, which the command's end does not wait for.
    pub(crate) fn said_end(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// Longest [`Running::resize`](super::Running::resize) waits for [`resized`](Pty::resized).
    pub(crate) fn resize_wait() -> Duration {
        RESIZE_WAIT
    }
}

fn winsize(cols: u16, rows: u16) -> Winsize {
    Winsize { ws_col: cols, ws_row: rows, ws_xpixel: 0, ws_ypixel: 0 }
}

/// A new PTY of `cols` by `rows`: its master, and its slave (raw if `raw`).
fn open_pty(cols: u16, rows: u16, raw: bool) -> io::Result<(File, OwnedFd)> {
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let name = ptsname(&master, Vec::new())?;
    let slave = rustix::fs::open(name.as_c_str(), OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC, Mode::empty())?;
    termios::tcsetwinsize(&master, winsize(cols, rows))?;
    if raw {
        let mut modes = termios::tcgetattr(&slave)?;
        modes.make_raw();
        termios::tcsetattr(&slave, OptionalActions::Now, &modes)?;
    }
    Ok((File::from(master), slave))
}

impl Session {
    /// Starts the terminal of command `seq`, `cols` by `rows`, and waits until its holder is
    /// ready: the command can be sent, with [`Feeder::input`] as its terminal.
    pub(super) fn terminal(&mut self, cols: u16, rows: u16, seq: u64) -> Result<Feeder> {
        no_zero_size(cols, rows)?;
        let local = matches!(self.engine.runtime(), Runtime::Local);
        if let Runtime::Custom(c) = self.engine.runtime()
            && c.get_terminal_args().is_none()
        {
            let what = "a terminal without `Custom::terminal` (the CLI's form with a TTY)";
            return Err(Error::Unsupported { via: self.engine.via(), what });
        }
        let io_error = |e: io::Error| Error::io(format!("{}: making a terminal", self.target), e);
        let (master, slave) = open_pty(cols, rows, !local).map_err(io_error)?;
        let dir = self.scratch.dir().to_string();
        let fifo = format!("{dir}/tty-{seq}");
        let mark = format!("BOXSHELL_FEED={}", uuid::Uuid::new_v4().simple());
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let reap = Reap {
            procs: Procs::Command(&[]),
            signal: Signal::Winch,
            shell: self.signaller.pid,
            instance: self.signaller.instance,
            watermark: self.signaller.watermark(),
            remove: None,
        };
        let (rows_arg, cols_arg) = (rows.to_string(), cols.to_string());
        let mut argv: Vec<&str> = if local { vec!["setsid", "-c"] } else { Vec::new() };
        argv.extend([&self.shell.program, "-c", HOLDER, "boxshell-tty", &dir, &fifo, &mark, &nonce]);
        // A custom CLI may copy the host PTY's raw modes to the one it makes, as ssh does.
        let sane = if matches!(self.engine.runtime(), Runtime::Custom(_)) { "1" } else { "0" };
        argv.extend([self.shell.program.as_str(), crate::reap::script(), &rows_arg, &cols_arg, sane]);
        let reap_args = reap.args();
        argv.extend(reap_args.iter().map(String::as_str));
        let argv: Vec<&std::ffi::OsStr> = argv.iter().map(std::ffi::OsStr::new).collect();
        let user = self.signaller.user.as_deref();
        let spec = ExecSpec { target: &self.target, interactive: true, tty: true, user, extra: &[] };
        let mut cmd = self.engine.exec(&spec, &argv);
        let stdio = || slave.try_clone().map(Stdio::from);
        cmd.stdin(stdio().map_err(io_error)?).stdout(stdio().map_err(io_error)?).stderr(stdio().map_err(io_error)?);
        let mut child = cmd.spawn().map_err(|e| self.engine.spawn_error(cmd.get_program(), e))?;
        // Only the client holds the PTY's slave now: the master reads EIO once it has exited.
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        drop(slave);
        let client = if local { None } else { Pid::from_raw(child.id().cast_signed()) };
        let clone = |master: &File| master.try_clone().map_err(io_error);
        let (reader, writer) = match (clone(&master), clone(&master)) {
            (Ok(r), Ok(w)) => (r, w),
            (Err(e), _) | (_, Err(e)) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        let (said_tx, said) = crossbeam_channel::bounded(1);
        let (resized_tx, resized) = crossbeam_channel::unbounded();
        let ended = Arc::new(AtomicBool::new(false));
        let holder = Holder {
            seq,
            marks: Marks::new(&nonce),
            router: Arc::clone(&self.router),
            watch: Arc::clone(&self.watch),
            resized: resized_tx,
            ended: Arc::clone(&ended),
        };
        let reader = proc::spawn_thread("boxshell-tty-out".into(), move || holder.pump(reader, &said_tx));
        let (mut feeder, failed) = Feeder::new(child, reader, writer, mark, fifo, Arc::clone(&self.signaller));
        feeder.terminal = Some(Pty { master, client, size: (cols, rows), resized, ended });
        if let Some(e) = failed {
            return Err(io_error(e));
        }
        self.when_ready(feeder, &said, "terminal", &cmd, |message| format!("starting a terminal: {message}"))
    }
}

/// `command` run with the terminal of holder `pid` as its stdin, stdout and stderr.
pub(super) fn on_terminal(command: &str, pid: u32) -> String {
    let mut text = String::from("\\command eval ");
    crate::text::quote_into(&mut text, command);
    text.push_str(&format!(" 0<>/proc/{pid}/fd/0 1>&0 2>&0"));
    text
}

/// What the PTY's reader thread needs.
struct Holder {
    seq: u64,
    marks: Marks,
    router: Arc<Router>,
    watch: Arc<Watch>,
    resized: Sender<()>,
    ended: Arc<AtomicBool>,
}

impl Holder {
    /// Reads the PTY: first the holder's `ready PID` mark (its PID sent on `said`, or, if the
    /// PTY closes first, what was printed instead), then the command's output, until the PTY
    /// closes. What comes before the mark (a remote login's banner) is not the command's.
    fn pump(mut self, mut master: File, said: &Sender<std::result::Result<Option<u32>, String>>) {
        let mut seen = Vec::new();
        let mut buf = vec![0u8; 64 << 10];
        let rest = loop {
            let n = match master.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = said.send(Err(proc::said(&seen)));
                    return;
                }
                Ok(n) => n,
            };
            seen.extend_from_slice(&buf[..n]);
            if let Some((before, pid, after)) = self.marks.ready(&seen) {
                if before > 0 {
                    log::debug!("before a terminal's holder was ready: {}", proc::said(&seen[..before]));
                }
                let _ = said.send(Ok(Some(pid)));
                break seen.split_off(after);
            }
        };
        self.take(rest);
        loop {
            match master.read(&mut buf) {
                // EIO once the client has closed its side.
                Ok(0) | Err(_) => break,
                Ok(n) => self.take(buf[..n].to_vec()),
            }
        }
        let held = std::mem::take(&mut self.marks.held);
        if !held.is_empty() {
            self.router.terminal_output(self.seq, held);
        }
        self.router.terminal_end(self.seq);
    }

    /// Passes on the output in `chunk`, and acts on the marks in it.
    fn take(&mut self, chunk: Vec<u8>) {
        for piece in self.marks.feed(chunk) {
            match piece {
                Piece::Output(bytes) => self.router.terminal_output(self.seq, bytes),
                Piece::Mark(Said::Interrupt) => {
                    let (watch, seq) = (Arc::clone(&self.watch), self.seq);
                    if let Err(e) = proc::spawn_thread("boxshell-tty-int".into(), move || watch.keyed(seq)) {
                        log::warn!("relaying Ctrl-C typed on a terminal: {e}");
                    }
                }
                Piece::Mark(Said::Resized) => {
                    let _ = self.resized.send(());
                }
                Piece::Mark(Said::End) => {
                    self.ended.store(true, Ordering::Release);
                    self.router.terminal_end(self.seq);
                }
            }
        }
    }
}

/// What the holder marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Said {
    /// Ctrl-C was typed (the line discipline sent SIGINT).
    Interrupt,
    /// The command's processes got SIGWINCH for a new size.
    Resized,
    /// The command is over: nothing more comes.
    End,
}

/// A piece of the PTY's output.
#[derive(Debug, PartialEq, Eq)]
enum Piece {
    Output(Vec<u8>),
    Mark(Said),
}

/// Finds the holder's marks (`ESC ] boxshell;NONCE;WORD BEL`) in the PTY's output, wherever
/// reads cut it; bytes that may be the start of one are held back until the next read.
struct Marks {
    prefix: Vec<u8>,
    held: Vec<u8>,
}

/// Longest word in a mark.
const MAX_WORD: usize = 8;

impl Marks {
    fn new(nonce: &str) -> Marks {
        Marks { prefix: format!("\x1b]boxshell;{nonce};").into_bytes(), held: Vec::new() }
    }

    /// Where the holder's `ready PID` mark is in `seen`, if it is there whole: the offset it
    /// starts at, the PID, and the offset just past it.
    fn ready(&self, seen: &[u8]) -> Option<(usize, u32, usize)> {
        let mut at = 0;
        while let Some(i) = seen[at..].windows(self.prefix.len()).position(|w| w == self.prefix.as_slice()) {
            let start = at + i;
            let word = &seen[start + self.prefix.len()..];
            if let Some(end) = word.iter().position(|&b| b == 0x07)
                && let Some(pid) = word[..end].strip_prefix(b"ready ")
                && let Some(pid) = std::str::from_utf8(pid).ok().and_then(|p| p.parse().ok())
            {
                return Some((start, pid, start + self.prefix.len() + end + 1));
            }
            at = start + 1;
        }
        None
    }

    fn feed(&mut self, chunk: Vec<u8>) -> Vec<Piece> {
        let mut buf = std::mem::take(&mut self.held);
        buf.extend_from_slice(&chunk);
        let mut pieces = Vec::new();
        let mut out = Vec::new();
        let mut at = 0;
        let len = self.prefix.len();
        loop {
            let Some(found) = buf[at..].windows(len).position(|w| w == self.prefix.as_slice()).map(|i| at + i) else {
                // Hold back the longest end of the buffer that may start a mark.
                let tail =
                    (1..len.min(buf.len() - at + 1)).rev().find(|&k| buf.ends_with(&self.prefix[..k])).unwrap_or(0);
                out.extend_from_slice(&buf[at..buf.len() - tail]);
                self.held = buf[buf.len() - tail..].to_vec();
                break;
            };
            out.extend_from_slice(&buf[at..found]);
            let word_at = found + len;
            let word = buf[word_at..].iter().take(MAX_WORD + 1).position(|&b| b == 0x07);
            let said = word.and_then(|end| match &buf[word_at..word_at + end] {
                b"int" => Some((Said::Interrupt, end)),
                b"winch" => Some((Said::Resized, end)),
                b"end" => Some((Said::End, end)),
                _ => None,
            });
            match said {
                Some((said, end)) => {
                    if !out.is_empty() {
                        pieces.push(Piece::Output(std::mem::take(&mut out)));
                    }
                    pieces.push(Piece::Mark(said));
                    at = word_at + end + 1;
                }
                None if word.is_none() && buf.len() - word_at <= MAX_WORD => {
                    self.held = buf[found..].to_vec();
                    break;
                }
                None => {
                    // Not a mark after all: output.
                    out.extend_from_slice(&self.prefix);
                    at = word_at;
                }
            }
        }
        if !out.is_empty() {
            pieces.push(Piece::Output(out));
        }
        pieces
    }
}

/// A terminal of no columns or no rows is refused: `stty` and the programs on it fail, and a
/// runtime's client never reports that size, so waiting for it would time out.
pub(super) fn no_zero_size(cols: u16, rows: u16) -> Result<()> {
    match cols == 0 || rows == 0 {
        true => Err(Error::InvalidValue { what: "terminal size", reason: "columns and rows must be at least 1" }),
        false => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_found_and_taken_out_wherever_reads_cut() {
        let nonce = "0123456789abcdef0123456789abcdef";
        let mark = |word: &str| format!("\x1b]boxshell;{nonce};{word}\x07").into_bytes();
        let mut stream = b"\x1b]boxshell;feed;int\x07ab\x1b[1m".to_vec();
        stream.extend(mark("int"));
        stream.extend_from_slice(b"\x1b]boxshell;");
        stream.extend(mark("winch"));
        stream.extend(format!("\x1b]boxshell;{nonce};other\x07").into_bytes());
        stream.extend(mark("end"));
        stream.extend_from_slice(b"\x1b]box");
        let want_out = {
            let mut v = b"\x1b]boxshell;feed;int\x07ab\x1b[1m\x1b]boxshell;".to_vec();
            v.extend(format!("\x1b]boxshell;{nonce};other\x07").into_bytes());
            v.extend_from_slice(b"\x1b]box");
            v
        };
        for size in 1..stream.len() {
            let mut marks = Marks::new(nonce);
            let (mut out, mut said) = (Vec::new(), Vec::new());
            for piece in stream.chunks(size) {
                for p in marks.feed(piece.to_vec()) {
                    match p {
                        Piece::Output(b) => out.extend(b),
                        Piece::Mark(s) => said.push(s),
                    }
                }
            }
            out.extend(std::mem::take(&mut marks.held));
            assert_eq!(out, want_out, "pieces of {size}");
            assert_eq!(said, [Said::Interrupt, Said::Resized, Said::End], "pieces of {size}");
        }
    }

    #[test]
    fn the_ready_mark_is_found_after_a_banner_and_only_whole() {
        let nonce = "0123456789abcdef0123456789abcdef";
        let marks = Marks::new(nonce);
        let ready = format!("\x1b]boxshell;{nonce};ready 4242\x07").into_bytes();
        let mut seen = b"Welcome\r\nready 1\r\n\x1b]boxshell;other;ready 7\x07".to_vec();
        seen.extend(format!("\x1b]boxshell;{nonce};winch\x07").into_bytes());
        let start = seen.len();
        seen.extend(&ready);
        seen.extend_from_slice(b"out");
        assert_eq!(marks.ready(&seen), Some((start, 4242, start + ready.len())));
        for cut in 0..start + ready.len() {
            assert_eq!(marks.ready(&seen[..cut]), None, "cut at {cut}");
        }
        let bad = format!("\x1b]boxshell;{nonce};ready x\x07").into_bytes();
        assert_eq!(marks.ready(&bad), None);
    }

    #[test]
    fn a_command_runs_on_the_holders_terminal() {
        assert_eq!(on_terminal("vi 'a b'", 42), "\\command eval 'vi '\\''a b'\\''' 0<>/proc/42/fd/0 1>&0 2>&0");
    }
}
