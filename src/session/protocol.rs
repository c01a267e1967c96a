//! Framing of commands for a POSIX shell, and scanning of its output for sentinels. No I/O.
//!
//! It holds the launcher the shell is started with ([`LAUNCH`]) and the two dialects it
//! tells apart ([`Dialect`]); the first lines written to a new shell ([`bootstrap`]); the
//! frame of each command ([`encode_command`]) and the line written after an interrupt
//! ([`encode_recovery`]); shell text that writes a file byte for byte ([`encode_file`]); what
//! a sentinel line says ([`parse_status`]); and the [`Scanner`].
//!
//! The mechanism (why the shell runs interactive, the frame, the sentinels, how a command is
//! aborted and recovered from) is described in `docs/DESIGN.md`.
//!
//! # Scanning
//!
//! [`Scanner`] finds a sentinel in a byte stream cut at arbitrary points. Everything before it
//! is the command's output, byte for byte; bytes that might be the start of a sentinel are held
//! back until the next read decides.

use std::fmt::Write as _;

use crate::reap::UNSHADOWED;
use crate::text::{printf_format_into, quote, quote_into};

/// The `-c` script the session shell is started with (`SHELL -c LAUNCH SHELL`): it execs the
/// shell again in the interactive form that survives SIGINT ([`Dialect`]), with `$ENV` set
/// aside so the interactive shell sources nothing.
pub(crate) const LAUNCH: &str = concat!(
    "if [ -n \"${BASH_VERSION-}\" ]; then set -- --norc --noediting +o history -i; ",
    "else set -- -i /dev/stdin; fi; ",
    "if [ -n \"${ENV+x}\" ]; then BOXSHELL_SAVED_ENV=$ENV; export BOXSHELL_SAVED_ENV; unset ENV; fi; ",
    "exec \"$0\" \"$@\""
);

/// The shell families whose interactive mode the frame is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// dash, busybox ash and other POSIX shells, reading their script from `/dev/stdin`.
    Posix,
    /// bash (also when called `sh`), reading stdin.
    Bash,
}

/// The trap that makes bash abandon a command after a child that ignored SIGINT was killed.
const BASH_WINCH_TRAP: &str =
    "\\command trap 'case ${__boxshell_busy-} in 1) __boxshell_busy=; \\command kill -s INT $$;; esac' WINCH";

/// The trap that makes dash and busybox abandon a command at a safe point: without it their
/// SIGINT handler jumps out of whatever code it lands in, and busybox landing in `malloc`
/// deadlocks for good. The trap runs between two commands, and while a command runs it
/// removes itself (the recovery line sets it again) and raises SIGINT for
/// the shell's own handler, which then jumps from a known place. Its trace goes nowhere.
const POSIX_INT_TRAP: &str = "\\command trap 'case ${__boxshell_busy-} in 1) { __boxshell_busy= __boxshell_rearm=1; \\command trap - INT; \\command kill -s INT $$; } 2>/dev/null;; esac' INT";

/// The function [`exit_trap`] calls.
const EXIT: &str = "__boxshell_exit";

/// The EXIT trap that, when the shell exits during a command (`exit 3`, a failure under `set
/// -e`), kills what it leaves running first: nothing then holds its output open, and over ssh
/// sshd keeps the connection (and so the exec client) until nothing does. Safe from the user's
/// aliases and functions; its trace goes nowhere. A user's own EXIT trap replaces it.
fn exit_trap() -> String {
    format!(
        "\\command trap 'case ${{__boxshell_busy-}} in 1) {{ {NO_COMMAND_FUNCTION}; \\command unalias -a; \\command unset -f {UNSHADOWED}; \\command set +eu; {EXIT}; }} >/dev/null 2>&1;; esac' EXIT"
    )
}

