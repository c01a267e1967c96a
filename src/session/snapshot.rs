//! A shell's state carried over: [`Session::snapshot`] and [`Session::restore`], and
//! [`ShellState`], which is also a shell script that rebuilds it.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use super::Session;
use crate::error::{Error, Result};
use crate::text::{assign_into, quote_into};

/// What a shell had built up, as [`Session::snapshot`] takes it and [`Session::restore`] (or
/// [`SessionBuilder::restore`](super::SessionBuilder::restore)) applies it to another
/// session, possibly of another shell or in another container.
///
/// | what | bash | dash, busybox ash |
/// |---|---|---|
/// | working directory (`$PWD`) | yes | yes |
/// | exported variables, values of any bytes but NUL | yes | yes |
/// | unexported shell variables | yes, but arrays (their first element only) | yes |
/// | functions | yes (`declare -f`) | no: these shells cannot list them |
/// | aliases | yes | yes |
/// | `set -o` options | allexport, errexit, noclobber, noglob, nounset, pipefail, verbose, xtrace, errtrace, functrace, physical, posix | those the shell has |
/// | umask | yes | yes |
///
/// Never captured: the shell's own special variables (`PWD`, `OLDPWD`, `RANDOM`, `LINENO`,
/// `SECONDS`, `PPID`, `_`, `BASH_*`, `SHELLOPTS`, `IFS`, the prompts, ...), readonly
/// variables, bash's `shopt` options, background jobs, open file descriptors and traps.
///
/// ```
/// # fn main() -> boxshell::Result<()> {
/// use boxshell::{Runtime, Session, ShellState};
/// let mut sh = Session::builder("-").runtime(Runtime::Local).open()?;
/// sh.exec("cd /tmp; export MODE=fast; count=3; alias ll='ls -l'; umask 027")?;
/// let state = sh.snapshot()?;
/// let text = state.to_script();
/// assert_eq!(ShellState::from_script(&text)?, state);
/// let mut fresh = Session::builder("-").runtime(Runtime::Local).restore(state).open()?;
/// assert_eq!(fresh.exec("pwd; echo $MODE $count; umask; alias ll")?.stdout, b"/tmp\nfast 3\n0027\nll='ls -l'\n");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShellState {
    cwd: PathBuf,
    umask: Option<String>,
    options: Vec<(String, bool)>,
    exported: Vec<(String, OsString)>,
    variables: Vec<(String, OsString)>,
    aliases: Vec<(String, String)>,
    functions: Option<String>,
}

/// What [`Session::restore`] could not apply, each as `KIND NAME` (`option pipefail`,
/// `variable PATH`, `alias ll`, `functions`, `cwd`, `umask`); empty when all of it was.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restored {
    /// What was left out.
    pub missed: Vec<String>,
}

/// The options a snapshot keeps (the session's own, as `interactive` or `monitor`, are not
/// the user's).
const OPTIONS: &[&str] = &[
    "allexport",
    "errexit",
    "noclobber",
    "noglob",
    "nounset",
    "pipefail",
    "verbose",
    "xtrace",
    "errtrace",
    "functrace",
    "physical",
    "posix",
];

/// Variables a snapshot never takes: the shell's own, and boxshell's.
fn special(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "PWD",
        "OLDPWD",
        "RANDOM",
        "SRANDOM",
        "LINENO",
        "SECONDS",
        "PPID",
        "_",
        "IFS",
        "PS1",
        "PS2",
        "PS4",
        "OPTIND",
        "OPTARG",
        "OPTERR",
        "HISTCMD",
        "EPOCHREALTIME",
        "EPOCHSECONDS",
        "SHELLOPTS",
        "BASHOPTS",
        "BASHPID",
        "DIRSTACK",
        "EUID",
        "UID",
        "GROUPS",
        "FUNCNAME",
        "PIPESTATUS",
        "HOSTTYPE",
        "MACHTYPE",
        "OSTYPE",
        "SHLVL",
        "COLUMNS",
        "LINES",
        "HISTFILE",
        "HISTSIZE",
        "HISTFILESIZE",
        "MAILCHECK",
        "ENV",
        "COMP_WORDBREAKS",
    ];
    NAMES.contains(&name)
        || name.starts_with("BASH_")
        || name == "BASH"
        || name.starts_with("__bx")
        || name.starts_with("__boxshell")
        || name.starts_with("BOXSHELL_")
}

