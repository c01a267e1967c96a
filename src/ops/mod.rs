//! One facade over tmux sessions and containers: the same verbs for both, sessions defined
//! in code or in a TOML file (feature `config`), and auto-detection of which backend holds a
//! name.
//!
//! ```no_run
//! # fn main() -> boxshell::Result<()> {
//! use std::time::Duration;
//! use boxshell::ops::{Backend, Ops, SessionDef};
//! use boxshell::{State, Stop};
//!
//! let ops = Ops::new()
//!     .define("bot", SessionDef::tmux("python3 bot.py").workdir("/srv/bot"))
//!     .define("db", SessionDef::container("postgres:16").port("5432:5432").env("POSTGRES_PASSWORD", "x"));
//! ops.start("bot")?;
//! for s in ops.list()? {
//!     println!("{:<10} {:?} {:?}", s.name, s.backend, s.state); // db: Defined until started
//! }
//! ops.stop("bot", Stop::Graceful(Duration::from_secs(5)))?;
//! # Ok(()) }
//! ```
//!
//! How a name is resolved: a defined session uses its own backend (or the default one);
//! any other name is looked up in tmux and in the containers of the runtime, and is an
//! [`Error::Ambiguous`] if both have it.

#[cfg(feature = "config")]
mod config;

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::SystemTime;

use crate::container::{ContainerSpec, Containers, Scope, Volumes};
use crate::engine::Engine;
use crate::error::{Error, Result, Via};
use crate::output::Logs;
use crate::proc::Stop;
use crate::state::State;
use crate::text::quote;
use crate::tmux::{Tmux, TmuxSpec, TmuxStatus};

/// Where a session lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Backend {
    /// A tmux session on this host.
    Tmux,
    /// A container of the container runtime.
    Container,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Tmux => "tmux",
            Backend::Container => "container",
        })
    }
}

/// A session as the facade sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionStatus {
    /// Its name.
    pub name: String,
    /// Where it lives.
    pub backend: Backend,
    /// Its state.
    pub state: State,
    /// PID of its process, while running (for a container, on the host).
    pub pid: Option<u32>,
    /// When it was created.
    pub created: Option<SystemTime>,
    /// Its image, for a container.
    pub image: Option<String>,
    /// Exit code, once exited.
    pub exit_code: Option<i32>,
}

/// A command: one line for a shell, or an argv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    /// A line run by a shell (`sh -c` in a container, tmux's shell on the host).
    Shell(String),
    /// Program and arguments, no shell.
    Argv(Vec<String>),
}

/// How to start a session: what [`Ops::define`] takes and what a config file's
/// `[ops.sessions.NAME]` holds, built with its setters. What is not set falls back to the
/// facade's defaults.
#[derive(Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct SessionDef {
    /// `tmux` or `container`; default: the facade's default backend.
    backend: Option<Backend>,
    /// The command; default: the shell (tmux) or the image's command (container).
    command: Option<CommandLine>,
    /// Directory to start in.
    workdir: Option<String>,
    /// Environment variables.
    env: BTreeMap<String, String>,
    /// Image, for a container (required there).
    image: Option<String>,
    /// Volumes, for a container (`host:container[:ro]`).
    volumes: Vec<String>,
    /// Published ports, for a container (`8080:80`).
    ports: Vec<String>,
    /// A volume for logs, for a container (`host-dir:container-dir`).
    log_volume: Option<String>,
    /// Container runtime; default: the facade's.
    runtime: Option<Engine>,
    /// tmux socket name (`-L`); default: tmux's default socket.
    socket: Option<String>,
    /// Whether a container gets a terminal (`-t`); default no, so that its stdout and stderr
    /// stay apart in [`Ops::logs`]. Its stdin is kept open either way, for
    /// [`Ops::attach`].
    tty: Option<bool>,
}

