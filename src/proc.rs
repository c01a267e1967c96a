//! Running host programs: one-shot calls with a deadline, the reader threads sessions use,
//! and [`Stop`], how the programs that manage containers and tmux sessions are asked to stop
//! them.
//!
//! Pipes are read on small threads (a reader needs a 64 KiB heap buffer, not a big stack)
//! that hand what they read to a crossbeam channel, so the calling thread can wait on all of
//! a child's output with a deadline and never deadlocks on a full pipe.

use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::error::{Error, Result, Via};

/// How a helper exec (a command's stdin feeder, a background process's outlet) says it runs,
/// past whatever a remote login prints first (a banner, an rc file's complaints): a line
/// `ready NONCE` or `ready NONCE PID` on stdout and, where its stderr matters, `NONCE` alone on
/// stderr; the nonce is random per exec, so nothing else prints it.
#[derive(Clone)]
pub(crate) struct Hello {
    nonce: String,
}

impl Hello {
    pub(crate) fn new() -> Hello {
        Hello { nonce: uuid::Uuid::new_v4().simple().to_string() }
    }

    pub(crate) fn nonce(&self) -> &str {
        &self.nonce
    }

    /// The ready line in what stdout brought, once it is there whole: the PID it gave, if any,
    /// and where the bytes after it start.
    pub(crate) fn ready(&self, seen: &[u8]) -> Option<(Option<u32>, usize)> {
        let head = format!("ready {}", self.nonce);
        lines(seen).find_map(|(line, end)| match line.strip_prefix(head.as_bytes())? {
            b"" => Some((None, end)),
            [b' ', pid @ ..] => Some((Some(std::str::from_utf8(pid).ok()?.parse().ok()?), end)),
            _ => None,
        })
    }

    /// Where the bytes after the nonce line in what stderr brought start, once it is there.
    pub(crate) fn past_stderr(&self, seen: &[u8]) -> Option<usize> {
        lines(seen).find_map(|(line, end)| (line == self.nonce.as_bytes()).then_some(end))
    }
}

/// Reads `pipe` until `find` finds what it looks for in what came (and where the bytes after
/// it start): then that, and those bytes; else, at the pipe's end, everything that came.
pub(crate) fn read_until<T>(
    pipe: &mut impl Read,
    find: impl Fn(&[u8]) -> Option<(T, usize)>,
) -> std::result::Result<(T, Vec<u8>), Vec<u8>> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) | Err(_) => return Err(seen),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
        if let Some((found, end)) = find(&seen) {
            return Ok((found, seen.split_off(end)));
        }
    }
}

/// The whole lines of `bytes` (without `\r\n` or `\n`), each with the offset past it.
fn lines(bytes: &[u8]) -> impl Iterator<Item = (&[u8], usize)> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let end = at + bytes[at..].iter().position(|&b| b == b'\n')?;
        let line = &bytes[at..end];
        at = end + 1;
        Some((line.strip_suffix(b"\r").unwrap_or(line), at))
    })
}

/// How to stop a container or a tmux session (what their CLIs are asked to do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM (C-c for tmux), then SIGKILL (kill-session) once the timeout has passed.
    Graceful(Duration),
    /// SIGKILL at once.
    Kill,
}

impl Default for Stop {
    /// Graceful, with 10 seconds (the engines' own default).
    fn default() -> Stop {
        Stop::Graceful(Duration::from_secs(10))
    }
}

/// Stack size of reader threads.
const READER_STACK: usize = 64 * 1024;

/// Size of one read from a pipe.
pub(crate) const CHUNK: usize = 64 * 1024;

/// Starts a named thread with a small stack.
pub(crate) fn spawn_thread<F>(name: String, f: F) -> io::Result<JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    thread::Builder::new().name(name).stack_size(READER_STACK).spawn(f)
}

