//! The file system verbs of a session, named as `std::fs` names them. Each is one command of
//! the session: a script of its own, in a subshell (C messages, no `set -euf` of the user's, no
//! alias or function in the way), that checks the path first and exits with a code of its own
//! for what `std::io::ErrorKind` names; a tool's own failure is read from its message.

use std::ffi::OsString;
use std::io::ErrorKind;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use super::overlay::{QUIET, TRACE_AGAIN};
use super::{Session, driver};
use crate::error::{Error, Result};
use crate::fs::{DirEntry, Metadata};
use crate::output::Output;
use crate::text;

/// The exit codes of the checks: each says one `ErrorKind`.
const CODES: [(i32, ErrorKind); 5] = [
    (90, ErrorKind::NotFound),
    (91, ErrorKind::NotADirectory),
    (92, ErrorKind::IsADirectory),
    (93, ErrorKind::AlreadyExists),
    (94, ErrorKind::PermissionDenied),
];

/// The messages of `strerror` (glibc's and musl's alike, in the C locale) a tool prints.
const MESSAGES: [(&str, ErrorKind); 8] = [
    ("No such file or directory", ErrorKind::NotFound),
    ("Permission denied", ErrorKind::PermissionDenied),
    ("Operation not permitted", ErrorKind::PermissionDenied),
    ("Not a directory", ErrorKind::NotADirectory),
    ("Is a directory", ErrorKind::IsADirectory),
    ("File exists", ErrorKind::AlreadyExists),
    ("Directory not empty", ErrorKind::DirectoryNotEmpty),
    ("Read-only file system", ErrorKind::ReadOnlyFilesystem),
];

/// `stat`'s format for [`Metadata::parse`].
const STAT: &str = "'%f %s %Y'";

/// The most a listing may take in the session's output: some 100 bytes an entry.
const LISTING_CAP: usize = 1 << 30;

/// A script's text, built from its paths (each a shell word) and its body.
struct Script {
    prelude: String,
}

impl Script {
    fn new() -> Script {
        Script { prelude: String::new() }
    }

    /// `path` as a shell word, checked (`what` names it in the error).
    fn path(&mut self, what: &'static str, var: &str, path: &Path) -> Result<String> {
        text::path(what, path)?;
        Ok(text::path_word(&mut self.prelude, var, path))
    }

    /// The whole script: `body` in a subshell set up for it. Its exit code goes at the end of
    /// its stderr (see [`take_code`]), not to the session's shell, which `set -e` would end.
    /// Nothing of it is traced under the session's `set -x`, which would put lines after the
    /// tools' words.
    fn with(self, body: &str) -> String {
        format!(
            "{QUIET}if ( LC_ALL=C; \\command export LC_ALL; \\command set +euf; \
             {{ \\command shopt -u failglob nullglob dotglob; \\command unset GLOBIGNORE; }} 2>/dev/null; {}{body} ); \
             then \\command :; else \\command printf '\\n\\037%d' \"$?\" >&2; fi; {TRACE_AGAIN}",
            self.prelude
        )
    }
}

/// The exit code that says `kind`.
fn code_of(kind: ErrorKind) -> i32 {
    CODES.iter().find(|(_, k)| *k == kind).map_or(1, |(c, _)| *c)
}

/// Exits with the code of `kind` unless `test` holds.
fn unless(test: &str, kind: ErrorKind) -> String {
    format!("{{ {test}; }} || \\command exit {}; ", code_of(kind))
}

/// Exits unless `test` says the path `p` is there: `ls` then says why (not found, or a parent
/// that cannot be searched: permission denied), or, if `ls` finds it (a dangling symbolic
/// link where one is followed), the code of `NotFound`.
fn must_exist(test: &str, p: &str) -> String {
    let code = code_of(ErrorKind::NotFound);
    format!("{{ {test}; }} || {{ \\command ls -d -- {p} >/dev/null || \\command exit; \\command exit {code}; }}; ")
}