/// The command that prints a session's state as NUL-separated records, with built-ins only
/// but for the subshells of `$(...)` (a program started would cost a millisecond or more, and
/// fails to start when an exported value is over Linux's 128 KiB a string). bash lists its
/// variables with `compgen -v` and tells exported ones by their attributes; dash and busybox
/// from `set` and `export -p`, whose lines a value of many lines may imitate: only names set
/// in the shell count. All of it runs in a subshell, so that nothing the session's shell has
/// set changes it or is changed by it: `errexit` and `nounset` (which would end the shell
/// at the first unset name), `allexport` (which would export `IFS`), the user's aliases
/// (gone before the listing is parsed, as `eval` parses it only then) and functions
/// (`\command` passes them by).
const DUMP: &str = r#"(\command printf 'cwd\0%s\0umask\0' "${PWD-}"; \command umask
\command printf '\0options\0'; \command set +o
\command printf '\0aliases\0'; \command alias
\command printf '\0readonly\0'; \command readonly -p
\command printf '\0'
\command set +euavx -f
\command unalias -a 2>/dev/null
\command eval 'IFS="
"
if \command [ -n "${BASH_VERSION-}" ]; then
    \command printf "functions\0"
    for __bx_n in $(\command compgen -A function); do
        case $__bx_n in __boxshell*) ;; *) \command declare -f -- "$__bx_n" ;; esac
    done
    \command printf "\0"
    for __bx_n in $(\command compgen -v); do
        \command eval "__bx_a=\${$__bx_n@a}"
        case $__bx_a in *x*) __bx_k=env ;; *) __bx_k=var ;; esac
        \command eval "\command [ -n \"\${$__bx_n+x}\" ] && \command printf \"%s\\0%s\\0%s\\0\" \$__bx_k \"\$__bx_n\" \"\${$__bx_n}\""
    done
else
    __bx_e=" "
    for __bx_l in $(\command export -p); do
        case $__bx_l in "export "[A-Za-z_]*) __bx_l=${__bx_l#export } && __bx_e="$__bx_e${__bx_l%%=*} " ;; esac
    done
    for __bx_l in $(\command set); do
        case $__bx_l in [A-Za-z_]*=*) ;; *) continue ;; esac
        __bx_n=${__bx_l%%=*}
        case $__bx_n in *[!A-Za-z0-9_]*) continue ;; esac
        case $__bx_e in *" $__bx_n "*) __bx_k=env ;; *) __bx_k=var ;; esac
        \command eval "\command [ -n \"\${$__bx_n+x}\" ] && \command printf \"%s\\0%s\\0%s\\0\" \$__bx_k \"\$__bx_n\" \"\${$__bx_n}\""
    done
fi'; \command true)"#;

impl Session {
    /// The state of this session's shell: cwd, variables, functions, aliases, options, umask
    /// (see [`ShellState`] for what each shell gives). One command of the session.
    ///
    /// # Errors
    /// As for [`exec`](Session::exec); [`Error::Io`] when the shell's answer cannot be read.
    pub fn snapshot(&mut self) -> Result<ShellState> {
        let out = self.exec(DUMP)?;
        let bad = |what: &str| {
            let message = format!("the state the shell printed: {what}");
            Error::io(format!("{}: taking a snapshot", self.target), std::io::Error::other(message))
        };
        if out.exit_code != 0 || out.truncated {
            return Err(bad(&format!("exit code {}, {}", out.exit_code, out.stderr_str())));
        }
        ShellState::parse_dump(&out.stdout).ok_or_else(|| bad("not in the form asked for"))
    }

    /// Applies `state` to this session's shell, in one command: what it could not apply
    /// (an option the shell lacks, a readonly variable, functions written for another shell)
    /// is reported, the rest applied. Options come last, so that `errexit` or `nounset`
    /// cannot stop the rest.
    ///
    /// # Errors
    /// As for [`exec`](Session::exec).
    pub fn restore(&mut self, state: &ShellState) -> Result<Restored> {
        let out = self.exec(&state.restore_script())?;
        let missed = out.stdout_str().split('\n').filter(|l| !l.is_empty()).map(str::to_string).collect();
        Ok(Restored { missed })
    }
}

