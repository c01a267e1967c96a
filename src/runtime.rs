//! Which CLI reaches the container, and the argv for each call made through it.
//!
//! Every argv is built as a vector and handed to [`std::process::Command`]: no host shell ever
//! parses a container name, a path or a value. The CLIs are run with this process's environment,
//! so `DOCKER_HOST`, `DOCKER_CONTEXT` and `CONTAINER_HOST` work as they do on the command line;
//! extra global arguments (such as `--context prod`) go before the subcommand.
//!
//! Interrupting a command and closing a session go through a second call of the same shape
//! (`exec` without `-i`), so they work wherever the session itself works: Kubernetes pods
//! through `kubectl exec`, and any CLI of that shape through [`Custom`].

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::process::Command;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::proc::{self, Captured, RunError};

/// How long probing an engine may take before it counts as not answering.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The program that reaches a container.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Runtime {
    /// `docker exec -i CONTAINER SHELL`.
    Docker,
    /// `podman exec -i CONTAINER SHELL`.
    Podman,
    /// A shell on this host, no container: the session's target is ignored.
    Local,
    /// `kubectl exec -i [--context C] [-n NS] POD [-c CONTAINER] -- SHELL`: the target is a
    /// pod (or `TYPE/NAME`, such as `deploy/web`).
    Kubectl(Kubectl),
    /// Any CLI of the same shape, e.g. `nerdctl exec -i {target}` or `ssh {target}`.
    Custom(Custom),
}

/// Where `kubectl exec` goes: context, namespace and container, each optional.
///
/// ```
/// use boxshell::{Kubectl, Runtime};
/// let rt = Runtime::Kubectl(Kubectl::new().context("prod").namespace("jobs").container("worker"));
/// assert_eq!(rt.name(), "kubectl");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Kubectl {
    /// `--context`.
    pub context: Option<String>,
    /// `-n`.
    pub namespace: Option<String>,
    /// `-c`, for pods with several containers.
    pub container: Option<String>,
}

impl Kubectl {
    /// The current context, the context's namespace, the pod's default container.
    pub fn new() -> Kubectl {
        Kubectl::default()
    }

    /// The kubeconfig context.
    pub fn context(mut self, context: impl Into<String>) -> Self {
        self.context = Some(context.into());
        self
    }

    /// The namespace.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// The container in the pod.
    pub fn container(mut self, container: impl Into<String>) -> Self {
        self.container = Some(container.into());
        self
    }

    /// `--context C -n NS`, as given.
    fn scope_args(&self) -> Vec<&str> {
        let mut args = Vec::new();
        if let Some(c) = &self.context {
            args.extend(["--context", c]);
        }
        if let Some(n) = &self.namespace {
            args.extend(["-n", n]);
        }
        args
    }
}

/// A CLI that runs a command in a target, given as a program and an argument template in
/// which `{target}` stands for the session's target; the command's argv follows.
///
/// ```
/// use boxshell::{Custom, Runtime};
/// // nerdctl has docker's shape.
/// let nerdctl = Runtime::Custom(Custom::new("nerdctl", ["exec", "-i", "{target}"]));
/// // ssh hands its arguments to a remote shell, so the argv must be sent quoted.
/// let ssh = Runtime::Custom(Custom::new("ssh", ["-T", "{target}"]).remote_shell());
/// assert_eq!(ssh.name(), "ssh");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Custom {
    program: String,
    args: Vec<String>,
    remote_shell: bool,
}

impl Custom {
    /// `program` with `args`; each `{target}` in them is replaced by the target.
    pub fn new<I, S>(program: impl Into<String>, args: I) -> Custom
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Custom { program: program.into(), args: args.into_iter().map(Into::into).collect(), remote_shell: false }
    }

    /// The CLI passes the command to a shell on the other side (as `ssh` does): the argv is
    /// sent as one line, each word quoted.
    pub fn remote_shell(mut self) -> Self {
        self.remote_shell = true;
        self
    }

    /// The program.
    pub fn program(&self) -> &str {
        &self.program
    }
}