impl std::fmt::Debug for SessionDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionDef")
            .field("backend", &self.backend)
            .field("command", &self.command)
            .field("workdir", &self.workdir)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("image", &self.image)
            .field("volumes", &self.volumes)
            .field("ports", &self.ports)
            .field("log_volume", &self.log_volume)
            .field("runtime", &self.runtime)
            .field("socket", &self.socket)
            .field("tty", &self.tty)
            .finish()
    }
}

impl SessionDef {
    /// A tmux session running `command` (a line for tmux's shell).
    pub fn tmux(command: impl Into<String>) -> SessionDef {
        SessionDef::default().backend(Backend::Tmux).command(command)
    }

    /// A container of `image`.
    pub fn container(image: impl Into<String>) -> SessionDef {
        SessionDef::default().backend(Backend::Container).image(image)
    }

    /// The backend; default: the facade's default backend.
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = Some(backend);
        self
    }

    /// The image, for a container (required there).
    pub fn image(mut self, image: impl Into<String>) -> Self {
        self.image = Some(image.into());
        self
    }

    /// The command as a shell line.
    pub fn command(mut self, command: impl Into<String>) -> Self {
        self.command = Some(CommandLine::Shell(command.into()));
        self
    }

    /// The command as an argv.
    pub fn argv<I, S>(mut self, argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.command = Some(CommandLine::Argv(argv.into_iter().map(Into::into).collect()));
        self
    }

    /// Directory to start in.
    pub fn workdir(mut self, dir: impl Into<String>) -> Self {
        self.workdir = Some(dir.into());
        self
    }

    /// An environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// A volume (container).
    pub fn volume(mut self, volume: impl Into<String>) -> Self {
        self.volumes.push(volume.into());
        self
    }

    /// A published port (container).
    pub fn port(mut self, port: impl Into<String>) -> Self {
        self.ports.push(port.into());
        self
    }

    /// The log volume (container).
    pub fn log_volume(mut self, volume: impl Into<String>) -> Self {
        self.log_volume = Some(volume.into());
        self
    }

    /// The container runtime (a [`Runtime`](crate::Runtime), or an [`Engine`] with its own program or CLI
    /// environment).
    pub fn runtime(mut self, runtime: impl Into<Engine>) -> Self {
        self.runtime = Some(runtime.into());
        self
    }

    /// The tmux socket (`-L`).
    pub fn socket(mut self, socket: impl Into<String>) -> Self {
        self.socket = Some(socket.into());
        self
    }

    /// Whether a container gets a terminal (`-t`): its output is then one stream, lines end
    /// in `\r\n`, and [`Ops::attach`] gets a console.
    pub fn tty(mut self, tty: bool) -> Self {
        self.tty = Some(tty);
        self
    }

    /// `self` with every field `over` sets taken from `over`: environments are merged, volumes
    /// and ports replaced when `over` has any. This is how [`Ops::start_with`] applies its
    /// overrides.
    ///
    /// ```
    /// use boxshell::ops::SessionDef;
    /// let def = SessionDef::container("alpine").env("A", "1").overridden_by(SessionDef::default().env("B", "2"));
    /// assert_eq!(def, SessionDef::container("alpine").env("A", "1").env("B", "2"));
    /// ```
    pub fn overridden_by(mut self, over: SessionDef) -> SessionDef {
        fn take<T>(mine: &mut Option<T>, theirs: Option<T>) {
            if theirs.is_some() {
                *mine = theirs;
            }
        }
        take(&mut self.backend, over.backend);
        take(&mut self.command, over.command);
        take(&mut self.workdir, over.workdir);
        take(&mut self.image, over.image);
        take(&mut self.log_volume, over.log_volume);
        take(&mut self.runtime, over.runtime);
        take(&mut self.socket, over.socket);
        take(&mut self.tty, over.tty);
        self.env.extend(over.env);
        if !over.volumes.is_empty() {
            self.volumes = over.volumes;
        }
        if !over.ports.is_empty() {
            self.ports = over.ports;
        }
        self
    }

    /// The backend, if set.
    pub fn get_backend(&self) -> Option<Backend> {
        self.backend
    }

    /// The command, if set.
    pub fn get_command(&self) -> Option<&CommandLine> {
        self.command.as_ref()
    }

    /// The image, if set.
    pub fn get_image(&self) -> Option<&str> {
        self.image.as_deref()
    }

    /// The container runtime, if set.
    pub fn get_runtime(&self) -> Option<&Engine> {
        self.runtime.as_ref()
    }
}

