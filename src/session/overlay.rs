//! A command's own environment variables and working directory ([`Cmd::env`],
//! [`Cmd::workdir`]): the shell text that runs the command in a subshell with them, so the
//! session's cwd and environment are as they were afterwards, while its functions, aliases and
//! unexported variables are there for the command. No I/O.
//!
//! [`Cmd::env`]: super::Cmd::env
//! [`Cmd::workdir`]: super::Cmd::workdir

use std::ffi::OsString;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::protocol::{REFUSED, Refusal};
use crate::error::{Error, Result};
use crate::text::{self, assign_into, quote_into};

/// The shell variable a workdir that is not UTF-8 is put in first.
const WORKDIR_VAR: &str = "__boxshell_workdir";

/// What a command runs with on top of the session.
#[derive(Debug, Clone, Default)]
pub(crate) struct Overlay {
    pub(crate) vars: Vec<(String, OsString)>,
    pub(crate) workdir: Option<PathBuf>,
}

impl Overlay {
    pub(crate) fn is_empty(&self) -> bool {
        self.vars.is_empty() && self.workdir.is_none()
    }

    /// Checks names and values: a variable name a shell can export, no NUL anywhere.
    pub(crate) fn check(&self) -> Result<()> {
        for (key, value) in &self.vars {
            text::env_var(key, "", true)?;
            if value.as_bytes().contains(&0) {
                return Err(Error::InvalidValue { what: "environment value", reason: "it contains a NUL byte" });
            }
        }
        self.workdir.as_deref().map_or(Ok(()), |dir| text::path("workdir", dir))
    }

    /// `command` as shell text that runs it in a subshell with these variables exported and
    /// in this directory. A directory that cannot be entered is checked first, by the session's
    /// shell: it then runs nothing and sets [`REFUSED`] to why.
    pub(crate) fn wrap(&self, command: &str) -> String {
        self.wrap_with(command, |body| format!("( {body} )"))
    }

    /// As [`wrap`](Overlay::wrap), with the subshell made by `launch` from its body: the
    /// directory entered, the variables exported, then `command` (the body needs a subshell
    /// of its own, as it changes the shell it runs in).
    ///
    /// Under the session's `set -x`, only `command` is traced: not the checks, the `cd` or the
    /// variables' values (which may be secrets). Under bash's `set -v`, only `command` is
    /// echoed: [`QUIET`] comes first, and the rest is one compound command, parsed after it.
    pub(crate) fn wrap_with(&self, command: &str, launch: impl FnOnce(&str) -> String) -> String {
        let mut text = String::with_capacity(command.len() + 200);
        text.push_str(QUIET);
        let dir = self.workdir.as_ref().map(|dir| text::path_word(&mut text, WORKDIR_VAR, dir));
        let mut body = String::with_capacity(command.len() + 100);
        body.push_str(QUIET);
        if let Some(dir) = &dir {
            let _ = write!(body, "\\command cd -- {dir} || \\command exit; ");
        }
        for (key, value) in &self.vars {
            assign_into(&mut body, key, value.as_bytes());
            let _ = write!(body, "\\command export {key}; ");
        }
        body.push_str(TRACE_AGAIN);
        body.push_str("\\command eval ");
        quote_into(&mut body, command);
        let Some(dir) = &dir else {
            let _ = write!(text, "{{ {TRACE_AGAIN}{}; }}", launch(&body));
            return text;
        };
        // The nearest of the path and its ancestors that exists tells why a missing path
        // cannot be entered: it is under a file, under a directory that may not be searched,
        // or not there.
        let _ = write!(
            text,
            "__bx_p={dir}; while ! \\command [ -e \"$__bx_p\" ]; do \
             case $__bx_p in */*) __bx_p=${{__bx_p%/*}} ;; *) __bx_p=. ;; esac; \
             \\command [ -n \"$__bx_p\" ] || __bx_p=/; case $__bx_p in /|.) break ;; esac; done; \
             if ! \\command [ -d \"$__bx_p\" ]; then {REFUSED}={}; \
             elif ! \\command [ -x \"$__bx_p\" ]; then {REFUSED}={}; \
             elif \\command [ \"$__bx_p\" != {dir} ]; then {REFUSED}={}; fi; \\command unset __bx_p; \
             if \\command [ -n \"${{{REFUSED}-}}\" ]; then {TRACE_AGAIN}else {TRACE_AGAIN}",
            Refusal::NotADirectory.word(),
            Refusal::PermissionDenied.word(),
            Refusal::NotFound.word(),
        );
        text.push_str(&launch(&body));
        text.push_str("; fi");
        text
    }
}

/// Turns `xtrace` and `verbose` off, silently (its own trace goes to /dev/null), noting
/// whether they were on. Under bash's `set -v`, the shell text that starts with it is echoed
/// from the next command on only if that text turns `verbose` on again.
pub(super) const QUIET: &str = "{ __bx_x=$-; \\command set +xv; } 2>/dev/null; ";