/// The first lines written to a new session's shell (see docs/DESIGN.md). They work in
/// every dialect, as the dialect is not known yet, define [`END`] and the [`exit_trap`], and
/// end by printing `boot`'s sentinel with the word `boot` on both streams: what precedes it is
/// the shell's start-up noise (banners, job-control notices). The first line holds no `!`,
/// which bash would expand before that line's `set +H` runs; the later ones, read after, may.
pub(crate) fn bootstrap(boot: &Token) -> String {
    let (a, b) = boot.halves();
    format!(
        "exec 7>&1 8>&2 2>/dev/null; \
         if [ -n \"${{BASH_VERSION-}}\" ]; then set +H; unset HISTFILE PROMPT_COMMAND; {BASH_WINCH_TRAP}; \
         else exec 0</dev/null; {POSIX_INT_TRAP}; ( eval ': ${{PWD/a/b}}' ) 2>/dev/null && {FORKS_RUN_ON}=1; fi; PS1= PS2=; \
         if [ -n \"${{BOXSHELL_SAVED_ENV+x}}\" ]; then export ENV=\"$BOXSHELL_SAVED_ENV\"; unset BOXSHELL_SAVED_ENV; fi\n\
         {end}; {exit}\n{trap}; \
         \\command printf '\\037bx%s%s boot\\n' {a} {b} >&7; \\command printf '\\037bx%s%s boot\\n' {a} {b} >&8\n",
        end = end_function(),
        exit = crate::reap::own_session_function(EXIT),
        trap = exit_trap(),
    )
}

/// The name of the shell function that prints a command's sentinels.
const END: &str = "__boxshell_end";

/// The shell variable a frame sets when it did not run its command, to the word of a
/// [`Refusal`]; [`END`] prints it after the status.
pub(crate) const REFUSED: &str = "__boxshell_refused";

/// The variable [`bootstrap`] sets to 1 in a shell whose forked subshells may run on with the
/// frame: every POSIX shell but dash (which has no `${PWD/a/b}`).
const FORKS_RUN_ON: &str = "__bx_fk";

/// Shell text that starts whatever follows a command: keeps its status in `var`, removes a
/// user's function named `command` ([`NO_COMMAND_FUNCTION`]), and exits with that status in
/// a process forked from the session's shell (where `$$` is still the shell's PID) that got
/// here: busybox ash's subshell that meets a shell error (`( echo $UNSET )` under `set -u`)
/// lands in the error handler of the frame's `command eval`, as the shell itself would, and
/// runs the rest of the frame. Two `stat`s, some 10 µs, only where [`FORKS_RUN_ON`]; nothing
/// where there is no `/proc`.
fn after_command(var: &str) -> String {
    format!(
        "{var}=$?; {NO_COMMAND_FUNCTION}; case ${{{FORKS_RUN_ON}-}} in 1) \\command [ /proc/self -ef /proc/$$ ] || ! \\command [ -e /proc/$$ ] || \\command exit ${var};; esac"
    )
}

/// Removes a user's function named `command`, which would replace the escape (`\command`) that
/// all of boxshell's shell text uses to pass by the user's functions. `unset` is a special
/// built-in, which dash and busybox let no function replace; bash does, so it is reached
/// through `builtin` there (a word from an expansion, which no alias replaces).
const NO_COMMAND_FUNCTION: &str = "${BASH_VERSION+\\builtin} \\unset -f command";

/// The definition of [`END`], which every frame calls as `END T1 T2 KNOWN` right after the
/// command: a forked subshell that got here exits ([`after_command`]); else the two
/// sentinels of the token `T1T2` (`$?` at the call is the command's status, then [`REFUSED`]),
/// and the boot time when `$!` is no longer `KNOWN` (see docs/DESIGN.md). A function, parsed
/// once: dash spends some 40 instructions per character reading a frame, and these are some
/// 300 characters a command would otherwise carry. Each sentinel is one `printf`: one write,
/// so the reader sees it in one read.
fn end_function() -> String {
    format!(
        "{END}() {{ {after}; \
         \\command printf '\\037bx%s%s %d %s %s\\n' \"$1\" \"$2\" \"$__bx_st\" \"${{!:-0}}\" \"${{{REFUSED}-}}\" >&8; __boxshell_busy= {REFUSED}= __bx_st=; \\command exec >&7; \
         case ${{!:-0}} in \"$3\") \\command printf '\\037bx%s%s\\n' \"$1\" \"$2\";; \
         *) \\command read -r __bx_up _ </proc/uptime || __bx_up=; \\command printf '\\037bx%s%s %s\\n' \"$1\" \"$2\" \"${{__bx_up-}}\"; \
         \\command unset __bx_up;; esac; }}",
        after = after_command("__bx_st"),
    )
}

/// Length of the random part of a sentinel, in hex digits.
const TOKEN_LEN: usize = 32;

/// The constant start of every sentinel.
const MARK_PREFIX: &[u8] = b"\x1fbx";

/// Length of a whole sentinel (prefix and token).
pub const MARK_LEN: usize = MARK_PREFIX.len() + TOKEN_LEN;