impl ShellState {
    /// The working directory.
    pub fn cwd(&self) -> &std::path::Path {
        &self.cwd
    }

    /// The umask, in octal as `umask` prints it.
    pub fn umask(&self) -> Option<&str> {
        self.umask.as_deref()
    }

    /// The `set -o` options kept, each with whether it is on.
    pub fn options(&self) -> &[(String, bool)] {
        &self.options
    }

    /// The exported variables.
    pub fn exported(&self) -> &[(String, OsString)] {
        &self.exported
    }

    /// The shell variables that are not exported.
    pub fn variables(&self) -> &[(String, OsString)] {
        &self.variables
    }

    /// The aliases, name and value.
    pub fn aliases(&self) -> &[(String, String)] {
        &self.aliases
    }

    /// The functions' definitions as the shell printed them; `None` when the shell cannot
    /// list its functions (dash, busybox ash).
    pub fn functions(&self) -> Option<&str> {
        self.functions.as_deref()
    }

    fn parse_dump(stdout: &[u8]) -> Option<ShellState> {
        let mut state = ShellState::default();
        let mut readonly = Vec::new();
        let mut fields = stdout.split(|&b| b == 0);
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        while let Some(kind) = fields.next() {
            match kind {
                b"" => continue,
                b"var" | b"env" => {
                    let (name, value) = (text(fields.next()?), fields.next()?);
                    let list = if kind == b"env" { &mut state.exported } else { &mut state.variables };
                    list.push((name, OsString::from_vec(value.to_vec())));
                    continue;
                }
                _ => {}
            }
            let value = fields.next()?;
            match kind {
                b"cwd" => state.cwd = PathBuf::from(OsString::from_vec(value.to_vec())),
                b"umask" => state.umask = Some(text(value).trim().to_string()).filter(|u| !u.is_empty()),
                b"options" => state.options = parse_options(&text(value)),
                b"aliases" => state.aliases = parse_aliases(&text(value)),
                b"readonly" => readonly = readonly_names(&text(value)),
                b"functions" => state.functions = Some(text(value).trim_end_matches('\n').to_string()),
                _ => return None,
            }
        }
        let keep = |(name, _): &(String, OsString)| !special(name) && !readonly.contains(name) && valid_name(name);
        state.exported.retain(keep);
        state.exported.sort();
        state.exported.dedup_by(|a, b| a.0 == b.0);
        state.variables.retain(keep);
        state.variables.sort();
        state.variables.dedup_by(|a, b| a.0 == b.0);
        Some(state)
    }

    /// The state as a shell script that rebuilds it in a POSIX shell (bash, dash, busybox
    /// ash); also the form [`from_script`](ShellState::from_script) reads back.
    pub fn to_script(&self) -> String {
        let mut s = String::from("# boxshell shell state 1\n");
        if self.functions.is_none() {
            s.push_str("# functions: not captured (the shell cannot list them)\n");
        }
        s.push_str("cd -- ");
        quote_into(&mut s, &String::from_utf8_lossy(self.cwd.as_os_str().as_bytes()));
        s.push('\n');
        if let Some(umask) = &self.umask {
            let _ = writeln!(s, "umask {umask}");
        }
        for (name, value) in &self.exported {
            assign_into(&mut s, name, value.as_bytes());
            let _ = writeln!(s, "export {name}");
        }
        for (name, value) in &self.variables {
            assign_into(&mut s, name, value.as_bytes());
            s.push('\n');
        }
        for (name, value) in &self.aliases {
            let _ = write!(s, "alias {name}=");
            quote_into(&mut s, value);
            s.push('\n');
        }
        for (name, on) in &self.options {
            let _ = writeln!(s, "set {}o {name}", if *on { '-' } else { '+' });
        }
        if let Some(functions) = &self.functions {
            s.push_str(FUNCTIONS);
            s.push_str(functions);
            s.push('\n');
        }
        s
    }

