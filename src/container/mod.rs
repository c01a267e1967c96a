//! Container lifecycle through the runtime CLI: run, start, stop, kill, remove, restart,
//! status, logs, exists, list, exec once, copy in and out, attach, and sessions.
//!
//! Every call goes through `docker` or `podman` with an argv built as a vector and a deadline,
//! so a hung engine gives an error instead of a hang. Status is read with `inspect --format`
//! asking for exactly the fields needed, so no JSON parser is needed. Every container boxshell
//! creates carries the label `boxshell.managed=true`, so [`Containers::list`] can show only
//! those or everything on the host.
//!
//! ```no_run
//! # fn main() -> boxshell::Result<()> {
//! use std::time::Duration;
//! use boxshell::container::{ContainerSpec, Containers};
//! use boxshell::{Runtime, Stop};
//!
//! let containers = Containers::new(Runtime::Docker);
//! let web = containers.run(&ContainerSpec::new("nginx:alpine").name("web").port("8080:80").init())?;
//! println!("{:?}", containers.status(web.name())?.state);  // Running
//! let mut sh = containers.session(web.name()).open()?;     // a persistent shell inside it
//! sh.exec("nginx -t")?.check()?;
//! containers.stop(web.name(), Stop::Graceful(Duration::from_secs(5)))?;
//! web.remove()?;
//! # Ok(()) }
//! ```

use std::ffi::{OsStr, OsString};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use crate::engine::{Engine, ExecSpec, Op, is_no_such_container};
use crate::error::{Error, Result};
use crate::output::{Logs, Output};
use crate::proc::{self, Captured, Stop};
use crate::reap::{self, Reap};
use crate::session::SessionBuilder;
use crate::state::State;
use crate::text;

mod logs;
mod spec;

use logs::merge_logs;
pub use spec::ContainerSpec;

/// The label on every container boxshell creates.
pub const MANAGED_LABEL: &str = "boxshell.managed";

/// Default deadline of a CLI call (`run` may pull an image: it gets ten times this).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Which containers [`Containers::list`] shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// Only containers boxshell created (labelled `boxshell.managed=true`).
    #[default]
    Managed,
    /// Every container on the host.
    All,
}

/// What `inspect` says about a container.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ContainerStatus {
    /// Full id.
    pub id: String,
    /// Name (without docker's leading `/`).
    pub name: String,
    /// Simplified state.
    pub state: State,
    /// The state word of the engine: `running`, `exited`, `created`, `paused`, ...
    pub engine_state: String,
    /// PID of the main process on the host, while running or paused.
    pub pid: Option<u32>,
    /// When it was created.
    pub created: Option<SystemTime>,
    /// The image it runs.
    pub image: String,
    /// Exit code of the main process, once it has exited.
    pub exit_code: Option<i32>,
    /// Whether boxshell created it.
    pub managed: bool,
}

/// Containers reached through one runtime CLI. Cheap to clone.
///
/// Calls that name a container validate the name first ([`Error::InvalidName`]) and report
/// a missing container as [`Error::ContainerNotFound`]; other failures are
/// [`Error::Failed`] with the CLI's own message.
#[derive(Debug, Clone)]
pub struct Containers {
    engine: Engine,
    timeout: Duration,
}

impl Containers {
    /// Containers of `runtime`: `Docker` or `Podman` (with another runtime every operation
    /// is [`Error::Unsupported`]), or an [`Engine`] for a program, global arguments or CLI
    /// environment of its own.
    pub fn new(runtime: impl Into<Engine>) -> Containers {
        Containers { engine: runtime.into(), timeout: CALL_TIMEOUT }
    }

    /// Containers of the runtime [`Runtime::detect`](crate::Runtime::detect) finds.
    ///
    /// # Errors
    /// As [`Runtime::detect`](crate::Runtime::detect).
    pub fn detect() -> Result<Containers> {
        Ok(Containers::new(Engine::detect()?))
    }