/// Calls `sink` with every chunk read from `pipe` until EOF or an error.
pub(crate) fn pump(mut pipe: impl Read, mut sink: impl FnMut(&[u8])) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => sink(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// A command for `argv` on the host, started with SIGINT and SIGQUIT at their defaults.
///
/// A program started in the background by a script (`tool &`) ignores both, and its children
/// inherit that: a shell that finds SIGINT ignored when it starts can neither abandon a command
/// on it nor pass it to the command's children, so an interrupt could only kill. When this
/// process ignores either, `argv` runs through a program that resets them (`env
/// --default-signal`, else `perl`), as this crate has no unsafe code to do it itself; with
/// neither, it runs as it is, with a warning.
pub(crate) fn host_command(argv: &[&OsStr]) -> Command {
    // A program that is not there is started as it is, so that starting it fails as it
    // would without the reset (and the error names it), not the resetting program.
    let reset = if ignores_interrupts() && which::which(argv[0]).is_ok() { interrupt_reset() } else { &[] };
    let (program, args) = match reset.split_first() {
        Some((program, args)) => {
            (OsStr::new(program), args.iter().map(OsStr::new).chain(argv.iter().copied()).collect())
        }
        None => (argv[0], argv[1..].to_vec()),
    };
    let mut cmd = Command::new(program);
    cmd.args(args);
    cmd
}

/// Whether this process ignores SIGINT or SIGQUIT (from `/proc`; `false` where it is missing).
fn ignores_interrupts() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return false };
    let ignored = status.lines().find_map(|line| line.strip_prefix("SigIgn:"));
    // A mask in hex with bit N-1 for signal N: SIGINT is 2, SIGQUIT 3.
    ignored.and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok()).is_some_and(|mask| mask & 0b110 != 0)
}

/// Argv prefixes that start a program with SIGINT and SIGQUIT at their defaults: GNU env
/// (coreutils 8.31 and later), perl (everywhere else, nearly).
const RESET_ENV: &[&str] = &["env", "--default-signal=INT,QUIT"];
const RESET_PERL: &[&str] =
    &["perl", "-e", "$SIG{INT} = $SIG{QUIT} = 'DEFAULT'; exec {$ARGV[0]} @ARGV or die \"$ARGV[0]: $!\\n\""];

/// The first of [`RESET_ENV`] and [`RESET_PERL`] that works here, found once.
fn interrupt_reset() -> &'static [&'static str] {
    static RESET: std::sync::OnceLock<&'static [&'static str]> = std::sync::OnceLock::new();
    RESET.get_or_init(|| {
        for reset in [RESET_ENV, RESET_PERL] {
            let probe = Command::new(reset[0]).args(&reset[1..]).arg("true").stdin(Stdio::null()).output();
            if probe.is_ok_and(|out| out.status.success()) {
                return reset;
            }
        }
        log::warn!(
            "this process ignores SIGINT (started in the background by a script?) and neither \
             `env --default-signal` nor perl is here to reset it: local shells will ignore it too, \
             so an interrupt kills what a command runs instead of aborting it"
        );
        &[]
    })
}