/// `[ -e P ] || [ -L P ]`: the path is there (a dangling symbolic link too).
fn there(p: &str) -> String {
    format!("\\command [ -e {p} ] || \\command [ -L {p} ]")
}

/// Takes a script's exit code from the end of its stderr (`\n\x1fCODE`, only when not 0) and
/// puts it in the output.
fn take_code(mut out: Output) -> Output {
    let tail = out.stderr.iter().rposition(|&b| b == 0x1f).filter(|&at| at > 0 && out.stderr[at - 1] == b'\n');
    if let Some(at) = tail
        && let Some(code) = std::str::from_utf8(&out.stderr[at + 1..]).ok().and_then(|c| c.parse().ok())
    {
        out.stderr.truncate(at - 1);
        out.exit_code = code;
    }
    out
}

/// The error of a failed verb.
fn fs_error(op: &'static str, path: &Path, out: &Output) -> Error {
    let said = String::from_utf8_lossy(&out.stderr);
    let said = said.trim().lines().last().unwrap_or_default().to_string();
    let words = |kind: ErrorKind| MESSAGES.iter().find(|(_, k)| *k == kind).map(|(m, _)| m.to_string());
    let (kind, message) = if out.timed_out {
        (ErrorKind::TimedOut, format!("timed out after {:?}", out.duration))
    } else if let Some((_, kind)) = CODES.iter().find(|(code, _)| *code == out.exit_code) {
        (*kind, words(*kind).unwrap_or_else(|| kind.to_string()))
    } else if let Some((words, kind)) = MESSAGES.iter().find(|(m, _)| said.contains(m)) {
        // The tool's words, without its name and the path the error names already.
        (*kind, words.to_string())
    } else {
        (ErrorKind::Other, if said.is_empty() { format!("failed with exit code {}", out.exit_code) } else { said })
    };
    Error::Fs { op, path: path.to_string_lossy().into_owned(), kind, message }
}

/// Reads `read_dir`'s output: every name NUL-terminated, `/`, then `stat`'s line for each name
/// it could read, in the same order (`FIELDS ./NAME` or `FIELDS NAME`).
fn parse_listing(out: &[u8]) -> Vec<DirEntry> {
    let mut names = Vec::new();
    let mut rest = out;
    while let Some(end) = rest.first().filter(|&&b| b != b'/').and(rest.iter().position(|&b| b == 0)) {
        names.push(&rest[..end]);
        rest = &rest[end + 1..];
    }
    let mut stats = rest.get(1..).unwrap_or_default();
    let mut entries = Vec::with_capacity(names.len());
    for name in names {
        // A name `stat` could not read (gone meanwhile, or a pattern that matched nothing) has
        // no line: the next line is then another name's.
        let Some(fields_end) = fields_len(stats) else { break };
        let line = [b" ", name, b"\n"].concat();
        if !stats[fields_end..].starts_with(&line) {
            continue;
        }
        if let Some(m) = Metadata::parse(&stats[..fields_end]) {
            entries.push(DirEntry::new(OsString::from_vec(name.to_vec()), m));
        }
        stats = &stats[fields_end + line.len()..];
    }
    // bash's `dotglob` (off in the script, but a name may still come twice) is harmless.
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries.dedup_by(|a, b| a.name == b.name);
    entries
}

/// The length of the fields that start `stats`: up to their third space, on one line.
fn fields_len(stats: &[u8]) -> Option<usize> {
    let third = stats.iter().enumerate().filter(|&(_, &b)| b == b' ').nth(2)?.0;
    (!stats[..third].contains(&b'\n')).then_some(third)
}

impl Session {
    /// Runs a verb's script, and its failure as [`Error::Fs`].
    fn fs_run(&mut self, op: &'static str, path: &Path, script: String, cap: usize) -> Result<Output> {
        let out = take_code(self.cmd(script).max_output(cap).idle_timeout(None).run()?);
        if out.timed_out || out.exit_code != 0 {
            return Err(fs_error(op, path, &out));
        }
        Ok(out)
    }