/// Longest trailer (`" STATUS BGPID"`) accepted after a sentinel before the line is cut short.
const MAX_TRAILER: usize = 64;

/// The sentinel of one command.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token([u8; TOKEN_LEN]);

impl Token {
    /// A fresh token from 128 random bits.
    pub(crate) fn random() -> Token {
        let mut digits = [0u8; TOKEN_LEN];
        uuid::Uuid::new_v4().simple().encode_lower(&mut digits);
        Token(digits)
    }

    /// A token made of `seed`'s bytes, mapped to hex digits (for the fuzzer).
    #[cfg(fuzzing)]
    pub(crate) fn from_seed(seed: &[u8]) -> Token {
        let mut digits = [b'0'; TOKEN_LEN];
        for (d, s) in digits.iter_mut().zip(seed) {
            *d = b"0123456789abcdef"[usize::from(s & 15)];
        }
        Token(digits)
    }

    /// The sentinel as it appears in the output.
    pub(crate) fn marker(&self) -> [u8; MARK_LEN] {
        let mut m = [0u8; MARK_LEN];
        m[..MARK_PREFIX.len()].copy_from_slice(MARK_PREFIX);
        m[MARK_PREFIX.len()..].copy_from_slice(&self.0);
        m
    }

    pub(crate) fn halves(&self) -> (&str, &str) {
        // The token is ASCII hex digits by construction.
        let s = std::str::from_utf8(&self.0).unwrap_or_default();
        s.split_at(TOKEN_LEN / 2)
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

/// Where a framed command reads its stdin from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Input<'a> {
    /// `/dev/null`: the command sees EOF at once.
    Null,
    /// A file in the container, written beforehand (by [`encode_file`]), or a FIFO a feeder
    /// writes to.
    File(&'a str),
    /// The pipe that is stdin of process `pid` (a feeder's, which does not read it), opened
    /// as `/proc/PID/fd/0`: the command reads what the exec client is given, with no copy in
    /// between. The frame holds the FIFO `hold` open for writing while the command runs (on
    /// an fd the command does not get), and writes the line `end` to it once the command is
    /// over; the feeder (or a terminal's holder) ends at that line, or when the FIFO closes.
    /// The line is needed: a subshell the command left running holds the shell's saved copy
    /// of that fd, so that the close does not come.
    Pipe { pid: u32, hold: &'a str },
}

impl Input<'_> {
    /// The file the command's stdin is redirected from.
    fn source(&self) -> String {
        match self {
            Input::Null => "/dev/null".to_string(),
            Input::File(path) => quote(path),
            Input::Pipe { pid, .. } => format!("/proc/{pid}/fd/0"),
        }
    }
}

/// Appends the call of [`END`] for `token` that ends a frame.
fn push_end(text: &mut String, token: &Token, known_job: u32) {
    let (a, b) = token.halves();
    text.push('\\');
    text.push_str(END);
    text.push(' ');
    text.push_str(a);
    text.push(' ');
    text.push_str(b);
    let _ = writeln!(text, " {known_job}");
}

/// Encodes one command as the text the session shell reads. `command` must not contain NUL;
/// `known_job` is the last `$!` the session saw.
pub(crate) fn encode_command(
    dialect: Dialect,
    command: &str,
    token: &Token,
    input: Input<'_>,
    known_job: u32,
) -> String {
    let mut text = String::with_capacity(command.len() * 5 / 4 + 400);
    // A held FIFO is opened around the command and closed for it: the shell keeps its own
    // copy (close-on-exec) until the command is over, and no program the command starts
    // holds it (a subshell it forks does). `end` is written from a subshell, which a reader
    // gone cannot end with SIGPIPE, and the command's status is kept for what follows.
    let (open_hold, close_hold, end_hold) = match input {
        Input::Pipe { hold, .. } => {
            let say = format!(
                "; {}; ( \\command echo end >&9 ) 2>/dev/null; ( \\command exit $__boxshell_s )",
                after_command("__boxshell_s")
            );
            ("{ ", " 9>&-", format!("{say}; }} 9>{}", quote(hold)))
        }
        _ => ("", "", String::new()),
    };
    text.push_str("__boxshell_busy=1; ");
    text.push_str(open_hold);
    match dialect {
        Dialect::Posix => {
            text.push_str("\\command eval ");
            quote_into(&mut text, command);
            // A POSIX shell's own stdin is /dev/null already: redirecting it for each command
            // would cost an open (a fifth of a local round trip).
            if !matches!(input, Input::Null) {
                text.push_str(" <");
                text.push_str(&input.source());
            }
            let _ = write!(text, "{close_hold} 2>&8 7>&- 8>&-{end_hold}; ");
        }
        Dialect::Bash => {
            // The here-document is the `.`'s stdin, read whole before the command runs; the
            // command's own stdin is then set in its first line (with no trace: the group's
            // stderr is /dev/null), so it inherits no extra fd. Under `set -v`, bash echoes each
            // line it reads: `verbose` is off while the frame and that first line are read,
            // and on again for the lines after (boxshell's own texts turn it off at their
            // start, see overlay::QUIET).
            let delimiter = uuid::Uuid::new_v4().simple();
            let _ = write!(
                text,
                "case $- in *v*) __bx_v=1; \\command set +v;; esac; \\command . /dev/stdin <<'BOXSHELL_{delimiter}'{close_hold} 2>&8 7>&- 8>&-{end_hold}\n\
                 {{ \\command exec 0<{}; case ${{__bx_v-}} in 1) __bx_v=; \\command set -v;; esac; }} 2>/dev/null; {command}\nBOXSHELL_{delimiter}\n",
                input.source()
            );
        }
    }
    push_end(&mut text, token, known_job);
    text
}

/// Encodes the line written after a command was interrupted: its sentinels again, which end
/// the command if the shell dropped the rest of its frame, without [`END`] (which the command
/// may have removed: it is defined afresh after). Restores what an abandoned frame may have
/// left redirected.
pub(crate) fn encode_recovery(dialect: Dialect, token: &Token) -> String {
    let (a, b) = token.halves();
    let (rearm, stdin) = match dialect {
        Dialect::Posix => {
            (format!(" case ${{__boxshell_rearm-}} in 1) __boxshell_rearm=; {POSIX_INT_TRAP};; esac;"), " 0</dev/null")
        }
        Dialect::Bash => (String::new(), ""),
    };
    // The boot time, always: the aborted command may have started background jobs.
    format!(
        "__bx_st=$?; {NO_COMMAND_FUNCTION}; \\command printf '\\037bx%s%s %d %s\\n' {a} {b} \"$__bx_st\" \"${{!:-0}}\" >&8; \\command unset __bx_st; __boxshell_busy=;{rearm} \\command exec{stdin} >&7 2>/dev/null; \
         \\command read -r __bx_up _ </proc/uptime || __bx_up=; \\command printf '\\037bx%s%s %s\\n' {a} {b} \"$__bx_up\"; \
         \\command unset __bx_up; {}\n",
        end_function()
    )
}

/// Encodes shell text that writes `data` byte for byte to the file `path`, using only the
/// `printf` built-in (every byte survives, NUL included), and fails if any piece does. `dir`,
/// if given, is created first with mode 700 when it does not exist.
pub(crate) fn encode_file(path: &str, dir: Option<&str>, data: &[u8]) -> String {
    const PER_PRINTF: usize = 4096;
    let mut text = String::with_capacity(data.len() * 2 + 64);
    if let Some(dir) = dir {
        let dir = quote(dir);
        let _ = write!(text, "\\command [ -d {dir} ] || \\command mkdir -m 700 {dir}; ");
    }
    // `:` can be a function in bash; `command printf ''` cannot.
    text.push_str("{ \\command printf ''");
    for chunk in data.chunks(PER_PRINTF) {
        text.push_str(" && \\command printf '");
        printf_format_into(&mut text, chunk);
        text.push('\'');
    }
    text.push_str("; } >|");
    text.push_str(&quote(path));
    text.push('\n');
    text
}

/// What a sentinel line says about the command it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Status {
    /// `$?` after the command.
    pub code: i32,
    /// `$!` after the command: the newest background job the shell started, or 0.
    pub last_job: u32,
    /// The boot time after the command, in centiseconds, when `$!` had changed and the shell
    /// could read it.
    pub since: Option<u64>,
    /// Why the frame did not run the command, if it did not.
    pub refused: Option<Refusal>,
}

/// Why a frame did not run its command: its working directory ([`REFUSED`]'s words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `ENOENT`: it does not exist.
    NotFound,
    /// `ENOTDIR`: it is not a directory.
    NotADirectory,
    /// `EACCES`: it cannot be entered.
    PermissionDenied,
}