/// The facade. Cheap to build; backends are reached only when used, and the container runtime
/// (unless given) is detected on first use, and kept once found.
#[derive(Debug)]
pub struct Ops {
    default_backend: Backend,
    tmux: Tmux,
    engine: Option<Engine>,
    detected: OnceLock<Engine>,
    sessions: BTreeMap<String, SessionDef>,
}

impl Default for Ops {
    fn default() -> Ops {
        Ops::new()
    }
}

impl Ops {
    /// A facade with no definitions: default backend tmux, `tmux` on `PATH`, the container
    /// runtime detected on first use.
    pub fn new() -> Ops {
        Ops {
            default_backend: Backend::Tmux,
            tmux: Tmux::new(),
            engine: None,
            detected: OnceLock::new(),
            sessions: BTreeMap::new(),
        }
    }

    /// The backend of definitions that do not name one.
    pub fn default_backend(mut self, backend: Backend) -> Self {
        self.default_backend = backend;
        self
    }

    /// The tmux server: its program, and the socket (`-L`) for names not defined and for
    /// definitions that name none. Default: `tmux` on `PATH`, tmux's default socket.
    ///
    /// ```
    /// use boxshell::ops::Ops;
    /// use boxshell::tmux::Tmux;
    /// let ops = Ops::new().tmux(Tmux::new().program("/usr/bin/tmux").socket("ops"));
    /// ```
    pub fn tmux(mut self, tmux: Tmux) -> Self {
        self.tmux = tmux;
        self
    }

    /// The tmux server set with [`tmux`](Ops::tmux) (or by a config file).
    pub fn get_tmux(&self) -> &Tmux {
        &self.tmux
    }

    /// The container runtime (a [`Runtime`](crate::Runtime), or an [`Engine`] with its own program, global
    /// arguments or CLI environment), instead of detecting one.
    pub fn runtime(mut self, runtime: impl Into<Engine>) -> Self {
        self.engine = Some(runtime.into());
        self
    }

    /// Defines (or redefines) session `name`.
    pub fn define(mut self, name: impl Into<String>, def: SessionDef) -> Self {
        self.sessions.insert(name.into(), def);
        self
    }

    /// The definitions.
    pub fn definitions(&self) -> &BTreeMap<String, SessionDef> {
        &self.sessions
    }

    /// Starts defined session `name`.
    ///
    /// # Errors
    /// As [`start_with`](Ops::start_with).
    pub fn start(&self, name: &str) -> Result<SessionStatus> {
        self.start_with(name, SessionDef::default())
    }