    /// Whether `path` exists in the container, as `std::fs::exists`: a symbolic link is
    /// followed (a dangling one is `false`), and what cannot be told is an error.
    ///
    /// # Errors
    /// [`Error::Fs`] when it cannot be told (kind `PermissionDenied` for a parent that may not
    /// be searched, `NotADirectory` for a path under a file, `Other` for a loop of symbolic
    /// links); [`Error::InvalidValue`] for an
    /// empty path or one holding NUL; as for [`exec`](Session::exec).
    pub fn exists(&mut self, path: impl AsRef<Path>) -> Result<bool> {
        let path = path.as_ref();
        let mut script = Script::new();
        let p = script.path("path", "__bx_p", path)?;
        // Not there: `ls` says why, which is an answer only when it is "not found" (of a link,
        // followed: a dangling one is not there, a loop an error, as for std).
        let test = format!(
            "\\command [ -e {p} ] && \\command exit 0; \\command [ -L {p} ] && {{ \\command ls -dL -- {p} >/dev/null || \\command exit 2; \\command exit 1; }}; \\command ls -d -- {p} >/dev/null && \\command exit 1; \\command exit 2"
        );
        let out = take_code(self.cmd(script.with(&test)).run()?);
        match out.exit_code {
            0 => Ok(true),
            1 => Ok(false),
            _ => match fs_error("exists", path, &out) {
                Error::Fs { kind: ErrorKind::NotFound, .. } => Ok(false),
                e => Err(e),
            },
        }
    }

    /// What `stat` says about `path`, following a symbolic link.
    ///
    /// # Errors
    /// [`Error::Fs`] (op `metadata`; kind `NotFound`, `PermissionDenied`, ...); as for
    /// [`exec`](Session::exec).
    pub fn metadata(&mut self, path: impl AsRef<Path>) -> Result<Metadata> {
        self.stat("metadata", path.as_ref(), true)
    }

    /// What `stat` says about `path` itself: a symbolic link is not followed.
    ///
    /// # Errors
    /// As for [`metadata`](Session::metadata), with op `symlink_metadata`.
    pub fn symlink_metadata(&mut self, path: impl AsRef<Path>) -> Result<Metadata> {
        self.stat("symlink_metadata", path.as_ref(), false)
    }

    fn stat(&mut self, op: &'static str, path: &Path, follow: bool) -> Result<Metadata> {
        let mut script = Script::new();
        let p = script.path("path", "__bx_p", path)?;
        let (check, flag) = if follow { (format!("\\command [ -e {p} ]"), " -L") } else { (there(&p), "") };
        let body = format!("{}\\command stat{flag} -c {STAT} -- {p}", must_exist(&check, &p));
        let out = self.fs_run(op, path, script.with(&body), 4096)?;
        let line = out.stdout.strip_suffix(b"\n").unwrap_or(&out.stdout);
        Metadata::parse(line).ok_or_else(|| Error::Fs {
            op,
            path: path.to_string_lossy().into_owned(),
            kind: ErrorKind::InvalidData,
            message: format!("unexpected answer from stat: {:?}", String::from_utf8_lossy(&out.stdout)),
        })
    }