    /// The deadline of each CLI call, [`exec`](Containers::exec) included (default 60 s;
    /// `run` gets ten times this, for a pull).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Creates and starts a container; returns a handle to it.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] if a container of that name exists; [`Error::InvalidName`]
    /// for a bad name, image or environment name; [`Error::Failed`] (operation `run`) with the
    /// CLI's message otherwise (no such image, a port in use, ...).
    pub fn run(&self, spec: &ContainerSpec) -> Result<Container> {
        self.engine_only()?;
        let (args, env) = spec.run_args()?;
        let name = spec.name.clone().unwrap_or_default();
        let log_dir = spec.log_volume.as_deref().and_then(|v| v.split_once(':')).map(|(host, _)| host);
        if let Some(dir) = log_dir.filter(|d| d.starts_with('/') || d.starts_with('.')) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating log volume {dir}"), e))?;
        }
        let mut cmd = self.engine.command();
        cmd.args(&args).envs(env);
        let op = Op("run", &name);
        let out = self.engine.run_command(op, &mut cmd, self.timeout * 10)?;
        if !out.status.success() {
            let message = out.message();
            if message.contains("already in use") {
                let state = self.status(&name).map_or(State::Unknown, |s| s.state);
                return Err(Error::AlreadyExists { via: self.engine.runtime().clone().into(), name, state });
            }
            return Err(self.engine.failed(op, &cmd, message));
        }
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        log::info!("{} started container {} ({id})", self.engine.runtime(), if name.is_empty() { &id } else { &name });
        let name = if name.is_empty() { self.status(&id)?.name } else { name };
        Ok(Container { containers: self.clone(), id, name, remove_on_drop: false })
    }

    /// Starts a created or stopped container.
    ///
    /// # Errors
    /// [`Error::ContainerNotFound`]; [`Error::Failed`] (operation `start`).
    pub fn start(&self, name: &str) -> Result<()> {
        self.call("start", name, &["start"], self.timeout).map(drop)
    }

    /// Stops a container: [`Stop::Graceful`] sends SIGTERM and SIGKILL once the timeout has
    /// passed (rounded up to whole seconds, as the CLIs take it); [`Stop::Kill`] sends SIGKILL.
    /// Stopping a container that is not running is not an error.
    ///
    /// # Errors
    /// [`Error::ContainerNotFound`]; [`Error::Failed`] (operation `stop`).
    pub fn stop(&self, name: &str, how: Stop) -> Result<()> {
        match how {
            Stop::Graceful(timeout) => {
                let secs = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
                let secs = secs.to_string();
                self.call("stop", name, &["stop", "-t", &secs], timeout + self.timeout).map(drop)
            }
            Stop::Kill => match self.call("kill", name, &["kill"], self.timeout) {
                // `kill` refuses a container that is not running; that is stopped enough.
                Err(e @ Error::Failed { .. }) => match self.status(name) {
                    Ok(status) if status.state != State::Running => Ok(()),
                    _ => Err(e),
                },
                other => other.map(drop),
            },
        }
    }

    /// Sends SIGKILL to the container's main process.
    ///
    /// # Errors
    /// [`Error::ContainerNotFound`]; [`Error::Failed`] (operation `kill`), also when it is not
    /// running.
    pub fn kill(&self, name: &str) -> Result<()> {
        self.call("kill", name, &["kill"], self.timeout).map(drop)
    }

    /// Stops (SIGKILL) and removes a container, with its anonymous volumes when `volumes`
    /// is [`Volumes::Remove`].
    ///
    /// # Errors
    /// [`Error::ContainerNotFound`]; [`Error::Failed`] (operation `remove`).
    pub fn remove(&self, name: &str, volumes: Volumes) -> Result<()> {
        let args: &[&str] = match volumes {
            Volumes::Keep => &["rm", "-f"],
            Volumes::Remove => &["rm", "-f", "-v"],
        };
        let out = self.call("remove", name, args, self.timeout)?;
        // `rm -f` succeeds on a missing container; it just names nothing as removed.
        if out.stdout.trim_ascii().is_empty() {
            return Err(self.not_found(name, &out.message()));
        }
        Ok(())
    }

    /// Stops (as [`stop`](Containers::stop)) and starts a container again.
    ///
    /// # Errors
    /// As [`stop`](Containers::stop) and [`start`](Containers::start).
    pub fn restart(&self, name: &str, how: Stop) -> Result<()> {
        self.stop(name, how)?;
        self.start(name)
    }

    /// Status from `inspect`.
    ///
    /// # Errors
    /// [`Error::ContainerNotFound`]; [`Error::Failed`] (operation `inspect`).
    pub fn status(&self, name: &str) -> Result<ContainerStatus> {
        let out =
            self.call("inspect", name, &["inspect", "--type", "container", "--format", INSPECT_FORMAT], self.timeout)?;
        parse_statuses(&out.stdout).into_iter().next().ok_or_else(|| self.not_found(name, "inspect printed nothing"))
    }

    /// The last `lines` lines the container wrote to stdout and stderr together (all of them
    /// for `None`), in the order written, byte for byte: a line the engine read in pieces
    /// (a write without a newline, a line past 16 KiB) comes back whole.
    ///
    /// # Errors
    /// [`Error::ContainerNotFound`]; [`Error::Failed`] (operation `logs`).
    pub fn logs(&self, name: &str, lines: Option<usize>) -> Result<Logs> {
        // Engines apply `--tail` to each stream or to both: either way the last lines of both
        // are among what comes back, and the merge keeps the last of them.
        let tail = lines.map(|n| n.to_string());
        let args: &[&str] = match &tail {
            Some(n) => &["logs", "--timestamps", "--tail", n],
            None => &["logs", "--timestamps"],
        };
        let out = self.call("logs", name, args, self.timeout)?;
        Ok(merge_logs(&out.stdout, &out.stderr, lines))
    }

    /// Whether a container of that name or id exists (in any state).
    ///
    /// # Errors
    /// [`Error::InvalidName`]; [`Error::RuntimeUnavailable`] / [`Error::Failed`] when the
    /// engine cannot say.
    pub fn exists(&self, name: &str) -> Result<bool> {
        match self.status(name) {
            Ok(_) => Ok(true),
            Err(Error::ContainerNotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The containers boxshell created, or all of them.
    ///
    /// # Errors
    /// [`Error::Failed`] (operation `list`).
    pub fn list(&self, scope: Scope) -> Result<Vec<ContainerStatus>> {
        self.engine_only()?;
        let mut args = vec!["ps", "-a", "-q", "--no-trunc"];
        let filter = format!("label={MANAGED_LABEL}=true");
        if scope == Scope::Managed {
            args.extend(["--filter", &filter]);
        }
        let (cmd, out) = self.engine.run(Op("list", ""), &args, self.timeout)?;
        if !out.status.success() {
            return Err(self.engine.failed(Op("list", ""), &cmd, out.message()));
        }
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_string).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut args: Vec<&str> = vec!["inspect", "--type", "container", "--format", INSPECT_FORMAT];
        args.extend(ids.iter().map(String::as_str));
        let (_, out) = self.engine.run(Op("list", ""), &args, self.timeout)?;
        // A container removed between the two calls is simply not listed.
        Ok(parse_statuses(&out.stdout))
    }

    /// Runs `argv` once in the container (no shell, no stdin: the argv goes to the engine as
    /// given) and captures its output, byte for byte. Past the [timeout](Containers::timeout)
    /// the command's processes in the container are killed and the output so far comes back
    /// with `timed_out` set. For shell text, and state kept between commands, open a
    /// [`session`](Containers::session).
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # fn main() -> boxshell::Result<()> {
    /// let docker = boxshell::container::Containers::new(boxshell::Runtime::Docker);
    /// let out = docker.clone().timeout(Duration::from_secs(5)).exec("db", &["pg_isready"])?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::ContainerNotFound`], [`Error::ContainerNotRunning`]; [`Error::InvalidValue`]
    /// for an empty argv.
    pub fn exec<S: AsRef<OsStr>>(&self, name: &str, argv: &[S]) -> Result<Output> {
        let timeout = self.timeout;
        self.engine_only()?;
        text::container_name(name)?;
        if argv.is_empty() {
            return Err(Error::InvalidValue { what: "command", reason: "an exec needs a program" });
        }
        // A mark in the command's environment, for finding what it started after a timeout.
        let marker = format!("BOXSHELL_EXEC={}", uuid::Uuid::new_v4().simple());
        let extra = ["-e".into(), OsString::from(&marker)];
        let argv: Vec<&OsStr> = argv.iter().map(AsRef::as_ref).collect();
        let mut cmd = self
            .engine
            .exec(&ExecSpec { target: name, interactive: false, tty: false, user: None, extra: &extra }, &argv);
        let command = proc::describe(&cmd);
        let started = Instant::now();
        let result = proc::run(&mut cmd, timeout);
        let duration = started.elapsed();
        let (status, stdout, stderr, timed_out) = match result {
            Ok(out) => (Some(out.status), out.stdout, out.stderr, false),
            Err(proc::RunError::Spawn(e)) => return Err(self.engine.spawn_error(cmd.get_program(), e)),
            Err(proc::RunError::TimedOut { stdout, stderr }) => {
                // The client is dead; what it started in the container is not.
                let reap = Reap {
                    procs: reap::Procs::Environ(&marker),
                    signal: reap::Signal::Kill,
                    shell: 0,
                    instance: Default::default(),
                    watermark: Default::default(),
                    remove: None,
                };
                let mut reap = self.engine.reap(name, None, "sh", &reap);
                if let Err(e) = self.engine.run_command(Op("exec", name), &mut reap, CALL_TIMEOUT) {
                    log::warn!("ending `{command}` after its timeout: {e}");
                }
                (None, stdout, stderr, true)
            }
        };
        let exit_code = status.map_or(Output::KILLED, proc::exit_code);
        if !timed_out && exit_code != 0 {
            // Was it the command that failed, or the exec (container gone, stopped, engine down)?
            let message = String::from_utf8_lossy(&stderr).trim().to_string();
            if let Some(problem) = self.engine.container_problem(name, &message) {
                return Err(problem);
            }
        }
        Ok(Output::new(stdout, stderr, exit_code, timed_out, duration, command))
    }

    /// A builder for a [`Session`](crate::Session) in this container, through this runtime.
    pub fn session(&self, name: &str) -> SessionBuilder {
        crate::Session::builder(name).runtime(self.engine.clone())
    }

    /// Copies a file or directory from the host into the container (`cp`).
    ///
    /// # Errors
    /// [`Error::ContainerNotFound`]; [`Error::Failed`] (operation `copy`).
    pub fn copy_in(&self, name: &str, host: &Path, container_path: &str) -> Result<()> {
        text::container_name(name)?;
        let to = format!("{name}:{container_path}");
        self.copy(name, host.as_os_str(), OsStr::new(&to))
    }

    /// Copies a file or directory from the container to the host (`cp`).
    ///
    /// # Errors
    /// [`Error::ContainerNotFound`]; [`Error::Failed`] (operation `copy`).
    pub fn copy_out(&self, name: &str, container_path: &str, host: &Path) -> Result<()> {
        text::container_name(name)?;
        let from = format!("{name}:{container_path}");
        self.copy(name, OsStr::new(&from), host.as_os_str())
    }

    fn copy(&self, name: &str, from: &OsStr, to: &OsStr) -> Result<()> {
        self.engine_only()?;
        let args = [OsStr::new("cp"), from, to];
        let (cmd, out) = self.engine.run(Op("copy", name), args, self.timeout)?;
        if out.status.success() {
            Ok(())
        } else {
            let message = out.message();
            Err(self.engine.diagnose(name, &message, self.engine.failed(Op("copy", name), &cmd, message.clone())))
        }
    }

    /// Attaches this terminal to the container's main process (`attach`), replacing the
    /// current process: on success it never returns. Input reaches the process if it was run
    /// with [`ContainerSpec::stdin_open`] or [`ContainerSpec::tty`]. Signals to this terminal
    /// are not passed on (`--sig-proxy=false`): without a terminal, Ctrl-C ends the attach
    /// and leaves the container running; with one, Ctrl-C goes to the process and Ctrl-P
    /// Ctrl-Q detaches.
    ///
    /// Returns the error that kept it from replacing the process.
    #[must_use = "attach returns only when it failed: the error says why"]
    pub fn attach(&self, name: &str) -> Error {
        match self.status(name) {
            Ok(status) if status.state == State::Running => {}
            Ok(status) => {
                return Error::ContainerNotRunning {
                    via: self.engine.via(),
                    container: name.to_string(),
                    state: status.state,
                    engine_state: status.engine_state,
                    message: "attach needs a running container".into(),
                };
            }
            Err(e) => return e,
        }
        let mut cmd = self.engine.command();
        cmd.args(["attach", "--sig-proxy=false", "--", name]);
        let e = cmd.exec();
        self.engine.failed(Op("attach", name), &cmd, e.to_string())
    }

    /// Runs `args` with the container name last, mapping a missing container and failures.
    fn call(&self, operation: &'static str, name: &str, args: &[&str], timeout: Duration) -> Result<Captured> {
        self.engine_only()?;
        text::container_name(name)?;
        let op = Op(operation, name);
        let (cmd, out) = self.engine.run(op, args.iter().copied().chain(["--", name]), timeout)?;
        if out.status.success() {
            return Ok(out);
        }
        let message = out.message();
        if is_no_such_container(&message) {
            return Err(self.not_found(name, &message));
        }
        Err(self.engine.failed(op, &cmd, message))
    }

    /// Container management is for docker and podman.
    fn engine_only(&self) -> Result<()> {
        if self.engine.runtime().manages_containers() {
            Ok(())
        } else {
            Err(Error::Unsupported { via: self.engine.via(), what: "container management (docker and podman only)" })
        }
    }

    fn not_found(&self, name: &str, message: &str) -> Error {
        Error::ContainerNotFound { via: self.engine.via(), container: name.to_string(), message: message.to_string() }
    }
}

/// Whether [`Containers::remove`] also removes the container's anonymous volumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Volumes {
    /// Keep them.
    #[default]
    Keep,
    /// Remove them with the container.
    Remove,
}

