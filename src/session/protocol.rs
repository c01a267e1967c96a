//! Framing of commands for a POSIX shell, and scanning of its output for sentinels. No I/O.
//!
//! # The frame
//!
//! The shell is started as `SHELL /dev/stdin`: it opens the pipe on its stdin as a script, on
//! a close-on-exec fd of its own. The script's first line ([`BOOTSTRAP`]) then points the
//! shell's stdin at `/dev/null`, so every command reads EOF without a redirection of its own
//! and nothing a command runs can read the protocol; keeps the session's stdout and stderr
//! pipes on fds 7 and 8; and points the shell's own fd 2 at `/dev/null`, so nothing the shell
//! prints between commands (a `set -x` trace of the frame, a `set -v` echo of its input)
//! reaches the session. Each command is then one line:
//!
//! ```text
//! \command eval 'CMD' 2>&8 7>&- 8>&-; \command printf '\037bx%s%s %d %s\n' T1 T2 "$?" "${!:-0}" >&8; \exec >&7; \command printf '\037bx%s%s\n' T1 T2
//! ```
//!
//! - `command eval` runs the command in the shell itself, so `cd`, `export`, functions and
//!   aliases persist; `command` keeps a syntax error from killing dash or busybox sh (status 2).
//! - The command's stderr is the session's; fds 7 and 8 are closed for it. All of it is undone
//!   afterwards and `exec >&7` restores stdout, so `exec >/dev/null`, `exec 2>&-` or
//!   `exec 7>file` inside a command last until the end of that command and cannot blind the
//!   session. A leading `\` keeps aliases from changing the frame.
//! - The sentinel is `\x1f` `bx` and a random 32-digit token that is new for every command.
//!   It never appears literally in what is written to the shell: the first byte is written as
//!   an escape and the token in two halves joined by `printf` at run time. So no trace, echo
//!   or look-alike printed by a command can end a command early.
//! - The stderr sentinel comes first and carries the exit status and `$!` (the newest
//!   background job, which lets a timeout spare jobs that earlier commands left running); the
//!   stdout sentinel comes last.
//!
//! # Scanning
//!
//! [`Scanner`] finds a sentinel in a byte stream cut at arbitrary points. Everything before it
//! is the command's output, byte for byte; bytes that might be the start of a sentinel are held
//! back until the next read decides.

use std::fmt::Write as _;

/// The script the session shell runs: its stdin, opened anew as a file.
pub(crate) const SCRIPT: &str = "/dev/stdin";

/// Written once when a session starts: stdin from `/dev/null` (the shell has its own fd on the
/// script), the session's pipes kept on fds 7 and 8, the shell's own stderr to `/dev/null`.
pub(crate) const BOOTSTRAP: &str = "exec 0</dev/null 7>&1 8>&2 2>/dev/null\n";

/// Length of the random part of a sentinel, in hex digits.
const TOKEN_LEN: usize = 32;

/// The constant start of every sentinel.
const MARK_PREFIX: &[u8] = b"\x1fbx";

/// Length of a whole sentinel (prefix and token).
pub const MARK_LEN: usize = MARK_PREFIX.len() + TOKEN_LEN;

/// Longest trailer (`" STATUS BGPID"`) accepted after a sentinel before the line is cut short.
const MAX_TRAILER: usize = 64;