/// What a finished one-shot call printed.
#[derive(Debug)]
pub(crate) struct Captured {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Captured {
    /// Trimmed, lossy stderr, or stdout when stderr is empty: the CLI's own words for an error.
    pub(crate) fn message(&self) -> String {
        let text = if self.stderr.iter().all(u8::is_ascii_whitespace) { &self.stdout } else { &self.stderr };
        said(text)
    }
}

/// What a program printed, fit for an error message: lossy UTF-8, trimmed, control characters
/// escaped (a CLI that prints binary garbage must not garble the message), at most 2000 chars.
pub(crate) fn said(bytes: &[u8]) -> String {
    const MAX: usize = 2000;
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    for (i, c) in text.trim().chars().enumerate() {
        if i == MAX {
            out.push('…');
            break;
        }
        match c {
            '\n' | '\t' => out.push(c),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

/// How a one-shot call ended badly.
#[derive(Debug)]
pub(crate) enum RunError {
    /// The program could not be started.
    Spawn(io::Error),
    /// The deadline passed; the child was killed. Holds what it printed so far.
    TimedOut { stdout: Vec<u8>, stderr: Vec<u8> },
}

/// What a one-shot call does and to what (a container or session name), for its errors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Op<'a>(pub &'static str, pub &'a str);

/// The program behind one-shot calls, for their errors.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub via: Via,
}

impl Caller {
    /// Runs `cmd` with no input and a deadline, as `op`: a program that cannot be started is
    /// [`Error::RuntimeNotFound`] with the hint, a deadline passed is [`Error::Failed`] with
    /// what it printed so far. A non-zero exit is not an error here: callers read
    /// [`Captured::status`].
    pub(crate) fn call(&self, op: Op<'_>, cmd: &mut Command, timeout: Duration) -> Result<Captured> {
        match run(cmd, timeout) {
            Ok(out) => Ok(out),
            Err(RunError::Spawn(e)) => Err(self.spawn_error(cmd.get_program(), e)),
            Err(RunError::TimedOut { stderr, .. }) => {
                let said = said(&stderr);
                let said = if said.is_empty() { said } else { format!(": {said}") };
                Err(self.failed(op, cmd, format!("no answer within {timeout:?}{said}")))
            }
        }
    }

    /// [`Error::Failed`] for `op` run as `cmd`.
    pub(crate) fn failed(&self, op: Op<'_>, cmd: &Command, message: String) -> Error {
        Error::Failed {
            via: self.via.clone(),
            operation: op.0,
            name: op.1.to_string(),
            command: describe(cmd),
            message,
        }
    }

    /// The error for a program that could not be started.
    pub(crate) fn spawn_error(&self, program: &OsStr, e: io::Error) -> Error {
        Error::spawn(self.via.clone(), program, e)
    }
}

/// Runs `cmd` to completion with no input, capturing both outputs. Kills it if it has not
/// finished within `timeout`.
pub(crate) fn run(cmd: &mut Command, timeout: Duration) -> Result<Captured, RunError> {
    run_until_answered(cmd, timeout, |_| false)
}

/// How long a program that has given its answer gets to exit before it is killed.
const AFTER_ANSWER: Duration = Duration::from_millis(100);

/// As [`run`], but done once `answered` says what `cmd` printed on stdout holds its whole
/// answer: a client that is slow to exit after its program has (a `podman exec` on a loaded
/// machine now and then takes five seconds more) is then killed, not waited for. Its status
/// is then success.
pub(crate) fn run_until_answered(
    cmd: &mut Command,
    timeout: Duration,
    answered: impl Fn(&[u8]) -> bool,
) -> Result<Captured, RunError> {
    let deadline = Instant::now() + timeout;
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let mut child = cmd.spawn().map_err(RunError::Spawn)?;
    let (tx, rx) = crossbeam_channel::unbounded();
    let readers = start_capture(&mut child, &tx);
    drop(tx);
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let end = collect(&rx, deadline, &mut stdout, &mut stderr, &answered);
    if end == Collected::TimedOut {
        let _ = child.kill();
        let _ = child.wait();
        return Err(RunError::TimedOut { stdout, stderr });
    }
    let deadline = if end == Collected::Answered { Instant::now() + AFTER_ANSWER } else { deadline };
    let status = wait_until(&mut child, deadline).unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        ExitStatus::default()
    });
    drop(readers);
    Ok(Captured { status, stdout, stderr })
}

/// Starts one reader per captured pipe; each sends `(is_stderr, bytes)` and finally `None`.
fn start_capture(child: &mut Child, tx: &Sender<Option<(bool, Vec<u8>)>>) -> Vec<JoinHandle<()>> {
    let mut handles = Vec::new();
    let pipes: [(bool, Option<Box<dyn Read + Send>>); 2] = [
        (false, child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>)),
        (true, child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>)),
    ];
    for (is_err, pipe) in pipes {
        let Some(pipe) = pipe else { continue };
        let tx = tx.clone();
        if let Ok(h) = spawn_thread("boxshell-capture".into(), move || {
            let _ = pump(pipe, |b| {
                let _ = tx.send(Some((is_err, b.to_vec())));
            });
            let _ = tx.send(None);
        }) {
            handles.push(h);
        }
    }
    handles
}