/// A container boxshell started, with its runtime: what [`Containers::run`] returns. Removed
/// when dropped only if [`remove_on_drop`](Container::remove_on_drop) was asked for.
///
/// It names the container; the verbs are [`Containers`]' (one place for each), reached with
/// [`containers`](Container::containers):
///
/// ```no_run
/// use boxshell::container::{ContainerSpec, Containers};
/// # fn main() -> boxshell::Result<()> {
/// let containers = Containers::detect()?;
/// let web = containers.run(&ContainerSpec::new("alpine").command(["sleep", "600"]))?.remove_on_drop();
/// let mut sh = containers.session(web.name()).open()?;
/// println!("{}", sh.exec("uname -a")?.stdout_str());
/// println!("{:?}", containers.status(web.name())?.state);
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a container keeps running; use or remove it"]
pub struct Container {
    containers: Containers,
    id: String,
    name: String,
    remove_on_drop: bool,
}

impl Container {
    /// Removes the container (and its anonymous volumes) when this handle is dropped: for
    /// tests and throwaway sandboxes.
    pub fn remove_on_drop(mut self) -> Self {
        self.remove_on_drop = true;
        self
    }

    /// Its full id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The containers it belongs to (its runtime).
    pub fn containers(&self) -> &Containers {
        &self.containers
    }