impl Runtime {
    /// The runtime to use when none is given: the one named by `BOXSHELL_RUNTIME` (`docker`,
    /// `podman`, `kubectl` or `local`), else podman, else docker, taking only an engine that
    /// answers.
    ///
    /// Probing runs `podman info` / `docker version`, which takes from a few milliseconds up to
    /// a few hundred; the result is not cached.
    ///
    /// # Errors
    /// [`Error::NoRuntime`] listing what was tried and why each was passed over;
    /// for an explicit `BOXSHELL_RUNTIME`, the error of that runtime's probe.
    pub fn detect() -> Result<Runtime> {
        let wanted = std::env::var("BOXSHELL_RUNTIME").ok().filter(|v| !v.trim().is_empty());
        detect_among(wanted.as_deref(), &[Cli::new(Runtime::Podman), Cli::new(Runtime::Docker)])
    }

    /// The runtime's name: `docker`, `podman`, `local`, `kubectl`, or a custom CLI's program.
    pub fn name(&self) -> &str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Podman => "podman",
            Runtime::Local => "local",
            Runtime::Kubectl(_) => "kubectl",
            Runtime::Custom(c) => &c.program,
        }
    }

    /// Whether the target is a container (false for [`Runtime::Local`]).
    pub fn is_container(&self) -> bool {
        !matches!(self, Runtime::Local)
    }

    /// Whether this is a container engine boxshell manages containers of (Docker, Podman).
    pub fn is_engine(&self) -> bool {
        matches!(self, Runtime::Docker | Runtime::Podman)
    }

    fn default_program(&self) -> &str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Podman => "podman",
            Runtime::Local => "sh",
            Runtime::Kubectl(_) => "kubectl",
            Runtime::Custom(c) => &c.program,
        }
    }

    fn install_hint(&self) -> &'static str {
        match self {
            Runtime::Docker => {
                "Install Docker (`apt-get install docker.io`, then start `dockerd`) or see https://docs.docker.com/engine/install/"
            }
            Runtime::Podman => "Install Podman (`apt-get install podman`) or see https://podman.io/docs/installation",
            Runtime::Local => "Install a POSIX shell (`apt-get install dash`)",
            Runtime::Kubectl(_) => "Install kubectl, see https://kubernetes.io/docs/tasks/tools/",
            Runtime::Custom(_) => "Install the program or give its path",
        }
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Runtime {
    type Err = Error;

    /// Parses `docker`, `podman`, `kubectl` (current context and namespace) or `local` (any
    /// case).
    fn from_str(s: &str) -> Result<Runtime> {
        match s.trim().to_ascii_lowercase().as_str() {
            "docker" => Ok(Runtime::Docker),
            "podman" => Ok(Runtime::Podman),
            "local" => Ok(Runtime::Local),
            "kubectl" => Ok(Runtime::Kubectl(Kubectl::new())),
            _ => Err(Error::InvalidName {
                what: "runtime",
                value: s.to_string(),
                reason: "expected docker, podman, kubectl or local",
            }),
        }
    }
}

/// A runtime with the program that runs it and the global arguments put before every
/// subcommand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cli {
    pub runtime: Runtime,
    pub program: OsString,
    pub global_args: Vec<OsString>,
    /// Environment of the CLI process, on top of this process's (e.g. `DOCKER_HOST`).
    pub env: Vec<(OsString, OsString)>,
}

impl Cli {
    pub(crate) fn new(runtime: Runtime) -> Cli {
        let program = OsString::from(runtime.default_program());
        Cli { runtime, program, global_args: Vec::new(), env: Vec::new() }
    }