    /// Starts session `name` from its definition (if any) with `overrides` on top. A container
    /// or tmux session of that name that has exited is replaced.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] if it runs; [`Error::Config`] for a container without an image;
    /// the backend's errors otherwise.
    pub fn start_with(&self, name: &str, overrides: SessionDef) -> Result<SessionStatus> {
        let def = self.sessions.get(name).cloned().unwrap_or_default().overridden_by(overrides);
        match def.backend.unwrap_or(self.default_backend) {
            Backend::Tmux => {
                let tmux = self.tmux_on(def.socket.as_deref());
                if let Ok(TmuxStatus { state: State::Exited, .. }) = tmux.status(name) {
                    log::info!("replacing exited tmux session {name}");
                    tmux.stop(name, Stop::Kill)?;
                }
                let mut spec = TmuxSpec::new(name);
                match def.command {
                    Some(CommandLine::Shell(line)) => spec = spec.command(line),
                    Some(CommandLine::Argv(argv)) => {
                        spec = spec.command(argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" "))
                    }
                    None => {}
                }
                if let Some(dir) = def.workdir {
                    spec = spec.workdir(dir);
                }
                for (k, v) in def.env {
                    spec = spec.env(k, v);
                }
                Ok(tmux_info(tmux.start(&spec)?))
            }
            Backend::Container => {
                let containers = self.containers(def.runtime.clone())?;
                let image = def.image.ok_or_else(|| Error::Config {
                    path: "<definition>".into(),
                    key: format!("ops.sessions.{name}.image"),
                    message: "a container session needs an image".into(),
                })?;
                if let Ok(status) = containers.status(name) {
                    if status.state == State::Running {
                        return Err(Error::AlreadyExists {
                            via: containers.engine().runtime().clone().into(),
                            name: name.to_string(),
                            state: State::Running,
                        });
                    }
                    log::info!("replacing {} container {name}", status.engine_state);
                    containers.remove(name, Volumes::Keep)?;
                }
                let mut spec = ContainerSpec::new(image).name(name).init().stdin_open().label("boxshell.ops", name);
                if def.tty == Some(true) {
                    spec = spec.tty();
                }
                match def.command {
                    Some(CommandLine::Shell(line)) => spec = spec.command(["sh", "-c", &line]),
                    Some(CommandLine::Argv(argv)) => spec = spec.command(argv),
                    None => {}
                }
                if let Some(dir) = def.workdir {
                    spec = spec.workdir(dir);
                }
                for (k, v) in def.env {
                    spec = spec.env(k, v);
                }
                for v in def.volumes {
                    spec = spec.volume(v);
                }
                for p in def.ports {
                    spec = spec.port(p);
                }
                if let Some(v) = def.log_volume {
                    spec = spec.log_volume(v);
                }
                let container = containers.run(&spec)?;
                Ok(container_info(containers.status(container.id())?))
            }
        }
    }

    /// Stops session `name`. A tmux session is ended; a container is stopped, then removed if
    /// boxshell created it (its volumes stay), so that the next start applies the definition
    /// afresh.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Ambiguous`]; the backend's errors otherwise.
    pub fn stop(&self, name: &str, how: Stop) -> Result<()> {
        match self.locate(name)? {
            Located::Tmux(tmux, _) => tmux.stop(name, how),
            Located::Container(containers, status) => {
                containers.stop(name, how)?;
                if status.managed {
                    containers.remove(name, Volumes::Keep)?;
                }
                Ok(())
            }
        }
    }

    /// Attaches this terminal to session `name`, replacing the current process: on success it
    /// never returns. Returns the error that kept it from doing so.
    #[must_use = "attach returns only when it failed: the error says why"]
    pub fn attach(&self, name: &str) -> Error {
        match self.locate(name) {
            Ok(Located::Tmux(tmux, _)) => tmux.attach(name),
            Ok(Located::Container(containers, _)) => containers.attach(name),
            Err(e) => e,
        }
    }

    /// The status of session `name`; a defined session that does not exist is
    /// [`State::Defined`].
    ///
    /// # Errors
    /// [`Error::NotFound`] for a name neither defined nor found; [`Error::Ambiguous`].
    pub fn status(&self, name: &str) -> Result<SessionStatus> {
        match self.locate(name) {
            Ok(Located::Tmux(_, status)) => Ok(tmux_info(status)),
            Ok(Located::Container(_, status)) => Ok(container_info(status)),
            Err(Error::NotFound { .. }) if self.sessions.contains_key(name) => Ok(self.defined(name)),
            Err(e) => Err(e),
        }
    }

    /// The last `lines` lines a session printed (all for `None`): a container's stdout and
    /// stderr apart; a tmux pane's text in `stdout`. ANSI codes kept.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Ambiguous`]; the backend's errors otherwise.
    pub fn logs(&self, name: &str, lines: Option<usize>) -> Result<Logs> {
        match self.locate(name)? {
            Located::Tmux(tmux, _) => tmux.logs(name, lines),
            Located::Container(containers, _) => containers.logs(name, lines),
        }
    }

    /// Whether session `name` exists in a backend.
    ///
    /// # Errors
    /// [`Error::Ambiguous`]; errors of a backend that cannot answer.
    pub fn exists(&self, name: &str) -> Result<bool> {
        self.backend_of(name).map(|backend| backend.is_some())
    }

    /// Which backend holds `name`, if any.
    ///
    /// # Errors
    /// [`Error::Ambiguous`] when both do; errors of a backend that cannot answer.
    pub fn backend_of(&self, name: &str) -> Result<Option<Backend>> {
        match self.locate(name) {
            Ok(Located::Tmux(..)) => Ok(Some(Backend::Tmux)),
            Ok(Located::Container(..)) => Ok(Some(Backend::Container)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every session: tmux sessions (on the facade's socket and the sockets definitions
    /// name), the containers boxshell created (with the facade's runtime and the runtimes
    /// definitions name), and defined sessions that do not exist, as
    /// [`State::Defined`]. A backend that is not installed is left out (logged).
    ///
    /// # Errors
    /// Errors of a backend that is installed but fails.
    pub fn list(&self) -> Result<Vec<SessionStatus>> {
        let mut found: Vec<SessionStatus> = Vec::new();
        let mut sockets: Vec<Option<&str>> = vec![None];
        sockets.extend(self.sessions.values().filter_map(|d| d.socket.as_deref()).map(Some));
        sockets.sort();
        sockets.dedup();
        for socket in sockets {
            match self.tmux_on(socket).list() {
                Ok(sessions) => found.extend(sessions.into_iter().map(tmux_info)),
                Err(e @ Error::RuntimeNotFound { .. }) => log::warn!("listing sessions without tmux: {e}"),
                Err(e) => return Err(e),
            }
        }
        // The facade's runtime, and those definitions name, each once.
        let named = self.sessions.values().filter_map(|d| d.runtime.clone());
        let mut seen: Vec<Engine> = Vec::new();
        for engine in std::iter::once(None).chain(named.map(Some)) {
            match self.containers(engine) {
                Ok(containers) if !seen.contains(containers.engine()) => {
                    seen.push(containers.engine().clone());
                    found.extend(containers.list(Scope::Managed)?.into_iter().map(container_info));
                }
                Ok(_) => {}
                Err(e) => log::warn!("listing sessions without containers: {e}"),
            }
        }
        for name in self.sessions.keys() {
            if !found.iter().any(|s| &s.name == name) {
                found.push(self.defined(name));
            }
        }
        found.sort_by(|a, b| (&a.name, a.backend).cmp(&(&b.name, b.backend)));
        Ok(found)
    }

    fn defined(&self, name: &str) -> SessionStatus {
        let def = &self.sessions[name];
        SessionStatus {
            name: name.to_string(),
            backend: def.backend.unwrap_or(self.default_backend),
            state: State::Defined,
            pid: None,
            created: None,
            image: def.image.clone(),
            exit_code: None,
        }
    }

    /// The tmux server of `socket`, else of the facade's socket.
    fn tmux_on(&self, socket: Option<&str>) -> Tmux {
        match socket {
            Some(s) => self.tmux.clone().socket(s),
            None => self.tmux.clone(),
        }
    }

    /// The containers of `runtime`, else of the configured runtime, else of the detected one.
    fn containers(&self, runtime: Option<Engine>) -> Result<Containers> {
        if let Some(engine) = runtime.or_else(|| self.engine.clone()) {
            return Ok(Containers::new(engine));
        }
        // Only a runtime found is kept: a failed detection is tried again next time, and its
        // error comes back as it is (a bad `BOXSHELL_RUNTIME` is `InvalidName`).
        if let Some(engine) = self.detected.get() {
            return Ok(Containers::new(engine.clone()));
        }
        let engine = Engine::detect()?;
        Ok(Containers::new(self.detected.get_or_init(|| engine).clone()))
    }

    /// Where `name` is: its definition's backend, else wherever it is found.
    fn locate(&self, name: &str) -> Result<Located> {
        if let Some(def) = self.sessions.get(name) {
            return match def.backend.unwrap_or(self.default_backend) {
                Backend::Tmux => {
                    let tmux = self.tmux_on(def.socket.as_deref());
                    let status = tmux.status(name)?;
                    Ok(Located::Tmux(tmux, status))
                }
                Backend::Container => {
                    let containers = self.containers(def.runtime.clone())?;
                    match containers.status(name) {
                        Ok(status) => Ok(Located::Container(containers, status)),
                        Err(Error::ContainerNotFound { .. }) => Err(not_found(name)),
                        Err(e) => Err(e),
                    }
                }
            };
        }
        let tmux = self.tmux_on(None);
        let in_tmux = match tmux.status(name) {
            Ok(status) => Some(status),
            Err(Error::NotFound { .. } | Error::RuntimeNotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let in_containers = match self.containers(None) {
            Ok(containers) => match containers.status(name) {
                Ok(status) => Some((containers, status)),
                Err(Error::ContainerNotFound { .. }) => None,
                Err(e) => return Err(e),
            },
            // No engine here: nothing is in containers. A runtime named wrongly is an error.
            Err(Error::NoRuntime { .. }) => None,
            Err(e) => return Err(e),
        };
        match (in_tmux, in_containers) {
            (Some(_), Some(_)) => Err(Error::Ambiguous { name: name.to_string() }),
            (Some(status), None) => Ok(Located::Tmux(tmux, status)),
            (None, Some((containers, status))) => Ok(Located::Container(containers, status)),
            (None, None) => Err(not_found(name)),
        }
    }
}

enum Located {
    Tmux(Tmux, TmuxStatus),
    Container(Containers, crate::container::ContainerStatus),
}

fn not_found(name: &str) -> Error {
    Error::NotFound { via: Via::Ops, name: name.to_string() }
}

fn tmux_info(s: TmuxStatus) -> SessionStatus {
    SessionStatus {
        name: s.name,
        backend: Backend::Tmux,
        state: s.state,
        pid: s.pid,
        created: s.created,
        image: None,
        exit_code: s.exit_code,
    }
}

fn container_info(s: crate::container::ContainerStatus) -> SessionStatus {
    let state = s.state;
    SessionStatus {
        name: s.name,
        backend: Backend::Container,
        state,
        pid: s.pid,
        created: s.created,
        image: Some(s.image),
        exit_code: s.exit_code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_win_and_environments_merge() {
        let file = SessionDef::container("img:1").env("A", "file").env("B", "file").port("1:1").workdir("/f");
        let args = SessionDef { image: Some("img:2".into()), ..SessionDef::default() }.env("B", "args");
        let merged = file.overridden_by(args);
        assert_eq!(merged.image.as_deref(), Some("img:2"));
        assert_eq!(merged.backend, Some(Backend::Container));
        assert_eq!(merged.workdir.as_deref(), Some("/f"));
        assert_eq!(merged.ports, ["1:1"]);
        assert_eq!(merged.env.get("A").map(String::as_str), Some("file"));
        assert_eq!(merged.env.get("B").map(String::as_str), Some("args"));
    }

    #[test]
    fn debug_hides_environment_values() {
        let def = SessionDef::tmux("x").env("TOKEN", "hunter2");
        let shown = format!("{def:?}");
        assert!(shown.contains("TOKEN") && !shown.contains("hunter2"), "{shown}");
    }
}