    /// Removes the container now (and its anonymous volumes).
    ///
    /// # Errors
    /// As [`Containers::remove`].
    pub fn remove(mut self) -> Result<()> {
        self.remove_on_drop = false;
        self.containers.remove(&self.id, Volumes::Remove)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if self.remove_on_drop
            && let Err(e) = self.containers.remove(&self.id, Volumes::Remove)
        {
            log::warn!("removing container {} on drop: {e}", self.name);
        }
    }
}

/// The fields `inspect` prints for a status, one container per line, split by US (0x1f).
const INSPECT_FORMAT: &str = "{{.Id}}\x1f{{.Name}}\x1f{{.State.Status}}\x1f{{.State.Pid}}\x1f{{.Created}}\x1f{{.Config.Image}}\x1f{{.State.ExitCode}}\x1f{{index .Config.Labels \"boxshell.managed\"}}";

fn parse_statuses(stdout: &[u8]) -> Vec<ContainerStatus> {
    String::from_utf8_lossy(stdout).lines().filter_map(parse_status).collect()
}

fn parse_status(line: &str) -> Option<ContainerStatus> {
    let f: Vec<&str> = line.split('\x1f').collect();
    let [id, name, engine_state, pid, created, image, exit_code, managed] = f.as_slice() else { return None };
    let state = State::from_engine(engine_state);
    Some(ContainerStatus {
        id: id.to_string(),
        name: name.trim_start_matches('/').to_string(),
        state,
        engine_state: engine_state.to_string(),
        pid: pid.parse().ok().filter(|&p| p != 0),
        created: parse_time(created),
        image: image.to_string(),
        exit_code: (state == State::Exited).then(|| exit_code.parse().ok()).flatten(),
        managed: *managed == "true",
    })
}