    /// Reads a state back from [`to_script`](ShellState::to_script)'s text.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] when the text is not in that form.
    pub fn from_script(script: &str) -> Result<ShellState> {
        let bad =
            || Error::InvalidValue { what: "shell state", reason: "not a script written by ShellState::to_script" };
        if !script.starts_with("# boxshell shell state 1\n") {
            return Err(bad());
        }
        let mut state = ShellState::default();
        let mut words = Words { rest: script };
        loop {
            // The word as written, quotes and all: a value's text cannot pass for the script's own.
            let raw = words.rest.trim_start_matches([' ', '\t', '\n', ';']);
            let Some(first) = words.next_word() else { break };
            match first.as_str() {
                _ if raw.starts_with(FUNCTIONS) => {
                    let functions = &raw[FUNCTIONS.len()..];
                    state.functions = Some(functions.strip_suffix('\n').unwrap_or(functions).to_string());
                    break;
                }
                w if w.starts_with('#') => words.skip_line(),
                "cd" => {
                    words.next_word().filter(|w| w == "--").ok_or_else(bad)?;
                    state.cwd = PathBuf::from(words.next_word().ok_or_else(bad)?);
                }
                "umask" => state.umask = Some(words.next_word().ok_or_else(bad)?),
                "set" => {
                    let flag = words.next_word().ok_or_else(bad)?;
                    let name = words.next_word().ok_or_else(bad)?;
                    state.options.push((name, flag == "-o"));
                }
                "alias" => {
                    let (name, value) = words.next_word().ok_or_else(bad)?.split_once('=').map(own).ok_or_else(bad)?;
                    state.aliases.push((name, value));
                }
                "export" => {
                    let name = words.next_word().ok_or_else(bad)?;
                    let at = state.variables.iter().rposition(|(n, _)| *n == name).ok_or_else(bad)?;
                    state.exported.push(state.variables.remove(at));
                }
                assignment => {
                    let (name, value) = assignment.split_once('=').map(own).ok_or_else(bad)?;
                    // `assign_into`'s form for bytes that are not UTF-8 (a UTF-8 value is quoted).
                    let value = match raw.starts_with(&format!("{name}=$(\\command printf ")) {
                        true => {
                            let format = first_quoted(assignment).ok_or_else(bad)?;
                            words.next_word().filter(|w| *w == format!("{name}=${{{name}%x}}")).ok_or_else(bad)?;
                            let mut bytes = unprintf(&format).ok_or_else(bad)?;
                            bytes.pop().filter(|&b| b == b'x').ok_or_else(bad)?;
                            OsString::from_vec(bytes)
                        }
                        false => OsString::from(value),
                    };
                    state.variables.push((name, value));
                }
            }
        }
        Ok(state)
    }

    /// The command [`Session::restore`] runs: each part applied, what failed printed.
    fn restore_script(&self) -> String {
        let mut s = String::from("__bx_miss=\n");
        let step = |s: &mut String, text: &str, what: &str| {
            let _ = writeln!(s, "{{ {text} ; }} 2>/dev/null || __bx_miss=\"${{__bx_miss}}{what}\n\"");
        };
        let mut cd = String::from("\\command cd -- ");
        quote_into(&mut cd, &String::from_utf8_lossy(self.cwd.as_os_str().as_bytes()));
        step(&mut s, &cd, "cwd");
        if let Some(umask) = &self.umask {
            step(&mut s, &format!("\\command umask {umask}"), "umask");
        }
        let exported = self.exported.iter().map(|v| (v, true));
        for ((name, value), export) in exported.chain(self.variables.iter().map(|v| (v, false))) {
            let mut text = String::new();
            assign_into(&mut text, name, value.as_bytes());
            if export {
                let _ = write!(text, "\\command export {name}");
            } else {
                text.push_str("\\command :");
            }
            step(&mut s, &text, &format!("variable {name}"));
        }
        for (name, value) in &self.aliases {
            let mut text = format!("\\command alias {name}=");
            quote_into(&mut text, value);
            step(&mut s, &text, &format!("alias {name}"));
        }
        if let Some(functions) = &self.functions {
            let mut text = String::from("\\command eval ");
            quote_into(&mut text, functions);
            step(&mut s, &text, "functions");
        }
        for (name, on) in &self.options {
            if *on {
                step(&mut s, &format!("\\command set -o {name}"), &format!("option {name}"));
            } else {
                // Off, and a shell without it has it off too.
                let _ = writeln!(s, "{{ \\command set +o {name} ; }} 2>/dev/null");
            }
        }
        s.push_str("\\command printf '%s' \"$__bx_miss\"; \\command unset __bx_miss");
        s
    }
}