impl Refusal {
    /// The word the shell sets [`REFUSED`] to.
    pub(crate) fn word(self) -> &'static str {
        match self {
            Refusal::NotFound => "ENOENT",
            Refusal::NotADirectory => "ENOTDIR",
            Refusal::PermissionDenied => "EACCES",
        }
    }

    fn from_word(word: &str) -> Option<Refusal> {
        [Refusal::NotFound, Refusal::NotADirectory, Refusal::PermissionDenied].into_iter().find(|r| r.word() == word)
    }
}

/// Parses the stderr trailer `" CODE LASTJOB [REFUSAL]"` and the stdout trailer: `""`, or the boot
/// time as `/proc/uptime` shows it (`" 12345.67"`, seconds with two decimals).
pub(crate) fn parse_status(stderr: &[u8], stdout: &[u8]) -> Option<Status> {
    let mut words = std::str::from_utf8(stderr).ok()?.split_ascii_whitespace();
    let code = words.next()?.parse().ok()?;
    let last_job = words.next()?.parse().ok()?;
    let refused = words.next().and_then(Refusal::from_word);
    let since = std::str::from_utf8(stdout).ok().and_then(|t| {
        let (secs, hundredths) = t.trim().split_once('.')?;
        let hundredths: u64 = hundredths.parse().ok().filter(|_| hundredths.len() == 2)?;
        Some(secs.parse::<u64>().ok()? * 100 + hundredths)
    });
    Some(Status { code, last_job, since, refused })
}