/// Parses the engines' timestamps, `2026-11-21T09:22:27.96014Z` (docker) and
/// `2026-11-21 09:22:28.2001 +0000 UTC` (podman), with any UTC offset.
pub(crate) fn parse_time(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    let (date, rest) = (s.get(..10)?, s.get(11..)?);
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let time_end = rest.find(|c: char| !(c.is_ascii_digit() || c == ':' || c == '.')).unwrap_or(rest.len());
    let (time, zone) = rest.split_at(time_end);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, sec) = (t.next()??, t.next()??, t.next()??);
    let nanos: u32 = format!("{frac:0<9}").get(..9)?.parse().ok()?;
    let zone = zone.trim().trim_end_matches(" UTC").trim();
    let offset = match zone {
        "" | "Z" => 0,
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let digits: String = z[1..].chars().filter(char::is_ascii_digit).collect();
            let (oh, om) = (digits.get(..2)?.parse::<i64>().ok()?, digits.get(2..4)?.parse::<i64>().ok()?);
            sign * (oh * 3600 + om * 60)
        }
    };
    // Days since 1970-01-01 of a civil date (proleptic Gregorian).
    let (y, mo) = if month <= 2 { (year - 1, month + 9) } else { (year, month - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + m * 60 + sec - offset;
    let secs = u64::try_from(secs).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(secs: u64, nanos: u32) -> Option<SystemTime> {
        Some(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos))
    }

    #[test]
    fn times_of_both_engines_parse() {
        assert_eq!(parse_time("2026-11-21T09:22:27.960147589Z"), epoch(1_795_252_947, 960_147_589));
        assert_eq!(parse_time("2026-11-21 09:22:28.20013841 +0000 UTC"), epoch(1_795_252_948, 200_138_410));
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), epoch(0, 0));
        assert_eq!(parse_time("2000-02-29T12:00:00+02:00"), epoch(951_818_400, 0));
        assert_eq!(parse_time("2024-12-31 23:59:59 -0130 -0130"), epoch(1_735_694_999, 0));
        assert_eq!(parse_time("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_time("garbage"), None);
        assert_eq!(parse_time(""), None);
    }

    #[test]
    fn status_lines_parse() {
        let line = "abc\x1f/web\x1fexited\x1f0\x1f1970-01-01T00:00:10Z\x1fnginx\x1f3\x1ftrue";
        let s = parse_status(line).unwrap();
        assert_eq!(
            (s.name.as_str(), s.state, s.pid, s.exit_code, s.managed),
            ("web", State::Exited, None, Some(3), true)
        );
        assert_eq!(s.created, epoch(10, 0));
        let line = "abc\x1fweb\x1fpaused\x1f42\x1fx\x1fnginx\x1f0\x1f<no value>";
        let s = parse_status(line).unwrap();
        assert_eq!((s.state, s.pid, s.exit_code, s.managed, s.created), (State::Paused, Some(42), None, false, None));
        assert!(parse_status("too\x1ffew").is_none());
    }

    #[test]
    fn run_argv_keeps_env_values_off_the_command_line() {
        let spec = ContainerSpec::new("img:1")
            .name("web")
            .command(["sh", "-c", "echo $X"])
            .env("SECRET", "hunter2")
            .volume("/data:/data:ro")
            .log_volume("/tmp/logs:/logs")
            .port("8080:80")
            .workdir("/app")
            .user("1000")
            .label("team", "a b")
            .init()
            .memory("64m")
            .cpus("0.5")
            .arg("--network=none");
        let (args, env) = spec.run_args().unwrap();
        let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(
            args,
            [
                "run",
                "-d",
                "--name",
                "web",
                "--label",
                "boxshell.managed=true",
                "--label",
                "team=a b",
                "-e",
                "SECRET",
                "-v",
                "/data:/data:ro",
                "-v",
                "/tmp/logs:/logs",
                "-p",
                "8080:80",
                "-w",
                "/app",
                "-u",
                "1000",
                "--memory",
                "64m",
                "--cpus",
                "0.5",
                "--init",
                "--network=none",
                "img:1",
                "sh",
                "-c",
                "echo $X"
            ]
        );
        assert_eq!(env, [("SECRET".to_string(), "hunter2".to_string())]);
        assert!(!args.iter().any(|a| a.contains("hunter2")));
        assert!(matches!(ContainerSpec::new("-x").run_args(), Err(Error::InvalidName { .. })));
        assert!(matches!(ContainerSpec::new("i").name("--rm").run_args(), Err(Error::InvalidName { .. })));
    }
}