/// The line after which [`ShellState::to_script`] holds the functions' text as printed.
const FUNCTIONS: &str = "# functions, as the shell printed them\n";

fn own((a, b): (&str, &str)) -> (String, String) {
    (a.to_string(), b.to_string())
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// `set +o` output: the kept options, each with whether it is on.
fn parse_options(text: &str) -> Vec<(String, bool)> {
    let mut options: Vec<(String, bool)> = text
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (set, flag, name) = (words.next()?, words.next()?, words.next()?);
            (set == "set" && OPTIONS.contains(&name)).then(|| (name.to_string(), flag == "-o"))
        })
        .collect();
    options.sort();
    options
}

/// `alias` output (`alias NAME='VALUE'` in bash, `NAME='VALUE'` elsewhere), values quoted.
fn parse_aliases(text: &str) -> Vec<(String, String)> {
    let mut words = Words { rest: text };
    let mut aliases = Vec::new();
    while let Some(word) = words.next_word() {
        if word == "alias" {
            continue;
        }
        if let Some((name, value)) = word.split_once('=') {
            aliases.push((name.to_string(), value.to_string()));
        }
    }
    aliases.sort();
    aliases
}

/// The names in `readonly -p` output (`readonly NAME=...`, `declare -r NAME=...`).
fn readonly_names(text: &str) -> Vec<String> {
    let mut words = Words { rest: text };
    let mut names = Vec::new();
    while let Some(word) = words.next_word() {
        if word == "readonly" || word == "declare" || word.starts_with('-') {
            continue;
        }
        let name = word.split_once('=').map_or(word.as_str(), |(n, _)| n);
        if valid_name(name) {
            names.push(name.to_string());
        }
    }
    names
}

/// The first single-quoted string in `text`, unquoted.
fn first_quoted(text: &str) -> Option<String> {
    let start = text.find('\'')? + 1;
    let len = text[start..].find('\'')?;
    Some(text[start..start + len].to_string())
}

