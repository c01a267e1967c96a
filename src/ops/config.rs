//! Session definitions in a TOML file (feature `config`).
//!
//! ```toml
//! [ops]
//! default_backend = "tmux"          # or "container"; default "tmux"
//! tmux_program = "tmux"             # default "tmux"
//! socket = "ops"                    # tmux socket (-L) of sessions that name none; default tmux's
//! runtime = "podman"                # "docker", "podman"; absent: detect
//!
//! [ops.sessions.bot]                # a tmux session
//! command = "python3 bot.py"        # a line for the shell, or an argv: ["python3", "bot.py"]
//! workdir = "/srv/bot"
//! env = { MODE = "prod" }
//! socket = "bots"
//!
//! [ops.sessions.db]                 # a container
//! backend = "container"
//! image = "postgres:16"             # required for containers
//! volumes = ["pgdata:/var/lib/postgresql/data"]
//! ports = ["5432:5432"]
//! log_volume = "./logs/db:/var/log/postgresql"
//! runtime = "docker"
//! tty = false                       # true: a terminal (one output stream); default false
//! ```
//!
//! The keys are named as the builder methods are. kstlib.ops' names are read too:
//! `tmux_binary`, `socket_name`, `container_runtime`, `working_dir`.
//!
//! Every key is checked: an unknown key, a value of the wrong type, a missing image is an
//! [`Error::Config`] naming the file and the dotted key.

use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::{Backend, CommandLine, Ops, SessionDef};
use crate::error::{Error, Result};
use crate::runtime::Runtime;
use crate::tmux::Tmux;

const OPS_KEYS: &[&str] = &["default_backend", "tmux_program", "socket", "runtime", "sessions"];
const SESSION_KEYS: &[&str] =
    &["backend", "command", "workdir", "env", "image", "volumes", "ports", "log_volume", "runtime", "socket", "tty"];
/// Keys kstlib.ops names otherwise, and the name they stand for.
const OLD_NAMES: &[(&str, &str)] = &[
    ("tmux_binary", "tmux_program"),
    ("socket_name", "socket"),
    ("container_runtime", "runtime"),
    ("working_dir", "workdir"),
];

impl Ops {
    /// Where the configuration file is looked for, first found wins: `$BOXSHELL_CONFIG` (used
    /// as given, even if missing: an error then names it), `./boxshell.toml`, then
    /// `$XDG_CONFIG_HOME/boxshell/config.toml` (`~/.config` when `XDG_CONFIG_HOME` is unset).
    /// `None` when there is none.
    ///
    /// ```
    /// # #[cfg(feature = "config")] {
    /// let ops = match boxshell::ops::Ops::config_path() {
    ///     Some(path) => boxshell::ops::Ops::from_file(path)?,
    ///     None => boxshell::ops::Ops::new(),
    /// };
    /// # }
    /// # Ok::<(), boxshell::Error>(())
    /// ```
    pub fn config_path() -> Option<PathBuf> {
        if let Some(path) = std::env::var_os("BOXSHELL_CONFIG").filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(path));
        }
        let local = PathBuf::from("boxshell.toml");
        if local.is_file() {
            return Some(local);
        }
        let config_home = match std::env::var_os("XDG_CONFIG_HOME").filter(|p| !p.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => PathBuf::from(std::env::var_os("HOME")?).join(".config"),
        };
        Some(config_home.join("boxshell").join("config.toml")).filter(|p| p.is_file())
    }

    /// Loads the facade's settings and session definitions from a TOML file. Settings given
    /// with builder methods afterwards win over the file.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read; [`Error::Config`] naming the file and the
    /// key for anything wrong in it.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Ops> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        Ops::from_toml(&text, &path.display().to_string())
    }

    /// As [`from_file`](Ops::from_file), from the text of a file; `origin` names it in errors.
    ///
    /// # Errors
    /// [`Error::Config`].
    pub fn from_toml(text: &str, origin: &str) -> Result<Ops> {
        let err =
            |key: &str, message: String| Error::Config { path: origin.to_string(), key: key.to_string(), message };
        let root: Table = text.parse().map_err(|e: toml::de::Error| err("(syntax)", syntax(text, &e)))?;
        let r = Reader { origin };
        r.only(&root, "", &["ops"])?;
        let ops_table = match root.get("ops") {
            Some(Value::Table(t)) => t,
            Some(_) => return Err(err("ops", "must be a table ([ops])".into())),
            None => return Err(err("ops", "missing: the file has no [ops] table".into())),
        };
        r.only(ops_table, "ops", OPS_KEYS)?;
        let mut ops = Ops::new();
        if let Some(b) = r.string(ops_table, "ops", "default_backend")? {
            ops = ops.default_backend(r.backend("ops.default_backend", &b)?);
        }
        let mut tmux = Tmux::new();
        if let Some(t) = r.string(ops_table, "ops", "tmux_program")? {
            tmux = tmux.program(t);
        }
        if let Some(s) = r.string(ops_table, "ops", "socket")? {
            tmux = tmux.socket(s);
        }
        ops = ops.tmux(tmux);
        if let Some(rt) = r.runtime(ops_table, "ops")? {
            ops = ops.runtime(rt);
        }
        let sessions = match ops_table.get("sessions") {
            None => return Ok(ops),
            Some(Value::Table(t)) => t,
            Some(_) => return Err(err("ops.sessions", "must be a table of sessions ([ops.sessions.NAME])".into())),
        };
        for (name, value) in sessions {
            let at = format!("ops.sessions.{name}");
            if let Err(Error::InvalidName { reason, .. }) = crate::text::session_name(name) {
                return Err(err(&at, reason.into()));
            }
            let Value::Table(t) = value else { return Err(err(&at, "must be a table".into())) };
            let def = r.session(t, &at)?;
            if def.backend.unwrap_or(ops.default_backend) == Backend::Container && def.image.is_none() {
                return Err(err(&format!("{at}.image"), "missing: a container session needs an image".into()));
            }
            ops = ops.define(name.clone(), def);
        }
        Ok(ops)
    }
}