/// Quotes `s` for a POSIX shell, so that the shell reads it back as exactly one word.
///
/// ```
/// assert_eq!(boxshell::quote("it's $HOME"), r#"'it'\''s $HOME'"#);
/// assert_eq!(boxshell::quote(""), "''");
/// ```
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str(r"'\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// The sentinel of one command.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token([u8; TOKEN_LEN]);

impl Token {
    /// A fresh token from 128 random bits.
    pub(crate) fn random() -> Token {
        let mut digits = [0u8; TOKEN_LEN];
        let hex = uuid::Uuid::new_v4().simple().to_string();
        digits.copy_from_slice(hex.as_bytes());
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

    fn halves(&self) -> (&str, &str) {
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
    /// The shell's stdin, `/dev/null`: the command sees EOF at once.
    Null,
    /// A file in the container, written by [`encode_file`] beforehand.
    File(&'a str),
}

/// Encodes one command as the line the session shell reads. `command` must not contain NUL.
pub(crate) fn encode_command(command: &str, token: &Token, input: Input<'_>) -> String {
    let (a, b) = token.halves();
    let mut line = String::with_capacity(command.len() + 200);
    line.push_str("\\command eval ");
    line.push_str(&quote(command));
    line.push_str(" 2>&8 7>&- 8>&-");
    if let Input::File(path) = input {
        line.push_str(" <");
        line.push_str(&quote(path));
    }
    // `$?` must be read first: nothing may run between the command and this printf.
    let _ = writeln!(
        line,
        "; \\command printf '\\037bx%s%s %d %s\\n' {a} {b} \"$?\" \"${{!:-0}}\" >&8\
         ; \\exec >&7; \\command printf '\\037bx%s%s\\n' {a} {b}"
    );
    line
}

/// Encodes shell text that writes `data` byte for byte to the file `path`, using only the
/// `printf` built-in (every byte survives, NUL included). `dir`, if given, is created first
/// with mode 700 when it does not exist.
pub(crate) fn encode_file(path: &str, dir: Option<&str>, data: &[u8]) -> String {
    const PER_PRINTF: usize = 4096;
    let mut text = String::with_capacity(data.len() * 2 + 64);
    if let Some(dir) = dir {
        let dir = quote(dir);
        let _ = write!(text, "[ -d {dir} ] || \\command mkdir -m 700 {dir}; ");
    }
    text.push_str("{ :");
    for chunk in data.chunks(PER_PRINTF) {
        text.push_str("; \\command printf '");
        for &b in chunk {
            match b {
                b'%' => text.push_str("%%"),
                b'\\' => text.push_str("\\\\"),
                b'\'' => text.push_str("\\047"),
                0x20..=0x7e => text.push(b as char),
                _ => {
                    let _ = write!(text, "\\{b:03o}");
                }
            }
        }
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
}

/// Parses the stderr trailer `" CODE LASTJOB"`.
pub(crate) fn parse_status(trailer: &[u8]) -> Option<Status> {
    let text = std::str::from_utf8(trailer).ok()?;
    let mut words = text.split_ascii_whitespace();
    let code = words.next()?.parse().ok()?;
    let last_job = words.next()?.parse().ok()?;
    Some(Status { code, last_job })
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
            return self.trailer_from(chunk, 0, Vec::new());
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
            let data = chunk[..at].to_vec();
            return self.trailer_from(chunk, at + MARK_LEN, data);
        }
        self.held = partial_suffix(&chunk, &self.marker);
        chunk.truncate(chunk.len() - self.held);
        Scan { data: chunk, end: None, rest: Vec::new() }
    }

    /// Continues the trailer with `chunk[from..]`; `data` is output found before it.
    fn trailer_from(&mut self, chunk: Vec<u8>, from: usize, data: Vec<u8>) -> Scan {
        let trailer = self.trailer.get_or_insert_with(Vec::new);
        let tail = &chunk[from..];
        // The trailer ends at a newline within MAX_TRAILER bytes of the sentinel, or is cut
        // there: not our printf's output after all. Either way, wherever the reads cut.
        let room = MAX_TRAILER - trailer.len();
        let (taken, newline) = match tail[..room.min(tail.len())].iter().position(|&b| b == b'\n') {
            Some(nl) => (nl, 1),
            None if tail.len() >= room => (room, 0),
            None => {
                trailer.extend_from_slice(tail);
                return Scan { data, end: None, rest: Vec::new() };
            }
        };
        trailer.extend_from_slice(&tail[..taken]);
        let end = std::mem::take(trailer);
        Scan { data, end: Some(end), rest: tail[taken + newline..].to_vec() }
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
    fn quote_round_trips_through_sh() {
        for s in ["", "plain", "it's", "'", "''", "a b\tc\nd", "$(echo x) `y` \\ \"z\" *", "é\u{1f600}"] {
            let out =
                std::process::Command::new("sh").arg("-c").arg(format!("printf %s {}", quote(s))).output().unwrap();
            assert_eq!(out.stdout, s.as_bytes(), "{s:?}");
        }
    }

    #[test]
    fn frame_never_contains_the_sentinel() {
        let token = Token::random();
        let line = encode_command("echo hi", &token, Input::Null);
        assert!(find(line.as_bytes(), &token.marker()).is_none());
        assert!(!line.contains(std::str::from_utf8(&token.0).unwrap()));
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
    }

    #[test]
    fn file_encoding_keeps_every_byte() {
        let data: Vec<u8> = (0..=255u8).chain(b"%s%%\\'\n".iter().copied()).collect();
        let dir = std::env::temp_dir().join(format!("boxshell-enc-{}", std::process::id()));
        let path = dir.join("in");
        let text = encode_file(path.to_str().unwrap(), Some(dir.to_str().unwrap()), &data);
        for sh in ["sh", "bash"] {
            let status = std::process::Command::new(sh).arg("-c").arg(&text).status().unwrap();
            assert!(status.success());
            assert_eq!(std::fs::read(&path).unwrap(), data, "{sh}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn status_parses() {
        assert_eq!(parse_status(b" 0 0"), Some(Status { code: 0, last_job: 0 }));
        assert_eq!(parse_status(b" 130 4411"), Some(Status { code: 130, last_job: 4411 }));
        assert_eq!(parse_status(b" x 1"), None);
        assert_eq!(parse_status(b""), None);
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