    /// The program with the global arguments, ready for a subcommand.
    pub(crate) fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.global_args).envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// `argv` run in `target`: through `exec` for a container (`-i` when `interactive`, then
    /// `-u user` and `extra`), directly on the host for [`Runtime::Local`].
    pub(crate) fn exec(&self, spec: &ExecSpec<'_>, argv: &[&OsStr]) -> Command {
        match &self.runtime {
            Runtime::Local => {
                let mut cmd = Command::new(argv[0]);
                cmd.args(&argv[1..]).envs(self.env.iter().map(|(k, v)| (k, v)));
                cmd
            }
            Runtime::Docker | Runtime::Podman => {
                let mut cmd = self.command();
                cmd.arg("exec");
                if spec.interactive {
                    cmd.arg("-i");
                }
                if let Some(user) = spec.user {
                    cmd.args(["-u", user]);
                }
                cmd.args(spec.extra).arg("--").arg(spec.target).args(argv);
                cmd
            }
            Runtime::Kubectl(k) => {
                let mut cmd = self.command();
                cmd.arg("exec");
                if spec.interactive {
                    cmd.arg("-i");
                }
                cmd.args(k.scope_args()).args(spec.extra).arg(spec.target);
                if let Some(c) = &k.container {
                    cmd.args(["-c", c]);
                }
                cmd.arg("--").args(argv);
                cmd
            }
            Runtime::Custom(c) => {
                let mut cmd = self.command();
                cmd.args(c.args.iter().map(|a| a.replace("{target}", spec.target))).args(spec.extra);
                if c.remote_shell {
                    let words: Vec<String> = argv.iter().map(|a| crate::quote(&a.to_string_lossy())).collect();
                    cmd.arg(words.join(" "));
                } else {
                    cmd.args(argv);
                }
                cmd
            }
        }
    }

    /// Runs a one-shot CLI call with `args` after the global ones; see [`Cli::run_command`].
    pub(crate) fn run<I, S>(&self, op: Op<'_>, args: I, timeout: Duration) -> Result<(Command, Captured)>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command();
        cmd.args(args);
        let out = self.run_command(op, &mut cmd, None, timeout)?;
        Ok((cmd, out))
    }

    /// Runs `cmd` (built by this CLI) with a deadline, mapping a missing program and a timeout
    /// to errors. A non-zero exit is not an error here: callers read [`Captured::status`].
    pub(crate) fn run_command(
        &self,
        op: Op<'_>,
        cmd: &mut Command,
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Captured> {
        match proc::run(cmd, stdin, timeout) {
            Ok(out) => Ok(out),
            Err(RunError::Spawn(e)) => Err(self.spawn_error(cmd.get_program(), e)),
            Err(RunError::TimedOut { stderr, .. }) => {
                let said = String::from_utf8_lossy(&stderr).trim().to_string();
                let said = if said.is_empty() { said } else { format!(": {said}") };
                Err(self.failed(op, cmd, format!("no answer within {timeout:?}{said}")))
            }
        }
    }

    /// [`Error::Failed`] for `op` run as `cmd`.
    pub(crate) fn failed(&self, op: Op<'_>, cmd: &Command, message: String) -> Error {
        Error::Failed {
            backend: self.runtime.to_string(),
            operation: op.0,
            name: op.1.to_string(),
            command: proc::describe(cmd),
            message,
        }
    }

    /// The error for a program that could not be started.
    pub(crate) fn spawn_error(&self, program: &OsStr, e: std::io::Error) -> Error {
        Error::spawn(&self.runtime.to_string(), program, self.runtime.install_hint(), e)
    }

    /// Checks that the engine answers.
    pub(crate) fn probe(&self) -> Result<()> {
        let args: &[&str] = match self.runtime {
            Runtime::Docker => &["version", "--format", "{{.Server.Version}}"],
            Runtime::Podman => &["info", "--format", "{{.Host.OCIRuntime.Name}}"],
            Runtime::Kubectl(_) => &["version", "--request-timeout=5s"],
            Runtime::Local | Runtime::Custom(_) => {
                which::which(&self.program).map_err(|e| {
                    self.spawn_error(&self.program, std::io::Error::new(std::io::ErrorKind::NotFound, e))
                })?;
                return Ok(());
            }
        };
        let mut cmd = self.command();
        cmd.args(args);
        let out = self.run_command(Op("probe", ""), &mut cmd, None, PROBE_TIMEOUT)?;
        if out.status.success() && !out.stdout.trim_ascii().is_empty() {
            Ok(())
        } else {
            Err(Error::RuntimeUnavailable {
                runtime: self.runtime.to_string(),
                command: proc::describe(&cmd),
                message: out.message(),
            })
        }
    }

    /// Why an exec into `target` failed: the container is missing or not running, the engine
    /// does not answer, or (when none of these) `fallback`.
    pub(crate) fn diagnose(&self, target: &str, message: &str, fallback: Error) -> Error {
        self.container_problem(target, message).unwrap_or(fallback)
    }

    /// What keeps `target` from running commands, if anything: missing, not running, or an
    /// engine that does not answer. `message` is what the failed call printed.
    pub(crate) fn container_problem(&self, target: &str, message: &str) -> Option<Error> {
        let args = match &self.runtime {
            Runtime::Docker | Runtime::Podman => {
                vec!["inspect", "--type", "container", "--format", "{{.State.Status}}", "--", target]
            }
            // A pod; `TYPE/NAME` targets are resolved by kubectl itself.
            Runtime::Kubectl(k) if !target.contains('/') => {
                let mut args = vec!["get", "pod"];
                args.extend(k.scope_args());
                args.extend(["-o", "jsonpath={.status.phase}", "--", target]);
                args
            }
            _ => return None,
        };
        let status = self.run(Op("inspect", target), &args, PROBE_TIMEOUT);
        let runtime = self.runtime.to_string();
        let container = target.to_string();
        let message = message.to_string();
        Some(match status {
            Ok((cmd, out)) if out.status.success() => match String::from_utf8_lossy(&out.stdout).trim() {
                "running" | "Running" => return None,
                state if !state.is_empty() && state.len() <= 20 && state.bytes().all(|b| b.is_ascii_alphabetic()) => {
                    Error::ContainerNotRunning { runtime, container, state: state.to_lowercase(), message }
                }
                _ => Error::RuntimeUnavailable {
                    runtime,
                    command: proc::describe(&cmd),
                    message: format!(
                        "unexpected answer {:?}",
                        proc::said(&out.stdout).chars().take(80).collect::<String>()
                    ),
                },
            },
            Ok((_, out)) if is_no_such_container(&out.message()) => {
                Error::ContainerNotFound { runtime, container, message }
            }
            Ok((cmd, out)) => {
                let said = out.message();
                let message = match (said.is_empty(), said == message) {
                    (true, _) | (_, true) => message,
                    _ => format!("{said}; {message}"),
                };
                Error::RuntimeUnavailable { runtime, command: proc::describe(&cmd), message }
            }
            Err(e) => e,
        })
    }
}