/// A TOML syntax error in one line: where, and what (toml's own text draws the line).
fn syntax(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before[before.rfind('\n').map_or(0, |i| i + 1)..].chars().count() + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

/// Reads typed values out of tables, with errors naming the file and key.
struct Reader<'a> {
    origin: &'a str,
}

impl Reader<'_> {
    fn err(&self, key: &str, message: impl Into<String>) -> Error {
        Error::Config { path: self.origin.to_string(), key: key.to_string(), message: message.into() }
    }

    fn key(at: &str, key: &str) -> String {
        if at.is_empty() { key.to_string() } else { format!("{at}.{key}") }
    }

    /// Checks that `t` holds only `allowed` keys, or their old names, each once.
    fn only(&self, t: &Table, at: &str, allowed: &[&str]) -> Result<()> {
        for key in t.keys() {
            let new = OLD_NAMES.iter().find(|&&(old, new)| old == key && allowed.contains(&new)).map(|&(_, new)| new);
            match new {
                Some(new) if t.contains_key(new) => {
                    return Err(self.err(&Self::key(at, key), format!("given twice, as {key} and as {new}")));
                }
                Some(_) => {}
                None if allowed.contains(&key.as_str()) => {}
                None => {
                    let message = format!("unknown key; expected one of: {}", allowed.join(", "));
                    return Err(self.err(&Self::key(at, key), message));
                }
            }
        }
        Ok(())
    }

    /// The value of `key` in `t`, found under its name or its old name, and the name it was
    /// found under.
    fn get<'t>(t: &'t Table, key: &'t str) -> Option<(&'t str, &'t Value)> {
        let old = OLD_NAMES.iter().find(|&&(_, new)| new == key).map(|&(old, _)| old);
        std::iter::once(key).chain(old).find_map(|k| t.get_key_value(k)).map(|(k, v)| (k.as_str(), v))
    }

    fn bool(&self, t: &Table, at: &str, key: &str) -> Result<Option<bool>> {
        match t.get(key) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(*b)),
            Some(other) => {
                Err(self.err(&Self::key(at, key), format!("expected true or false, found {}", other.type_str())))
            }
        }
    }

    fn string(&self, t: &Table, at: &str, key: &str) -> Result<Option<String>> {
        match Self::get(t, key) {
            None => Ok(None),
            Some((_, Value::String(s))) => Ok(Some(s.clone())),
            Some((key, other)) => {
                Err(self.err(&Self::key(at, key), format!("expected a string, found {}", other.type_str())))
            }
        }
    }

    fn strings(&self, t: &Table, at: &str, key: &str) -> Result<Vec<String>> {
        match t.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(self.err(
                        &format!("{}[{i}]", Self::key(at, key)),
                        format!("expected a string, found {}", other.type_str()),
                    )),
                })
                .collect(),
            Some(other) => {
                Err(self.err(&Self::key(at, key), format!("expected an array of strings, found {}", other.type_str())))
            }
        }
    }

    fn backend(&self, key: &str, value: &str) -> Result<Backend> {
        match value {
            "tmux" => Ok(Backend::Tmux),
            "container" => Ok(Backend::Container),
            other => Err(self.err(key, format!("unknown backend {other:?}; expected \"tmux\" or \"container\""))),
        }
    }

    fn runtime(&self, t: &Table, at: &str) -> Result<Option<Runtime>> {
        let Some(value) = self.string(t, at, "runtime")? else { return Ok(None) };
        match value.parse::<Runtime>() {
            Ok(r) if r.manages_containers() => Ok(Some(r)),
            _ => {
                let key = Self::get(t, "runtime").map_or("runtime", |(k, _)| k);
                let message = format!("unknown container runtime {value:?}; expected \"docker\" or \"podman\"");
                Err(self.err(&Self::key(at, key), message))
            }
        }
    }

    fn session(&self, t: &Table, at: &str) -> Result<SessionDef> {
        self.only(t, at, SESSION_KEYS)?;
        let mut def = SessionDef::default();
        if let Some(b) = self.string(t, at, "backend")? {
            def.backend = Some(self.backend(&Self::key(at, "backend"), &b)?);
        }
        def.command = match t.get("command") {
            None => None,
            Some(Value::String(line)) => Some(CommandLine::Shell(line.clone())),
            Some(Value::Array(_)) => Some(CommandLine::Argv(self.strings(t, at, "command")?)),
            Some(other) => {
                return Err(self.err(
                    &Self::key(at, "command"),
                    format!("expected a string or an array of strings, found {}", other.type_str()),
                ));
            }
        };
        def.workdir = self.string(t, at, "workdir")?;
        def.image = self.string(t, at, "image")?;
        def.volumes = self.strings(t, at, "volumes")?;
        def.ports = self.strings(t, at, "ports")?;
        def.log_volume = self.string(t, at, "log_volume")?;
        def.socket = self.string(t, at, "socket")?;
        def.tty = self.bool(t, at, "tty")?;
        def.runtime = self.runtime(t, at)?.map(Into::into);
        match t.get("env") {
            None => {}
            Some(Value::Table(env)) => {
                for (k, v) in env {
                    match v {
                        Value::String(s) => {
                            def.env.insert(k.clone(), s.clone());
                        }
                        other => {
                            return Err(self.err(
                                &format!("{}.{k}", Self::key(at, "env")),
                                format!("expected a string, found {}", other.type_str()),
                            ));
                        }
                    }
                }
            }
            Some(other) => {
                return Err(
                    self.err(&Self::key(at, "env"), format!("expected a table of strings, found {}", other.type_str()))
                );
            }
        }
        Ok(def)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
[ops]
default_backend = "container"
tmux_binary = "/usr/bin/tmux"
socket_name = "ops"
container_runtime = "podman"

[ops.sessions.bot]
backend = "tmux"
command = "python3 bot.py"
workdir = "/srv/bot"
env = { MODE = "prod", QUOTED = "it's \"x\"" }
socket = "bots"
tty = true

[ops.sessions.db]
image = "postgres:16"
command = ["postgres", "-c", "fsync=off"]
volumes = ["pgdata:/var/lib/postgresql/data"]
ports = ["5432:5432"]
log_volume = "./logs/db:/logs"
runtime = "docker"
"#;

    fn config_err(text: &str) -> (String, String) {
        match Ops::from_toml(text, "ops.toml") {
            Err(Error::Config { path, key, message }) => {
                assert_eq!(path, "ops.toml");
                (key, message)
            }
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn a_full_file_loads() {
        let ops = Ops::from_toml(FULL, "ops.toml").unwrap();
        assert_eq!(ops.default_backend, Backend::Container);
        assert_eq!(ops.tmux, Tmux::new().program("/usr/bin/tmux").socket("ops"));
        assert_eq!(ops.engine, Some(Runtime::Podman.into()));
        let bot = &ops.definitions()["bot"];
        assert_eq!(bot.backend, Some(Backend::Tmux));
        assert_eq!(bot.command, Some(CommandLine::Shell("python3 bot.py".into())));
        assert_eq!(bot.workdir.as_deref(), Some("/srv/bot"));
        assert_eq!(bot.env.get("QUOTED").map(String::as_str), Some("it's \"x\""));
        assert_eq!(bot.socket.as_deref(), Some("bots"));
        assert_eq!((bot.tty, ops.definitions()["db"].tty), (Some(true), None));
        let db = &ops.definitions()["db"];
        assert_eq!(db.backend, None, "the default backend applies");
        assert_eq!(db.command, Some(CommandLine::Argv(vec!["postgres".into(), "-c".into(), "fsync=off".into()])));
        assert_eq!((db.volumes.len(), db.ports.len()), (1, 1));
        assert_eq!(db.log_volume.as_deref(), Some("./logs/db:/logs"));
        assert_eq!(db.runtime, Some(Runtime::Docker.into()));
        // Builder settings after loading win over the file.
        let ops = Ops::from_toml(FULL, "ops.toml").unwrap().default_backend(Backend::Tmux);
        assert_eq!(ops.default_backend, Backend::Tmux);
        // Nothing set: the defaults.
        let ops = Ops::from_toml("[ops]", "x").unwrap();
        assert_eq!((ops.default_backend, ops.engine.clone()), (Backend::Tmux, None));
        assert!(ops.definitions().is_empty());
    }

    #[test]
    fn mistakes_name_the_key() {
        let cases: &[(&str, &str, &str)] = &[
            ("[ops]\ndefault_backend = \"vm\"", "ops.default_backend", "unknown backend"),
            ("[ops]\ndefaultbackend = \"tmux\"", "ops.defaultbackend", "unknown key"),
            ("[ops.sessions.web]\nimgae = \"x\"", "ops.sessions.web.imgae", "unknown key"),
            ("[ops.sessions.web]\nbackend = \"container\"", "ops.sessions.web.image", "needs an image"),
            ("[ops.sessions.web]\nports = [8080]", "ops.sessions.web.ports[0]", "expected a string, found integer"),
            ("[ops.sessions.web]\nports = \"8080\"", "ops.sessions.web.ports", "expected an array"),
            ("[ops.sessions.web]\nenv = { A = 1 }", "ops.sessions.web.env.A", "expected a string"),
            ("[ops.sessions.web]\ncommand = 3", "ops.sessions.web.command", "a string or an array"),
            ("[ops.sessions.web]\nruntime = \"local\"", "ops.sessions.web.runtime", "unknown container runtime"),
            ("[ops]\ncontainer_runtime = \"lxc\"", "ops.container_runtime", "unknown container runtime"),
            ("[ops]\nruntime = \"lxc\"", "ops.runtime", "unknown container runtime"),
            ("[ops]\nsocket = \"a\"\nsocket_name = \"b\"", "ops.socket_name", "given twice"),
            ("[ops.sessions.web]\nworking_dir = 1", "ops.sessions.web.working_dir", "expected a string"),
            ("[ops.sessions.web]\ntty = \"yes\"", "ops.sessions.web.tty", "expected true or false"),
            ("[ops.sessions.web]\nsessions = 1", "ops.sessions.web.sessions", "unknown key"),
            ("[ops.sessions.\"a b\"]", "ops.sessions.a b", "a session name"),
            ("[other]\nx = 1\n[ops]", "other", "unknown key"),
            ("x = 1", "x", "unknown key"),
            ("", "ops", "no [ops] table"),
            ("[ops]\nsocket = \n", "(syntax)", "line 2, column 10: "),
        ];
        for (text, key, message) in cases {
            let (k, m) = config_err(text);
            assert_eq!(&k, key, "{text:?}: {m}");
            assert!(m.contains(message), "{text:?}: {m}");
        }
    }

    #[test]
    fn the_file_is_named_when_it_cannot_be_read() {
        let err = Ops::from_file("/nonexistent/boxshell.toml").unwrap_err();
        assert!(matches!(err, Error::Io { .. }) && err.to_string().contains("/nonexistent/boxshell.toml"), "{err}");
    }
}