    /// The entries of the directory `path` (not `.` and `..`), sorted by the bytes of their
    /// names, each with what `stat` says of it (a symbolic link is not followed).
    /// One command of the session, whatever the number of entries (`stat` runs once per few
    /// thousand, through `xargs`).
    ///
    /// ```
    /// # fn main() -> boxshell::Result<()> {
    /// use boxshell::fs::FileKind;
    /// let mut sh = boxshell::Session::builder("-").runtime(boxshell::Runtime::Local).open()?;
    /// let dir = format!("/tmp/bx-doc-read-dir-{}", std::process::id());
    /// sh.write_file(format!("{dir}/a b.txt"), b"hello")?;
    /// sh.create_dir_all(format!("{dir}/sub"))?;
    /// let entries = sh.read_dir(&dir)?;
    /// let seen: Vec<_> = entries.iter().map(|e| (e.name.to_str().unwrap(), e.kind, e.len)).collect();
    /// assert_eq!(seen[0], ("a b.txt", FileKind::File, 5));
    /// assert_eq!((seen[1].0, seen[1].1), ("sub", FileKind::Dir));
    /// sh.remove_dir_all(&dir)?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Fs`] (op `read_dir`; kind `NotFound`, `NotADirectory`, `PermissionDenied`);
    /// as for [`exec`](Session::exec).
    pub fn read_dir(&mut self, path: impl AsRef<Path>) -> Result<Vec<DirEntry>> {
        let path = path.as_ref();
        let mut script = Script::new();
        let p = script.path("path", "__bx_p", path)?;
        let body = format!(
            "{}{}\\command cd -- {p} 2>/dev/null || \\command exit {denied}; {}\\command set -- * .[!.]* ..?*; \
             \\command printf '%s\\0' \"$@\"; \\command printf /; \
             \\command printf '%s\\0' \"$@\" | \\command xargs -0 stat -c {STAT_N} -- 2>/dev/null; \\command exit 0",
            must_exist(&format!("\\command [ -e {p} ]"), &p),
            unless(&format!("\\command [ -d {p} ]"), ErrorKind::NotADirectory),
            // A directory that cannot be entered (dash's `cd` does not say why; busybox's `[ -x ]`
            // is false for root where the kernel lets root in), or read once entered.
            unless("\\command [ -r . ]", ErrorKind::PermissionDenied),
            denied = code_of(ErrorKind::PermissionDenied),
            STAT_N = "'%f %s %Y %n'",
        );
        let out = self.fs_run("read_dir", path, script.with(&body), LISTING_CAP)?;
        Ok(parse_listing(&out.stdout))
    }

    /// Creates the directory `path` and every missing parent, as `mkdir -p`; a directory that
    /// exists already is not an error.
    ///
    /// # Errors
    /// [`Error::Fs`] (op `create_dir_all`; kind `AlreadyExists` when `path` is something else
    /// than a directory, `NotADirectory` when a parent is not one, `PermissionDenied`); as for
    /// [`exec`](Session::exec).
    pub fn create_dir_all(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let mut script = Script::new();
        let p = script.path("path", "__bx_p", path)?;
        let body = format!(
            "\\command [ -d {p} ] && \\command exit 0; {}\\command mkdir -p -- {p}",
            unless(&format!("! {{ {}; }}", there(&p)), ErrorKind::AlreadyExists)
        );
        self.fs_run("create_dir_all", path, script.with(&body), 4096).map(drop)
    }

    /// Renames `from` to `to`, as `rename(2)` (and `std::fs::rename`) does: a file `to` is
    /// replaced, an empty directory `to` is replaced by a directory `from`.
    ///
    /// # Errors
    /// [`Error::Fs`] (op `rename`, the path `from`; kind `NotFound`, `IsADirectory`,
    /// `DirectoryNotEmpty`, `NotADirectory`, ...); as for [`exec`](Session::exec).
    pub fn rename(&mut self, from: impl AsRef<Path>, to: impl AsRef<Path>) -> Result<()> {
        let (from, to) = (from.as_ref(), to.as_ref());
        let mut script = Script::new();
        let f = script.path("path", "__bx_p", from)?;
        let t = script.path("path", "__bx_q", to)?;
        // rename(2)'s refusals, checked first: GNU's `mv` says them in words of its own.
        let dir = |p: &str| format!("{{ \\command [ -d {p} ] && ! \\command [ -L {p} ]; }}");
        let body = format!(
            "{}{}{}\\command mv -fT -- {f} {t}",
            must_exist(&there(&f), &f),
            unless(&format!("{} || ! {}", dir(&f), dir(&t)), ErrorKind::IsADirectory),
            unless(&format!("! {} || ! {{ {}; }} || {}", dir(&f), there(&t), dir(&t)), ErrorKind::NotADirectory),
        );
        self.fs_run("rename", from, script.with(&body), 4096).map(drop)
    }