/// How [`collect`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Collected {
    /// Both pipes closed.
    Closed,
    /// Stdout holds the answer.
    Answered,
    TimedOut,
}

/// Gathers output until both pipes close, stdout holds the answer, or the deadline passes.
fn collect(
    rx: &Receiver<Option<(bool, Vec<u8>)>>,
    deadline: Instant,
    stdout: &mut Vec<u8>,
    stderr: &mut Vec<u8>,
    answered: &dyn Fn(&[u8]) -> bool,
) -> Collected {
    loop {
        match rx.recv_deadline(deadline) {
            Ok(Some((false, b))) => {
                stdout.extend_from_slice(&b);
                if answered(stdout) {
                    return Collected::Answered;
                }
            }
            Ok(Some((true, b))) => stderr.extend_from_slice(&b),
            Ok(None) => {}
            Err(RecvTimeoutError::Disconnected) => return Collected::Closed,
            Err(RecvTimeoutError::Timeout) => return Collected::TimedOut,
        }
    }
}

/// Waits for `child` to exit until `deadline`, polling with a growing interval.
pub(crate) fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    let mut status = None;
    poll_until(deadline, QUICK_POLL, || match child.try_wait() {
        Ok(Some(done)) => {
            status = Some(done);
            true
        }
        Ok(None) => false,
        Err(_) => true,
    });
    status
}

/// The first pause of [`poll_until`] for a check that costs next to nothing (`try_wait`):
/// what is about to happen is seen at once.
pub(crate) const QUICK_POLL: Duration = Duration::from_micros(200);

