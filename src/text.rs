//! Shell text and the names boxshell accepts: the bottom layer, used by every other module.
//!
//! Everything that puts a value into shell text quotes it with [`quote`]; everything that puts
//! a name on a command line checks it here first, so that no name can be read as an option and
//! no value can end a line early.

use std::fmt::Write as _;

use crate::error::{Error, Result};

/// Quotes `s` for a POSIX shell, so that the shell reads it back as exactly one word.
///
/// ```
/// assert_eq!(boxshell::quote("it's $HOME"), r#"'it'\''s $HOME'"#);
/// assert_eq!(boxshell::quote(""), "''");
/// ```
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    quote_into(&mut out, s);
    out
}

/// Appends `s`, quoted as [`quote`] does, to `out`.
pub(crate) fn quote_into(out: &mut String, s: &str) {
    out.push('\'');
    let mut rest = s;
    while let Some(at) = rest.find('\'') {
        out.push_str(&rest[..at]);
        out.push_str(r"'\''");
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
    out.push('\'');
}

/// Appends a `printf` format (without its quotes) that prints `bytes` exactly, NUL included:
/// printable ASCII as itself, the rest as octal escapes.
pub(crate) fn printf_format_into(out: &mut String, bytes: &[u8]) {
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'%' => out.push_str("%%"),
            b'\\' => out.push_str("\\\\"),
            b'\'' => out.push_str("\\047"),
            // A format starting with `-` is an option to dash's and bash's printf.
            b'-' if i == 0 => out.push_str("\\055"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b:03o}");
            }
        }
    }
}

/// Appends shell text that sets the shell variable `var` to `value`, byte for byte (any bytes
/// but NUL): a quoted word when `value` is UTF-8, else the output of a `printf` (one fork).
/// The text ends in `; `.
pub(crate) fn assign_into(out: &mut String, var: &str, value: &[u8]) {
    out.push_str(var);
    out.push('=');
    match std::str::from_utf8(value) {
        Ok(s) => quote_into(out, s),
        Err(_) => {
            // `$(...)` drops trailing newlines: an `x` after the value keeps them.
            out.push_str("$(\\command printf '");
            printf_format_into(out, value);
            let _ = write!(out, "x'); {var}=${{{var}%x}}");
        }
    }
    out.push_str("; ");
}

/// `path` as a shell word, any bytes but NUL: quoted when it is UTF-8, else the variable `var`,
/// which the text appended to `prelude` sets. A relative path starts with `./`, so that no
/// tool reads it as an option and `cd` does not search `$CDPATH` for it.
pub(crate) fn path_word(prelude: &mut String, var: &str, path: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    let bytes = if bytes.starts_with(b"/") { bytes.to_vec() } else { [b"./", bytes].concat() };
    match String::from_utf8(bytes) {
        Ok(path) => quote(&path),
        Err(e) => {
            assign_into(prelude, var, e.as_bytes());
            format!("\"${var}\"")
        }
    }
}

/// Checks a path going to a shell: not empty, no NUL byte. `what` names it in the error.
pub(crate) fn path(what: &'static str, path: &std::path::Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    let reason = if bytes.is_empty() {
        "it is empty"
    } else if bytes.contains(&0) {
        "it contains a NUL byte"
    } else {
        return Ok(());
    };
    Err(Error::InvalidValue { what, reason })
}

/// Checks that a value going to a shell or a CLI holds no NUL byte (which would cut it short).
/// `what` names the value in the error; the value itself is never shown (it may be a secret).
pub(crate) fn no_nul(what: &'static str, value: &str) -> Result<()> {
    if value.contains('\0') { Err(Error::InvalidValue { what, reason: "it contains a NUL byte" }) } else { Ok(()) }
}

/// Checks a name made of ASCII letters, digits and `extra`, starting with a letter or digit:
/// such a name cannot be read as an option, and needs no quoting.
fn plain_name(what: &'static str, name: &str, extra: &[u8], reason: &'static str) -> Result<()> {
    let ok = name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || extra.contains(&b));
    if ok { Ok(()) } else { Err(Error::InvalidName { what, value: name.to_string(), reason }) }
}

/// Checks a container name or id before it goes on a command line.
pub(crate) fn container_name(name: &str) -> Result<()> {
    plain_name(
        "container name",
        name,
        b"_.-",
        "a container name holds only ASCII letters, digits, `_`, `.` and `-`, and starts with a letter or digit",
    )
}

/// Checks a pod name, or a kubectl `TYPE/NAME`, as a session's target.
pub(crate) fn pod_name(target: &str) -> Result<()> {
    plain_name(
        "target",
        target,
        b"-._/",
        "a pod name holds letters, digits, `-`, `.` (and `/` in TYPE/NAME), and starts with a letter or digit",
    )
}