    /// Removes the file (or symbolic link) `path`.
    ///
    /// # Errors
    /// [`Error::Fs`] (op `remove_file`; kind `NotFound`, `IsADirectory`, `PermissionDenied`);
    /// as for [`exec`](Session::exec).
    pub fn remove_file(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let mut script = Script::new();
        let p = script.path("path", "__bx_p", path)?;
        let body = format!(
            "{}{}\\command rm -f -- {p}",
            must_exist(&there(&p), &p),
            unless(&format!("\\command [ -L {p} ] || ! \\command [ -d {p} ]"), ErrorKind::IsADirectory),
        );
        self.fs_run("remove_file", path, script.with(&body), 4096).map(drop)
    }

    /// Removes the directory `path` and everything in it; a symbolic link is removed, not
    /// followed.
    ///
    /// # Errors
    /// [`Error::Fs`] (op `remove_dir_all`; kind `NotFound`, `NotADirectory`,
    /// `PermissionDenied`); as for [`exec`](Session::exec).
    pub fn remove_dir_all(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let mut script = Script::new();
        let p = script.path("path", "__bx_p", path)?;
        let body = format!(
            "{}{}\\command rm -rf -- {p}",
            must_exist(&there(&p), &p),
            unless(&format!("\\command [ -L {p} ] || \\command [ -d {p} ]"), ErrorKind::NotADirectory),
        );
        self.fs_run("remove_dir_all", path, script.with(&body), 4096).map(drop)
    }