/// The bytes a `printf` format of [`printf_format_into`](crate::text::printf_format_into)'s
/// makes.
fn unprintf(format: &str) -> Option<Vec<u8>> {
    let bytes = format.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if bytes.get(i + 1) == Some(&b'%') => {
                out.push(b'%');
                i += 2;
            }
            b'\\' if bytes.get(i + 1) == Some(&b'\\') => {
                out.push(b'\\');
                i += 2;
            }
            b'\\' => {
                let digits = bytes.get(i + 1..i + 4)?;
                out.push(u8::from_str_radix(std::str::from_utf8(digits).ok()?, 8).ok()?);
                i += 4;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

/// Shell words, as a POSIX shell splits them: quotes (`'...'`, `"..."`) and backslashes
/// removed; `$(...)` kept as it is, quotes and all.
struct Words<'a> {
    rest: &'a str,
}

impl Words<'_> {
    fn skip_line(&mut self) {
        self.rest = self.rest.split_once('\n').map_or("", |(_, rest)| rest);
    }

    fn next_word(&mut self) -> Option<String> {
        self.rest = self.rest.trim_start_matches([' ', '\t', '\n', ';']);
        if self.rest.is_empty() {
            return None;
        }
        let mut word = String::new();
        let mut chars = self.rest.char_indices().peekable();
        let mut end = self.rest.len();
        let mut depth = 0;
        while let Some((i, c)) = chars.next() {
            match c {
                ' ' | '\t' | '\n' | ';' if depth == 0 => {
                    end = i;
                    break;
                }
                '\'' if depth == 0 => {
                    for (_, c) in chars.by_ref() {
                        if c == '\'' {
                            break;
                        }
                        word.push(c);
                    }
                }
                '"' if depth == 0 => {
                    while let Some((_, c)) = chars.next() {
                        match c {
                            '"' => break,
                            '\\' if matches!(chars.peek(), Some((_, '"' | '\\' | '$' | '`'))) => {
                                word.extend(chars.next().map(|(_, c)| c));
                            }
                            c => word.push(c),
                        }
                    }
                }
                '\\' if depth == 0 => word.extend(chars.next().map(|(_, c)| c)),
                '$' if depth == 0 && matches!(chars.peek(), Some((_, '('))) => {
                    chars.next();
                    depth = 1;
                    word.push_str("$(");
                }
                '(' if depth > 0 => {
                    depth += 1;
                    word.push(c);
                }
                ')' if depth > 0 => {
                    depth -= 1;
                    word.push(c);
                }
                '\'' => {
                    // Inside `$(...)`: kept, quotes and all.
                    word.push(c);
                    for (_, c) in chars.by_ref() {
                        word.push(c);
                        if c == '\'' {
                            break;
                        }
                    }
                }
                c => word.push(c),
            }
        }
        self.rest = &self.rest[end..];
        Some(word)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn alias_output_of_each_shell_is_read() {
        let want = vec![("ll".to_string(), "ls -l".to_string()), ("q".to_string(), "a'b".to_string())];
        for text in ["alias ll='ls -l'\nalias q='a'\\''b'\n", "q='a'\"'\"'b'\nll='ls -l'\n"] {
            assert_eq!(parse_aliases(text), want, "{text}");
        }
    }

    #[test]
    fn options_keep_the_users_only() {
        let text = "set +o allexport\nset -o braceexpand\nset -o errexit\nset -o interactive\nset -o monitor\n";
        assert_eq!(parse_options(text), [("allexport".to_string(), false), ("errexit".to_string(), true)]);
    }

    fn name() -> impl Strategy<Value = String> {
        "[A-Za-z_][A-Za-z0-9_]{0,8}".prop_filter("not special", |n| !special(n))
    }

    fn value() -> impl Strategy<Value = OsString> {
        prop::collection::vec(1u8..=255, 0..40).prop_map(OsString::from_vec)
    }

    #[test]
    fn values_that_look_like_the_scripts_own_text_round_trip() {
        let look_alike = |name: &str, value: &str| (name.to_string(), OsString::from(value));
        let state = ShellState {
            cwd: "/".into(),
            variables: vec![
                look_alike("u", &format!("\n{FUNCTIONS}f() {{ :; }}\n")),
                look_alike("v", "$(\\command printf 'x'); v=${v%x}"),
                ("w".to_string(), OsString::from_vec(b"\xff\n# functions, as".to_vec())),
            ],
            aliases: vec![("a".to_string(), format!("{FUNCTIONS}b"))],
            functions: Some(format!("f() {{\n    echo '{FUNCTIONS}'\n}}")),
            ..ShellState::default()
        };
        let script = state.to_script();
        assert_eq!(ShellState::from_script(&script).map_err(|e| e.to_string()), Ok(state), "{script}");
    }

    proptest! {
        #[test]
        fn to_script_and_from_script_round_trip(
            cwd in "/[^\0]{0,20}",
            umask in prop::option::of("0[0-7]{3}"),
            vars in prop::collection::btree_map(name(), (value(), any::<bool>()), 0..8),
            aliases in prop::collection::btree_map(name(), "[^\0]{0,20}", 0..4),
            options in prop::collection::btree_map(prop::sample::select(OPTIONS), any::<bool>(), 0..4),
            functions in prop::option::of("f\\(\\) \\{ [^\0]{0,30}\n\\}"),
        ) {
            let mut state = ShellState { cwd: cwd.into(), umask, functions, ..ShellState::default() };
            for (name, (value, exported)) in vars {
                if exported { state.exported.push((name, value)) } else { state.variables.push((name, value)) }
            }
            state.aliases = aliases.into_iter().collect();
            state.options = options.into_iter().map(|(n, on)| (n.to_string(), on)).collect();
            let script = state.to_script();
            prop_assert_eq!(ShellState::from_script(&script).map_err(|e| e.to_string()), Ok(state), "{}", script);
        }
    }
}