/// The runtime named by `wanted`, if any, else the first of `candidates` whose engine answers.
fn detect_among(wanted: Option<&str>, candidates: &[Cli]) -> Result<Runtime> {
    if let Some(name) = wanted {
        let runtime: Runtime = name.parse()?;
        Cli::new(runtime.clone()).probe()?;
        return Ok(runtime);
    }
    let mut tried = Vec::new();
    for cli in candidates {
        match cli.probe() {
            Ok(()) => {
                log::info!("detected container runtime {}", cli.runtime);
                return Ok(cli.runtime.clone());
            }
            Err(e) => tried.push(format!("{} ({e})", cli.runtime)),
        }
    }
    Err(Error::NoRuntime { tried: tried.join("; ") })
}

/// What a CLI call does and to what (a container or session name), for its errors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Op<'a>(pub &'static str, pub &'a str);

/// The parts of an exec call besides the program to run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExecSpec<'a> {
    pub target: &'a str,
    pub interactive: bool,
    pub user: Option<&'a str>,
    pub extra: &'a [OsString],
}

pub(crate) fn is_no_such_container(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("no such container")
        || m.contains("no such object")
        || m.contains("no container with name or id")
        || (m.contains("(notfound)") && m.contains("not found"))
}

/// Checks a session's target for its runtime: a container name, a pod (or `TYPE/NAME`), or
/// for a custom CLI anything that cannot be read as an option. Local takes any target.
pub(crate) fn validate_target(runtime: &Runtime, target: &str) -> Result<()> {
    let invalid = |reason| Err(Error::InvalidName { what: "target", value: target.to_string(), reason });
    match runtime {
        Runtime::Local => Ok(()),
        Runtime::Docker | Runtime::Podman => validate_container(target),
        Runtime::Kubectl(_) => {
            let ok = target.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
                && target.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._/".contains(&b));
            if ok {
                Ok(())
            } else {
                invalid(
                    "a pod name holds letters, digits, `-`, `.` (and `/` in TYPE/NAME), and starts with a letter or digit",
                )
            }
        }
        Runtime::Custom(_) => {
            if target.is_empty()
                || target.starts_with('-')
                || target.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                invalid("a target must be non-empty, hold no white space or control characters, and not start with `-`")
            } else {
                Ok(())
            }
        }
    }
}

/// Checks an environment variable handed to a CLI (`-e KEY` / `-e KEY=VALUE`): a name that
/// is not empty and holds no `=` or NUL, a value without NUL.
pub(crate) fn validate_env(key: &str, value: &str) -> Result<()> {
    if key.is_empty() || key.contains(['=', '\0']) || value.contains('\0') {
        return Err(Error::InvalidName {
            what: "environment variable",
            value: key.to_string(),
            reason: "a name must be non-empty and hold no `=`; a value no NUL",
        });
    }
    Ok(())
}