/// Turns `verbose` and `xtrace` back on if [`QUIET`] found them on; `xtrace` last, as bash
/// traces a `case` after it.
pub(super) const TRACE_AGAIN: &str =
    "case $__bx_x in *v*) \\command set -v ;; esac; case $__bx_x in *x*) \\command set -x ;; esac; ";

impl Refusal {
    /// The error for a command not run because its working directory `dir` could not be
    /// entered.
    pub(crate) fn error(self, dir: String) -> Error {
        let (kind, message) = match self {
            Refusal::NotFound => (std::io::ErrorKind::NotFound, "no such directory; the command was not run"),
            Refusal::NotADirectory => (std::io::ErrorKind::NotADirectory, "not a directory; the command was not run"),
            Refusal::PermissionDenied => {
                (std::io::ErrorKind::PermissionDenied, "permission denied; the command was not run")
            }
        };
        Error::Fs { op: "workdir", path: dir, kind, message: message.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::ffi::OsStringExt;
    use std::process::Command;

    use super::*;

    /// Runs `overlay.wrap(command)` in `sh` from `cwd`, then prints what the session would see.
    fn run(sh: &str, overlay: &Overlay, command: &str, cwd: &std::path::Path) -> (Vec<u8>, String) {
        let script =
            format!("{}; printf '|%s|%s|%s' \"$?\" \"${{{REFUSED}-}}\" \"${{A-unset}}\"", overlay.wrap(command));
        let out = Command::new(sh).arg("-c").arg(&script).current_dir(cwd).output().unwrap();
        let at = out.stdout.iter().position(|&b| b == b'|').unwrap_or(out.stdout.len());
        let (ran, after) = out.stdout.split_at(at);
        (ran.to_vec(), String::from_utf8_lossy(after.get(1..).unwrap_or_default()).into_owned())
    }

    #[test]
    fn variables_and_directory_reach_the_command_only() {
        let dir = std::env::temp_dir().join(format!("bx-overlay-{}", std::process::id()));
        let odd = dir.join(OsString::from_vec(b"sp ace\n-\xff".to_vec()));
        std::fs::create_dir_all(&odd).unwrap();
        std::fs::write(dir.join("file"), "").unwrap();
        let value = OsString::from_vec(b"q'\"$(id)`x`\n\xfe\n".to_vec());
        for sh in ["dash", "bash"] {
            let overlay = Overlay { vars: vec![("A".into(), value.clone())], workdir: Some(odd.clone()) };
            let (ran, after) = run(sh, &overlay, "printf '%s@' \"$A\"; pwd; exit 3", &dir);
            let mut want = value.as_bytes().to_vec();
            want.push(b'@');
            want.extend_from_slice(odd.as_os_str().as_bytes());
            want.push(b'\n');
            assert_eq!(ran, want, "{sh}");
            assert_eq!(after, "3||unset", "{sh}");
            // Relative to the session's cwd, not found through $CDPATH.
            let relative = Overlay { workdir: Some("file".into()), ..Overlay::default() };
            let (ran, after) = run(sh, &relative, "echo ran", &dir);
            assert_eq!((ran.as_slice(), after.as_str()), (&b""[..], "0|ENOTDIR|unset"), "{sh}");
            let missing = Overlay { workdir: Some(dir.join("nope")), ..Overlay::default() };
            let (ran, after) = run(sh, &missing, "echo ran", &dir);
            assert_eq!((ran.as_slice(), after.as_str()), (&b""[..], "0|ENOENT|unset"), "{sh}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn under_xtrace_only_the_command_is_traced() {
        let dir = std::env::temp_dir();
        for sh in ["dash", "bash"] {
            for workdir in [None, Some(dir.clone())] {
                let overlay = Overlay { vars: vec![("A".into(), "s3cret".into())], workdir };
                let script = format!("set -x; {}; echo \"after:$-\" >&2", overlay.wrap("echo \"${#A}\""));
                let out = Command::new(sh).arg("-c").arg(&script).output().unwrap();
                let err = String::from_utf8_lossy(&out.stderr);
                assert_eq!(out.stdout, b"6\n", "{sh}");
                assert!(!err.contains("s3cret") && !err.contains("cd") && !err.contains("[ "), "{sh}: {err}");
                assert!(err.contains("echo 6") && err.contains("after:") && err.contains('x'), "{sh}: {err}");
                assert!(err.lines().last().is_some_and(|l| l.contains('x')), "{sh}: xtrace is on after: {err}");
            }
        }
    }

    #[test]
    fn bad_names_and_values_are_refused_before_anything_runs() {
        let bad = [
            Overlay { vars: vec![("1A".into(), "x".into())], workdir: None },
            Overlay { vars: vec![("A".into(), OsString::from_vec(b"a\0b".to_vec()))], workdir: None },
            Overlay { vars: vec![], workdir: Some("".into()) },
            Overlay { vars: vec![], workdir: Some(OsString::from_vec(b"/a\0b".to_vec()).into()) },
        ];
        for overlay in bad {
            assert!(overlay.check().is_err(), "{overlay:?}");
        }
    }
}