/// What one call of [`Scanner::feed`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Scan {
    /// Output of the command, to be delivered as is (may be empty).
    pub data: Vec<u8>,
    /// Set once the sentinel line is complete: the bytes between the sentinel and its newline.
    pub end: Option<Vec<u8>>,
    /// Bytes after the sentinel line. They do not belong to the command.
    pub rest: Vec<u8>,
}

/// Finds one sentinel in a stream, fed in chunks cut anywhere.
#[derive(Debug)]
pub(crate) struct Scanner {
    marker: [u8; MARK_LEN],
    /// How many bytes of the marker the previous chunk ended with (held back, not delivered).
    held: usize,
    /// The trailer read so far, once the marker has been seen.
    trailer: Option<Vec<u8>>,
}

impl Scanner {
    pub(crate) fn new(marker: [u8; MARK_LEN]) -> Scanner {
        Scanner { marker, held: 0, trailer: None }
    }

    /// Bytes held back as a possible start of the sentinel; call at end of stream to deliver them.
    pub(crate) fn flush(&mut self) -> Vec<u8> {
        let held = self.marker[..self.held].to_vec();
        self.held = 0;
        held
    }

    /// Scans the next chunk. After a [`Scan`] with `end` set, the scanner is finished and must
    /// not be fed again.
    pub(crate) fn feed(&mut self, mut chunk: Vec<u8>) -> Scan {
        if self.trailer.is_some() {
            let (end, rest) = self.trailer_in(&chunk);
            return Scan { data: Vec::new(), end, rest };
        }
        if self.held > 0 {
            let mut joined = Vec::with_capacity(self.held + chunk.len());
            joined.extend_from_slice(&self.marker[..self.held]);
            joined.extend_from_slice(&chunk);
            chunk = joined;
            self.held = 0;
        }
        if let Some(at) = find(&chunk, &self.marker) {
            self.trailer = Some(Vec::new());
            let (end, rest) = self.trailer_in(&chunk[at + MARK_LEN..]);
            // What came before the sentinel is the chunk itself, cut short: no copy.
            chunk.truncate(at);
            return Scan { data: chunk, end, rest };
        }
        self.held = partial_suffix(&chunk, &self.marker);
        chunk.truncate(chunk.len() - self.held);
        Scan { data: chunk, end: None, rest: Vec::new() }
    }

    /// Continues the trailer with `tail`: the trailer once its line is complete, and what
    /// follows the line.
    fn trailer_in(&mut self, tail: &[u8]) -> (Option<Vec<u8>>, Vec<u8>) {
        let trailer = self.trailer.get_or_insert_with(Vec::new);
        // The trailer ends at a newline within MAX_TRAILER bytes of the sentinel, or is cut
        // there: not our printf's output after all. Either way, wherever the reads cut.
        let room = MAX_TRAILER - trailer.len();
        let (taken, newline) = match tail[..room.min(tail.len())].iter().position(|&b| b == b'\n') {
            Some(nl) => (nl, 1),
            None if tail.len() >= room => (room, 0),
            None => {
                trailer.extend_from_slice(tail);
                return (None, Vec::new());
            }
        };
        trailer.extend_from_slice(&tail[..taken]);
        (Some(std::mem::take(trailer)), tail[taken + newline..].to_vec())
    }
}