/// Checks a container name or id before it goes on a command line.
pub(crate) fn validate_container(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("the name is empty")
    } else if name.starts_with('-') {
        Some("a name must not start with `-` (it would be read as an option)")
    } else if !name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        Some("a container name holds only ASCII letters, digits, `_`, `.` and `-`, and starts with a letter or digit")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidName { what: "container name", value: name.to_string(), reason }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(cmd: &Command) -> Vec<String> {
        std::iter::once(cmd.get_program()).chain(cmd.get_args()).map(|a| a.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn exec_argv_per_runtime() {
        let extra = vec![OsString::from("--privileged")];
        let spec = ExecSpec { target: "web", interactive: true, user: Some("1000"), extra: &extra };
        let mut docker = Cli::new(Runtime::Docker);
        docker.global_args = vec!["--context".into(), "prod".into()];
        assert_eq!(
            argv(&docker.exec(&spec, &[OsStr::new("/bin/sh")])),
            ["docker", "--context", "prod", "exec", "-i", "-u", "1000", "--privileged", "--", "web", "/bin/sh"]
        );
        let podman = Cli::new(Runtime::Podman);
        let spec = ExecSpec { interactive: false, user: None, extra: &[], ..spec };
        assert_eq!(
            argv(&podman.exec(&spec, &[OsStr::new("sh"), OsStr::new("-c"), OsStr::new("x")])),
            ["podman", "exec", "--", "web", "sh", "-c", "x"]
        );
        assert_eq!(argv(&Cli::new(Runtime::Local).exec(&spec, &[OsStr::new("/bin/sh")])), ["/bin/sh"]);
    }

    #[test]
    fn kubectl_argv() {
        let sh = [OsStr::new("/bin/sh"), OsStr::new("/dev/stdin")];
        let spec = ExecSpec { target: "web-0", interactive: true, user: None, extra: &[] };
        let plain = Cli::new(Runtime::Kubectl(Kubectl::new()));
        assert_eq!(argv(&plain.exec(&spec, &sh)), ["kubectl", "exec", "-i", "web-0", "--", "/bin/sh", "/dev/stdin"]);
        let full = Kubectl::new().context("prod").namespace("jobs").container("worker");
        let mut cli = Cli::new(Runtime::Kubectl(full));
        cli.global_args = vec!["--kubeconfig".into(), "/k".into()];
        let extra = vec![OsString::from("--pod-running-timeout=5s")];
        let spec = ExecSpec { extra: &extra, ..spec };
        assert_eq!(
            argv(&cli.exec(&spec, &sh)),
            [
                "kubectl",
                "--kubeconfig",
                "/k",
                "exec",
                "-i",
                "--context",
                "prod",
                "-n",
                "jobs",
                "--pod-running-timeout=5s",
                "web-0",
                "-c",
                "worker",
                "--",
                "/bin/sh",
                "/dev/stdin"
            ]
        );
        // The signalling call: no -i, the script as one argument.
        let spec = ExecSpec { interactive: false, extra: &[], ..spec };
        let reap = [OsStr::new("sh"), OsStr::new("-c"), OsStr::new("kill -s INT $1"), OsStr::new("reap")];
        assert_eq!(
            argv(&cli.exec(&spec, &reap)),
            [
                "kubectl",
                "--kubeconfig",
                "/k",
                "exec",
                "--context",
                "prod",
                "-n",
                "jobs",
                "web-0",
                "-c",
                "worker",
                "--",
                "sh",
                "-c",
                "kill -s INT $1",
                "reap"
            ]
        );
    }

    #[test]
    fn custom_argv() {
        let spec = ExecSpec { target: "box1", interactive: true, user: None, extra: &[] };
        let cmd = [OsStr::new("sh"), OsStr::new("-c"), OsStr::new("echo 'a b'; kill $1"), OsStr::new("x")];
        let nerdctl = Cli::new(Runtime::Custom(Custom::new("nerdctl", ["exec", "-i", "{target}"])));
        assert_eq!(
            argv(&nerdctl.exec(&spec, &cmd)),
            ["nerdctl", "exec", "-i", "box1", "sh", "-c", "echo 'a b'; kill $1", "x"]
        );
        let ssh = Cli::new(Runtime::Custom(Custom::new("ssh", ["-T", "user@{target}"]).remote_shell()));
        let got = argv(&ssh.exec(&spec, &cmd));
        assert_eq!(got[..3], ["ssh", "-T", "user@box1"]);
        // What the remote shell runs is the argv, word for word.
        let out = Command::new("sh").arg("-c").arg(format!("printf '[%s]' {}", got[3])).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "[sh][-c][echo 'a b'; kill $1][x]");
    }

    #[test]
    fn targets_are_checked_per_runtime() {
        let kube = Runtime::Kubectl(Kubectl::new());
        for ok in ["web-0", "deploy/web", "a.b"] {
            validate_target(&kube, ok).unwrap();
        }
        for bad in ["", "-n", "a b", "x;y", "$(id)"] {
            assert!(validate_target(&kube, bad).is_err(), "{bad:?}");
        }
        let custom = Runtime::Custom(Custom::new("ssh", ["{target}"]));
        validate_target(&custom, "user@host:2222").unwrap();
        for bad in ["", "-oProxyCommand=x", "a b", "a\nb"] {
            assert!(validate_target(&custom, bad).is_err(), "{bad:?}");
        }
        validate_target(&Runtime::Local, "").unwrap();
    }

    #[test]
    fn names_are_checked() {
        for ok in ["web", "a", "web-1.prod_x", "3f2a9c"] {
            validate_container(ok).unwrap();
        }
        for bad in ["", "-it", "--rm", "a b", "x;y", "$(id)", "a\nb", "é", ".x", "a/b"] {
            assert!(matches!(validate_container(bad), Err(Error::InvalidName { .. })), "{bad:?}");
        }
        for (key, value) in [("A", ""), ("lower.dots-ok", "spaces $(id) 'quotes'\n")] {
            validate_env(key, value).unwrap();
        }
        for (key, value) in [("", "x"), ("A=B", "x"), ("A\0", "x"), ("A", "x\0y")] {
            assert!(matches!(validate_env(key, value), Err(Error::InvalidName { .. })), "{key:?}={value:?}");
        }
    }

    #[test]
    fn runtime_names_parse() {
        assert_eq!("Docker".parse::<Runtime>().unwrap(), Runtime::Docker);
        assert_eq!(" podman ".parse::<Runtime>().unwrap(), Runtime::Podman);
        assert_eq!("local".parse::<Runtime>().unwrap(), Runtime::Local);
        let err = "kubernetes".parse::<Runtime>().unwrap_err().to_string();
        assert!(err.contains("kubernetes") && err.contains("expected docker, podman, kubectl or local"), "{err}");
        assert_eq!("kubectl".parse::<Runtime>().unwrap(), Runtime::Kubectl(Kubectl::new()));
    }

    #[test]
    fn detection_takes_the_override_or_the_first_that_answers() {
        assert_eq!(detect_among(Some("local"), &[]).unwrap(), Runtime::Local);
        let err = detect_among(Some("nerd"), &[]).unwrap_err();
        assert!(matches!(err, Error::InvalidName { what: "runtime", .. }), "{err:?}");

        let missing = |runtime: Runtime| Cli { program: "/nonexistent/engine".into(), ..Cli::new(runtime) };
        // An engine that does not answer: `false` runs and fails.
        let silent = Cli { program: "false".into(), ..Cli::new(Runtime::Docker) };
        let err = detect_among(None, &[missing(Runtime::Podman), silent]).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::NoRuntime { .. }), "{err:?}");
        assert!(text.contains("podman (podman: program `/nonexistent/engine` not found"), "{text}");
        assert!(text.contains("docker (docker: engine not answering (`false version"), "{text}");
        assert!(text.contains("apt-get install podman"), "{text}");

        let local = Cli::new(Runtime::Local);
        assert_eq!(detect_among(None, &[missing(Runtime::Podman), local]).unwrap(), Runtime::Local);
    }

    #[test]
    fn missing_program_is_named_with_a_hint() {
        let mut cli = Cli::new(Runtime::Docker);
        cli.program = "/nonexistent/docker".into();
        let err = cli.probe().unwrap_err();
        assert!(matches!(err, Error::RuntimeNotFound { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("/nonexistent/docker") && text.contains("apt-get install docker.io"), "{text}");
    }
}