/// Checks one word for a command line that cannot be read as an option: not empty, no white
/// space or control characters, not starting with `-` (a custom CLI's target, a shell).
pub(crate) fn word(what: &'static str, value: &str) -> Result<()> {
    if value.is_empty() || value.starts_with('-') || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        let reason = "it must be non-empty, hold no white space or control characters, and not start with `-`";
        return Err(Error::InvalidName { what, value: value.to_string(), reason });
    }
    Ok(())
}

/// Checks a target that a remote shell may read (`ssh host docker exec -i {target}`): a word
/// of only what no shell gives a meaning to: ASCII letters, digits and `_.-@:/%+,=`, starting
/// with a letter or digit.
pub(crate) fn remote_word(what: &'static str, value: &str) -> Result<()> {
    plain_name(
        what,
        value,
        b"_.-@:/%+,=",
        "a remote shell may read it: it holds only ASCII letters, digits and `_.-@:/%+,=`, and starts with a letter or digit",
    )
}

/// Checks a session name: of a tmux session, or of a session the `Ops` facade defines.
pub(crate) fn session_name(name: &str) -> Result<()> {
    plain_name(
        "session name",
        name,
        b"_-",
        "a session name holds ASCII letters, digits, `_` and `-`, and starts with a letter or digit",
    )
}

/// Checks an environment variable: a name that is not empty and holds no `=` or NUL (what
/// `execve` takes), and a value without NUL. With `shell`, the name must also be one a shell
/// can `export`: ASCII letters, digits and `_`, not starting with a digit.
pub(crate) fn env_var(key: &str, value: &str, shell: bool) -> Result<()> {
    let reason = if key.is_empty() || key.contains(['=', '\0']) {
        Some("a name must be non-empty and hold no `=` or NUL")
    } else if shell
        && !(key.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    {
        Some("a shell variable name holds ASCII letters, digits and `_`, and does not start with a digit")
    } else {
        None
    };
    if let Some(reason) = reason {
        return Err(Error::InvalidName { what: "environment variable name", value: key.to_string(), reason });
    }
    no_nul("environment value", value)
}

/// Environment variables as `Debug` shows them everywhere in the crate: their names, never
/// their values (which are secrets until proven otherwise).
pub(crate) struct EnvNames<'a, K, V>(pub &'a [(K, V)]);

impl<K: std::fmt::Debug, V> std::fmt::Debug for EnvNames<'_, K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(k, _)| k)).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_round_trips_through_sh() {
        for s in ["", "plain", "it's", "'", "''", "a b\tc\nd", "$(echo x) `y` \\ \"z\" *", "é\u{1f600}"] {
            let out =
                std::process::Command::new("sh").arg("-c").arg(format!("printf %s {}", quote(s))).output().unwrap();
            assert_eq!(out.stdout, s.as_bytes(), "{s:?}");
        }
    }

    #[test]
    fn assignments_keep_every_byte_but_nul() {
        let values: [&[u8]; 6] =
            [b"", b"plain", b"it's $(id) `x` \\ %s\n\n", b"\xff\xfe-\n", b"-x\x80", "é".as_bytes()];
        for value in values {
            let mut script = String::new();
            assign_into(&mut script, "v", value);
            script.push_str("printf %s \"$v\"");
            for sh in ["dash", "bash"] {
                let out = std::process::Command::new(sh).arg("-c").arg(&script).output().unwrap();
                assert_eq!(out.stdout, value, "{sh}: {script}");
            }
        }
    }

    #[test]
    fn names_are_checked() {
        for ok in ["web", "a", "web-1.prod_x", "3f2a9c"] {
            container_name(ok).unwrap();
        }
        for bad in ["", "-it", "--rm", "a b", "x;y", "$(id)", "a\nb", "é", ".x", "a/b"] {
            assert!(matches!(container_name(bad), Err(Error::InvalidName { .. })), "{bad:?}");
        }
        for ok in ["web", "a_b-1", "3"] {
            session_name(ok).unwrap();
        }
        for bad in ["", "-x", "a.b", "a:b", "a b", "_x", "é"] {
            assert!(matches!(session_name(bad), Err(Error::InvalidName { .. })), "{bad:?}");
        }
    }

    #[test]
    fn environment_is_checked() {
        for (key, value) in [("A", ""), ("lower.dots-ok", "spaces $(id) 'quotes'\n")] {
            env_var(key, value, false).unwrap();
        }
        for (key, value) in [("", "x"), ("A=B", "x"), ("A\0", "x")] {
            assert!(matches!(env_var(key, value, false), Err(Error::InvalidName { .. })), "{key:?}={value:?}");
        }
        assert!(matches!(env_var("A", "x\0y", false), Err(Error::InvalidValue { .. })));
        env_var("_A1", "x", true).unwrap();
        for key in ["1A", "lower.dots-ok", "A-B", "A B"] {
            assert!(matches!(env_var(key, "x", true), Err(Error::InvalidName { .. })), "{key:?}");
        }
        let err = env_var("SECRET", "hunter2\0", true).unwrap_err().to_string();
        assert!(!err.contains("hunter2") && err.contains("environment value"), "{err}");
    }
}