/// First position of `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8; MARK_LEN]) -> Option<usize> {
    let first = needle[0];
    let mut from = 0;
    while let Some(i) = find_byte(&hay[from..], first) {
        let at = from + i;
        if hay.len() - at < MARK_LEN {
            return None;
        }
        if hay[at..at + MARK_LEN] == needle[..] {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// First position of `byte` in `hay`, eight bytes at a time: output is scanned at the speed
/// it streams (GB/s), so a byte-by-byte loop would show.
fn find_byte(hay: &[u8], byte: u8) -> Option<usize> {
    const LO: u64 = u64::from_ne_bytes([0x01; 8]);
    const HI: u64 = u64::from_ne_bytes([0x80; 8]);
    let pattern = LO * u64::from(byte);
    let mut words = hay.chunks_exact(8);
    let mut offset = 0;
    for word in &mut words {
        let x = u64::from_ne_bytes(word.try_into().expect("eight bytes")) ^ pattern;
        // Some byte of `x` is zero exactly when this is non-zero.
        if x.wrapping_sub(LO) & !x & HI != 0 {
            break;
        }
        offset += 8;
    }
    hay[offset..].iter().position(|&b| b == byte).map(|i| offset + i)
}

/// Length of the longest suffix of `hay` that is a proper prefix of `needle`.
fn partial_suffix(hay: &[u8], needle: &[u8; MARK_LEN]) -> usize {
    let start = hay.len().saturating_sub(MARK_LEN - 1);
    (start..hay.len()).find(|&i| hay[i] == needle[0] && needle.starts_with(&hay[i..])).map_or(0, |i| hay.len() - i)
}

/// A reference model of [`Scanner`] and a driver that feeds it in pieces: shared by the
/// property tests and the fuzz target.
#[cfg(any(test, fuzzing))]
pub mod check {
    use super::{MARK_LEN, MAX_TRAILER, Scanner};

    /// What scanning `stream` must find, computed on the whole stream at once: the data before
    /// the sentinel, the trailer if the sentinel line is complete, and what follows it.
    pub fn model(stream: &[u8], marker: &[u8; MARK_LEN]) -> (Vec<u8>, Option<Vec<u8>>, Vec<u8>) {
        let Some(at) = stream.windows(MARK_LEN).position(|w| w == marker) else {
            return (stream.to_vec(), None, Vec::new());
        };
        let after = &stream[at + MARK_LEN..];
        let window = &after[..MAX_TRAILER.min(after.len())];
        match window.iter().position(|&b| b == b'\n') {
            Some(nl) => (stream[..at].to_vec(), Some(after[..nl].to_vec()), after[nl + 1..].to_vec()),
            None if after.len() >= MAX_TRAILER => {
                (stream[..at].to_vec(), Some(after[..MAX_TRAILER].to_vec()), after[MAX_TRAILER..].to_vec())
            }
            // The sentinel line is not complete yet: its start is held, not delivered.
            None => (stream[..at].to_vec(), None, Vec::new()),
        }
    }

    /// Feeds `stream` cut at `cuts`, as a reader does: after the end, later bytes are not
    /// the scanner's; without an end, what is held back is flushed at EOF.
    pub fn scan_in_pieces(
        stream: &[u8],
        cuts: &[usize],
        marker: [u8; MARK_LEN],
    ) -> (Vec<u8>, Option<Vec<u8>>, Vec<u8>) {
        let mut bounds: Vec<usize> = cuts.iter().map(|&c| c % (stream.len() + 1)).collect();
        bounds.extend([0, stream.len()]);
        bounds.sort_unstable();
        bounds.dedup();
        let mut scanner = Scanner::new(marker);
        let (mut data, mut rest) = (Vec::new(), Vec::new());
        let mut end = None;
        for pair in bounds.windows(2) {
            let piece = stream[pair[0]..pair[1]].to_vec();
            if end.is_some() {
                rest.extend(piece);
                continue;
            }
            let scan = scanner.feed(piece);
            data.extend(scan.data);
            rest.extend(scan.rest);
            end = scan.end;
        }
        if end.is_none() && scanner.trailer.is_none() {
            data.extend(scanner.flush());
        }
        (data, end, rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker() -> [u8; MARK_LEN] {
        Token(*b"0123456789abcdef0123456789abcdef").marker()
    }

    #[test]
    fn nothing_written_contains_a_sentinel() {
        let token = Token::random();
        let hex = std::str::from_utf8(&token.0).unwrap();
        for dialect in [Dialect::Posix, Dialect::Bash] {
            for input in [Input::Null, Input::File("/tmp/x"), Input::Pipe { pid: 7, hold: "/tmp/h" }] {
                let text = encode_command(dialect, "echo hi", &token, input, 0);
                assert!(find(text.as_bytes(), &token.marker()).is_none() && !text.contains(hex), "{text}");
                assert!(text.ends_with('\n'));
            }
            let text = encode_recovery(dialect, &token);
            assert!(find(text.as_bytes(), &token.marker()).is_none() && !text.contains(hex), "{text}");
        }
        let text = bootstrap(&token);
        assert!(find(text.as_bytes(), &token.marker()).is_none() && !text.contains(hex), "{text}");
        // bash expands `!` in a line before it runs the line's `set +H`.
        let first = text.split_inclusive('\n').next().unwrap();
        let last = format!(" boot\\n' {} {} >&8\n", &hex[..16], &hex[16..]);
        assert!(first.contains("set +H") && !first.contains('!') && text.ends_with(&last), "{text}");
        assert_eq!(encode_command(Dialect::Posix, "echo hi", &token, Input::Null, 0).matches('\n').count(), 1);
    }

    #[test]
    fn file_encoding_keeps_every_byte() {
        let mut data: Vec<u8> = (0..=255u8).chain(b"%s%%\\'\n".iter().copied()).collect();
        // Pieces of 4096 bytes that start with `-`, which dash's and bash's printf would take
        // for an option.
        data.extend(std::iter::repeat_n(b'x', 4096 - data.len() % 4096));
        data.extend(b"-4-n%d".iter().cycle().take(8192));
        let dir = std::env::temp_dir().join(format!("boxshell-enc-{}", std::process::id()));
        let path = dir.join("in");
        let text = encode_file(path.to_str().unwrap(), Some(dir.to_str().unwrap()), &data);
        for sh in [&["sh", "-c"][..], &["bash", "-c"], &["busybox", "sh", "-c"]] {
            let _ = std::fs::remove_file(&path);
            let status = std::process::Command::new(sh[0]).args(&sh[1..]).arg(&text).status().unwrap();
            assert!(status.success(), "{sh:?}");
            assert_eq!(std::fs::read(&path).unwrap(), data, "{sh:?}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn file_encoding_fails_when_a_piece_does() {
        let text = encode_file("/nonexistent/dir/file", None, &[b'a'; 10_000]);
        let status = std::process::Command::new("sh").arg("-c").arg(&text).status().unwrap();
        assert!(!status.success());
    }

    #[test]
    fn status_parses() {
        let plain = Status { code: 0, last_job: 0, since: None, refused: None };
        assert_eq!(parse_status(b" 0 0", b""), Some(plain));
        assert_eq!(parse_status(b" 0 0 ", b""), Some(plain));
        assert_eq!(parse_status(b" 130 4411", b""), Some(Status { code: 130, last_job: 4411, ..plain }));
        for refusal in [Refusal::NotFound, Refusal::NotADirectory, Refusal::PermissionDenied] {
            let trailer = format!(" 0 0 {}", refusal.word());
            assert_eq!(parse_status(trailer.as_bytes(), b""), Some(Status { refused: Some(refusal), ..plain }));
        }
        let stamped = Some(Status { code: 0, last_job: 4411, since: Some(123456), refused: None });
        assert_eq!(parse_status(b" 0 4411", b" 1234.56"), stamped);
        let unstamped = Some(Status { code: 0, last_job: 4411, ..plain });
        for bad in [&b" "[..], b" 1234", b" 1234.5", b" x.56", b" 12.3x"] {
            assert_eq!(parse_status(b" 0 4411", bad), unstamped, "{bad:?}");
        }
        assert_eq!(parse_status(b" x 1", b""), None);
        assert_eq!(parse_status(b"", b""), None);
    }

    #[test]
    fn scanner_whole_chunk() {
        let mut s = Scanner::new(marker());
        let mut chunk = b"abc".to_vec();
        chunk.extend_from_slice(&marker());
        chunk.extend_from_slice(b" 0 0\nlater");
        let scan = s.feed(chunk);
        assert_eq!(scan.data, b"abc");
        assert_eq!(scan.end.as_deref(), Some(&b" 0 0"[..]));
        assert_eq!(scan.rest, b"later");
    }

    #[test]
    fn scanner_holds_back_a_partial_marker_and_releases_a_false_one() {
        let m = marker();
        let mut s = Scanner::new(m);
        let mut first = b"x".to_vec();
        first.extend_from_slice(&m[..10]);
        let scan = s.feed(first);
        assert_eq!(scan.data, b"x");
        // The next byte breaks the match: the held bytes are output after all.
        let scan = s.feed(b"!".to_vec());
        let mut want = m[..10].to_vec();
        want.push(b'!');
        assert_eq!(scan.data, want);
        assert_eq!(scan.end, None);
    }

    #[test]
    fn scanner_one_byte_at_a_time() {
        let m = marker();
        let mut stream = b"\x1f\x1fbx\x1f".to_vec();
        stream.extend_from_slice(&m);
        stream.extend_from_slice(b" 2 7\nrest");
        let mut s = Scanner::new(m);
        let mut data = Vec::new();
        let mut end = None;
        let mut rest = Vec::new();
        for &b in &stream {
            if end.is_some() {
                rest.push(b);
                continue;
            }
            let scan = s.feed(vec![b]);
            data.extend(scan.data);
            rest.extend(scan.rest);
            end = scan.end;
        }
        assert_eq!(data, b"\x1f\x1fbx\x1f");
        assert_eq!(end.as_deref(), Some(&b" 2 7"[..]));
        assert_eq!(rest, b"rest");
    }

    #[test]
    fn find_byte_agrees_with_a_plain_search() {
        for len in 0..40 {
            for at in 0..=len {
                let mut hay = vec![b'a'; len];
                if at < len {
                    hay[at] = 0x1f;
                }
                // Bytes that differ from 0x1f by one bit, and high bytes, must not match.
                hay.iter_mut().filter(|b| **b == b'a').step_by(3).for_each(|b| *b = 0x9f);
                hay.iter_mut().filter(|b| **b == b'a').step_by(2).for_each(|b| *b = 0x1e);
                assert_eq!(find_byte(&hay, 0x1f), hay.iter().position(|&b| b == 0x1f), "{hay:?}");
            }
        }
    }

    mod properties {
        use super::super::check::{model, scan_in_pieces};
        use super::*;
        use proptest::prelude::*;

        /// Pieces that streams are made of: noise, UTF-8, and everything that looks like a
        /// sentinel or a part of one.
        fn piece(marker: [u8; MARK_LEN]) -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..40),
                "[a-zé€😀\\n ]{0,12}".prop_map(String::into_bytes),
                Just(marker.to_vec()),
                (1..MARK_LEN).prop_map(move |n| marker[..n].to_vec()),
                (1..MARK_LEN).prop_map(move |n| marker[n..].to_vec()),
                Just(b"\x1f".to_vec()),
                Just(b"\x1fbx".to_vec()),
                Just(b" 0 0\n".to_vec()),
                Just(vec![b'9'; 70]),
            ]
        }

        fn case() -> impl Strategy<Value = ([u8; MARK_LEN], Vec<u8>, Vec<usize>)> {
            "[0-9a-f]{32}".prop_flat_map(|hex| {
                let token = Token(hex.as_bytes().try_into().unwrap());
                let marker = token.marker();
                (
                    Just(marker),
                    proptest::collection::vec(piece(marker), 0..12).prop_map(|p| p.concat()),
                    proptest::collection::vec(any::<usize>(), 0..20),
                )
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

            #[test]
            fn any_cutting_finds_what_the_model_finds((marker, stream, cuts) in case()) {
                prop_assert_eq!(scan_in_pieces(&stream, &cuts, marker), model(&stream, &marker));
            }

            #[test]
            fn one_byte_at_a_time_finds_what_the_model_finds((marker, stream, _) in case()) {
                let every: Vec<usize> = (0..=stream.len()).collect();
                prop_assert_eq!(scan_in_pieces(&stream, &every, marker), model(&stream, &marker));
            }
        }
    }

    #[test]
    fn overlong_trailer_is_cut() {
        let mut s = Scanner::new(marker());
        let mut chunk = marker().to_vec();
        chunk.extend(std::iter::repeat_n(b'9', 100));
        let scan = s.feed(chunk);
        assert_eq!(scan.end.map(|t| t.len()), Some(MAX_TRAILER));
        assert_eq!(scan.rest.len(), 100 - MAX_TRAILER);
    }
}