/// Asks `done` until it says yes (then `true`) or `deadline` passes (`false`), pausing
/// between asks from `first`, doubling up to 20 ms.
pub(crate) fn poll_until(deadline: Instant, first: Duration, mut done: impl FnMut() -> bool) -> bool {
    let mut pause = first;
    loop {
        if done() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// The command line of `cmd`, for messages: program and arguments, each quoted when needed.
/// The value of an environment variable given as `-e KEY=VALUE` is left out: messages end up
/// in logs.
pub(crate) fn describe(cmd: &Command) -> String {
    let mut words = vec![word(cmd.get_program())];
    let mut after_e = false;
    for arg in cmd.get_args() {
        let text = arg.to_string_lossy();
        match text.split_once('=') {
            Some((key, _)) if after_e => words.push(word(OsStr::new(&format!("{key}=…")))),
            _ => words.push(word(arg)),
        }
        after_e = text == "-e";
    }
    words.join(" ")
}

fn word(w: &OsStr) -> String {
    const LONG: usize = 120;
    let s = w.to_string_lossy();
    if s.len() > LONG {
        // A script passed as an argument: its first line says what it is.
        let first = s.lines().next().unwrap_or_default();
        let first: String = first.chars().take(60).collect();
        return crate::text::quote(&format!("{first}… ({} bytes)", s.len()));
    }
    let plain = !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:@,+%".contains(&b));
    if plain { s.into_owned() } else { crate::text::quote(&s) }
}

/// The exit code of `status`, or 128 + the signal that ended it, as a shell reports it.
pub(crate) fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_helpers_hello_is_found_past_a_logins_noise() {
        let hello = Hello::new();
        let n = hello.nonce().to_string();
        let out = format!("Welcome\nready other 7\nready {n}x\nready {n} 42\r\nafter");
        let at = out.find("after").unwrap();
        assert_eq!(hello.ready(out.as_bytes()), Some((Some(42), at)));
        assert_eq!(hello.ready(format!("ready {n}\n").as_bytes()), Some((None, 7 + n.len())));
        for cut in 0..at {
            assert_eq!(hello.ready(&out.as_bytes()[..cut]), None, "cut at {cut}");
        }
        assert_eq!(hello.ready(format!("ready {n} x\n").as_bytes()), None);
        let err = format!("pyenv: cannot rehash\n{n}\nerr 3\n");
        assert_eq!(hello.past_stderr(err.as_bytes()), Some(err.find("err 3").unwrap()));
        assert_eq!(hello.past_stderr(n.as_bytes()), None);
    }

    /// Each reset, started from a background job of a script (which ignores SIGINT and
    /// SIGQUIT), gives its program both at their defaults.
    #[test]
    fn resets_give_default_interrupts() {
        let ignored = |prefix: &[&str]| {
            let out = Command::new("sh")
                .args(["-c", "\"$@\" & wait $!", "sh"])
                .args(prefix)
                .args(["sh", "-c", "grep SigIgn: /proc/self/status"])
                .output()
                .unwrap();
            assert!(out.status.success(), "{prefix:?}: {out:?}");
            let mask = String::from_utf8(out.stdout).unwrap();
            u64::from_str_radix(mask.trim_start_matches("SigIgn:").trim(), 16).unwrap() & 0b110
        };
        assert_eq!(ignored(&[]), 0b110, "a background job ignores both");
        assert_eq!(ignored(RESET_ENV), 0);
        assert_eq!(ignored(RESET_PERL), 0);
    }

    #[test]
    fn captures_both_streams_and_gives_eof() {
        let out = run(
            Command::new("sh").args(["-c", "printf 'in\\0put'; cat; printf err >&2; exit 3"]),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(out.stdout, b"in\0put");
        assert_eq!(out.stderr, b"err");
        assert_eq!(exit_code(out.status), 3);
        assert_eq!(out.message(), "err");
    }

    #[test]
    fn kills_at_the_deadline() {
        let start = Instant::now();
        let err = run(Command::new("sh").args(["-c", "echo started >&2; exec sleep 30"]), Duration::from_millis(300))
            .unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(5));
        match err {
            RunError::TimedOut { stderr, .. } => assert_eq!(stderr, b"started\n"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_answer_is_not_held_up_by_a_slow_exit() {
        let start = Instant::now();
        let script = "printf 'signalled 1'; sleep 0.2; echo ' 2'; echo said >&2; exec sleep 30";
        let out = run_until_answered(Command::new("sh").args(["-c", script]), Duration::from_secs(20), |out| {
            out.ends_with(b"\n")
        })
        .unwrap();
        assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
        assert_eq!(out.stdout, b"signalled 1 2\n");
        assert!(out.status.success());
        // An exit without the answer is the exit's.
        let out =
            run_until_answered(Command::new("sh").args(["-c", "echo part; exit 3"]), Duration::from_secs(20), |out| {
                out.ends_with(b"!")
            })
            .unwrap();
        assert_eq!((out.stdout.as_slice(), out.status.code()), (&b"part\n"[..], Some(3)));
    }

    #[test]
    fn describes_long_scripts_by_their_first_line() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &format!("# Does a thing.\n{}", "x; ".repeat(100))]);
        assert_eq!(describe(&cmd), "sh -c '# Does a thing.… (316 bytes)'");
    }

    #[test]
    fn what_a_program_said_is_cleaned_up() {
        assert_eq!(said(b"  Error: no such container: x\n"), "Error: no such container: x");
        assert_eq!(said(b"a\x1b[31mb\x00c\xffd\te"), "a\\u{1b}[31mb\\u{0}c\u{fffd}d\te");
        assert_eq!(said(&[b'x'; 5000]).chars().count(), 2001);
    }

    #[test]
    fn describes_without_environment_values() {
        let mut cmd = Command::new("tmux");
        cmd.args(["new-session", "-e", "TOKEN=hunter2", "-e", "KEY_ONLY", "echo", "a=b"]);
        assert_eq!(describe(&cmd), "tmux new-session -e 'TOKEN=…' -e KEY_ONLY echo a=b");
    }

    #[test]
    fn describes_with_quotes() {
        let mut cmd = Command::new("docker");
        cmd.args(["exec", "-i", "web", "sh", "-c", "echo 'hi there'"]);
        assert_eq!(describe(&cmd), r#"docker exec -i web sh -c 'echo '\''hi there'\'''"#);
    }
}