    /// Writes `data` to the file `path` in the container (created or truncated), creating its
    /// missing parent directories first. Up to 8 KiB go with the command; more goes through a
    /// second exec while the command runs, copied from `data` a piece at a time (never all at
    /// once, as [`Cmd::stdin`](super::Cmd::stdin) would take it). The session's idle timeout
    /// does not apply (nothing is printed while the file is written); its command timeout does.
    ///
    /// # Errors
    /// [`Error::Fs`] (op `write_file`; kind `IsADirectory`, `NotADirectory` when a parent is
    /// a file, `PermissionDenied`, ...); as for [`exec`](Session::exec).
    pub fn write_file(&mut self, path: impl AsRef<Path>, data: &[u8]) -> Result<()> {
        let path = path.as_ref();
        let mut script = Script::new();
        let p = script.path("path", "__bx_p", path)?;
        let mut body = unless(&format!("! \\command [ -d {p} ]"), ErrorKind::IsADirectory);
        if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            let d = script.path("path", "__bx_d", parent)?;
            body.push_str(&format!(
                "\\command [ -d {d} ] || {{ {}\\command mkdir -p -- {d} || \\command exit; }}; ",
                unless(&format!("! {{ {}; }}", there(&d)), ErrorKind::NotADirectory)
            ));
        }
        body.push_str(&format!("\\command cat >| {p}"));
        let cat = self.cmd(script.with(&body)).max_output(64 << 10).idle_timeout(None);
        let out = if data.len() <= driver::INLINE_STDIN {
            cat.stdin(data).run()?
        } else {
            // Written from `data` a piece at a time, not from a copy of all of it.
            let mut running = cat.interactive().start(true)?;
            match running.write_stdin(data).and_then(|()| running.close_stdin()) {
                Ok(()) => running.wait()?,
                // The script ended first (a check failed, `cat` could not open the file): its
                // error, not the broken input.
                Err(Error::CommandEnded { output }) => *output,
                Err(e) => return Err(e),
            }
        };
        let out = take_code(out);
        if out.timed_out || out.exit_code != 0 {
            return Err(fs_error("write_file", path, &out));
        }
        Ok(())
    }

    /// Reads the file `path` in the container.
    ///
    /// # Errors
    /// [`Error::Fs`] (op `read_file`; kind `NotFound`, `IsADirectory`, `PermissionDenied`),
    /// [`Error::FileTooLarge`] when it holds more than the output cap, or as for
    /// [`exec`](Session::exec).
    pub fn read_file(&mut self, path: impl AsRef<Path>) -> Result<Vec<u8>> {
        let path = path.as_ref();
        let mut script = Script::new();
        let p = script.path("path", "__bx_p", path)?;
        let body = format!(
            "{}{}\\command cat -- {p}",
            must_exist(&format!("\\command [ -e {p} ]"), &p),
            unless(&format!("! \\command [ -d {p} ]"), ErrorKind::IsADirectory),
        );
        let cap = self.max_output;
        let out = self.fs_run("read_file", path, script.with(&body), cap)?;
        if out.truncated {
            return Err(Error::FileTooLarge { path: path.to_string_lossy().into_owned(), max_output: cap });
        }
        Ok(out.stdout)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::ffi::OsStrExt;

    use super::*;
    use crate::fs::FileKind;

    #[test]
    fn listings_parse_names_of_any_bytes_and_skip_what_stat_missed() {
        let mut out = Vec::new();
        for name in [&b"a b"[..], b"*", b"new\nline", b"\xff-x", b"gone", b".hidden"] {
            out.extend_from_slice(name);
            out.push(0);
        }
        out.push(b'/');
        out.extend_from_slice(b"81a4 5 10 a b\n41ed 4096 11 new\nline\n81a4 0 12 \xff-x\n81a4 1 13 .hidden\n");
        let entries = parse_listing(&out);
        let seen: Vec<_> = entries.iter().map(|e| (e.name.as_bytes(), e.kind, e.len)).collect();
        assert_eq!(
            seen,
            [
                (&b".hidden"[..], FileKind::File, 1),
                (b"a b", FileKind::File, 5),
                (b"new\nline", FileKind::Dir, 4096),
                (b"\xff-x", FileKind::File, 0),
            ]
        );
        assert_eq!(parse_listing(b"*\0.[!.]*\0..?*\0/"), []);
    }

    #[test]
    fn the_exit_code_is_taken_from_the_end_of_stderr() {
        let out = |stderr: &[u8]| Output {
            stdout: Vec::new(),
            stderr: stderr.to_vec(),
            exit_code: 0,
            timed_out: false,
            truncated: false,
            stdout_gap: None,
            stderr_gap: None,
            duration: std::time::Duration::ZERO,
            command: String::new(),
        };
        let took = |stderr: &[u8]| {
            let o = take_code(out(stderr));
            (o.stderr, o.exit_code)
        };
        assert_eq!(took(b"mv: no\n\x1f1"), (b"mv: no".to_vec(), 1));
        assert_eq!(took(b"\n\x1f90"), (Vec::new(), 90));
        assert_eq!(took(b""), (Vec::new(), 0));
        assert_eq!(took(b"a\x1f1"), (b"a\x1f1".to_vec(), 0));
        assert_eq!(took(b"\x1f1"), (b"\x1f1".to_vec(), 0));
    }

    #[test]
    fn failures_name_their_kind() {
        let out = |code, stderr: &str| Output {
            stdout: Vec::new(),
            stderr: stderr.into(),
            exit_code: code,
            timed_out: false,
            truncated: false,
            stdout_gap: None,
            stderr_gap: None,
            duration: std::time::Duration::ZERO,
            command: String::new(),
        };
        let kind = |o: Output| match fs_error("op", Path::new("/p"), &o) {
            Error::Fs { kind, .. } => kind,
            e => panic!("{e:?}"),
        };
        assert_eq!(kind(out(90, "")), ErrorKind::NotFound);
        assert_eq!(kind(out(93, "")), ErrorKind::AlreadyExists);
        assert_eq!(kind(out(1, "mv: cannot move 'a' to 'b': Directory not empty")), ErrorKind::DirectoryNotEmpty);
        assert_eq!(kind(out(1, "sh: can't create /x: Permission denied")), ErrorKind::PermissionDenied);
        assert_eq!(kind(out(1, "something else")), ErrorKind::Other);
        let timed_out = Output { timed_out: true, ..out(137, "") };
        assert_eq!(kind(timed_out), ErrorKind::TimedOut);
        let shown = fs_error("read_dir", Path::new("/nope"), &out(90, "")).to_string();
        assert_eq!(shown, "read_dir `/nope`: No such file or directory");
    }
}
