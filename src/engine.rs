//! The CLI that reaches containers ([`Engine`]), and the argv of each call made through it.
//!
//! Every argv is built as a vector and handed to [`std::process::Command`]: no host shell ever
//! parses a container name, a path or a value. Extra global arguments (such as `--context
//! prod`) go before the subcommand.
//!
//! Interrupting a command and closing a session go through a second call of the same shape
//! (`exec` without `-i`), so they work wherever the session itself works: Kubernetes pods
//! through `kubectl exec`, and any CLI of that shape through [`Custom`](crate::Custom).

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::process::Command;
use std::time::Duration;

use crate::error::{Error, Result, Via};
pub(crate) use crate::proc::Op;
use crate::proc::{self, Caller, Captured};
use crate::reap::Reap;
use crate::runtime::Runtime;
use crate::state::State;
use crate::text;

/// How long probing an engine may take before it counts as not answering.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The CLI that reaches containers: a [`Runtime`] with the program that runs it, the global
/// arguments put before every subcommand, and environment variables of the CLI process. What
/// [`SessionBuilder::runtime`](crate::SessionBuilder::runtime), [`Containers::new`],
/// [`Ops::runtime`](crate::ops::Ops::runtime) and [`Pool`](crate::pool::Pool)'s sessions take; a bare
/// [`Runtime`] converts into one with the defaults. Cheap to clone.
///
/// The CLI runs with this process's environment, so `DOCKER_HOST`, `DOCKER_CONTEXT` and
/// `CONTAINER_HOST` work as they do on the command line; [`env`](Engine::env) adds to it for
/// this engine only. Values given to `env` are not shown by `Debug`, logged, or put in errors.
///
/// ```
/// use boxshell::{Engine, Runtime};
/// let remote = Engine::new(Runtime::Docker)
///     .program("/usr/local/bin/docker")
///     .global_args(["--context", "prod"])
///     .env("DOCKER_CERT_PATH", "/secrets/docker");
/// assert_eq!(remote.runtime(), &Runtime::Docker);
/// assert!(!format!("{remote:?}").contains("/secrets/docker"));
/// ```
///
/// [`Containers::new`]: crate::container::Containers::new
#[derive(Clone, PartialEq, Eq)]
pub struct Engine {
    runtime: Runtime,
    program: OsString,
    global_args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
}

impl From<Runtime> for Engine {
    fn from(runtime: Runtime) -> Engine {
        Engine::new(runtime)
    }
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("runtime", &self.runtime)
            .field("program", &self.program)
            .field("global_args", &self.global_args)
            .field("env", &text::EnvNames(&self.env))
            .finish()
    }
}

impl fmt::Display for Engine {
    /// The runtime's name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.runtime, f)
    }
}

impl Engine {
    /// `runtime` through its usual program (`docker`, `podman`, `kubectl` on `PATH`; for
    /// [`Runtime::Local`] the session's shell), with no global arguments.
    pub fn new(runtime: Runtime) -> Engine {
        let program = OsString::from(runtime.default_program());
        Engine { runtime, program, global_args: Vec::new(), env: Vec::new() }
    }

    /// The engine of the runtime [`Runtime::detect`] finds.
    ///
    /// # Errors
    /// As [`Runtime::detect`].
    pub fn detect() -> Result<Engine> {
        Runtime::detect().map(Engine::new)
    }

    /// Where the runtime's binary is, when it is not the usual one on `PATH` (`docker`,
    /// `podman`, `kubectl`, a [`Custom`](crate::Custom)'s program). The runtime still names the
    /// CLI in errors. Ignored by [`Runtime::Local`], whose program is the session's shell.
    pub fn program(mut self, program: impl Into<OsString>) -> Self {
        self.program = program.into();
        self
    }

    /// Arguments put before every subcommand (e.g. `--context`, `prod`); added to those given.
    pub fn global_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.global_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// An environment variable of the CLI process (`DOCKER_HOST`, `CONTAINER_HOST`,
    /// `KUBECONFIG`, ...), on top of this process's environment, which is not changed.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// What errors say they went through.
    pub(crate) fn via(&self) -> Via {
        Via::Runtime(self.runtime.clone())
    }

    /// The program that is run.
    pub fn get_program(&self) -> &OsStr {
        &self.program
    }

    /// The global arguments.
    pub fn get_global_args(&self) -> &[OsString] {
        &self.global_args
    }

    /// Checks that the engine answers: `docker version`, `podman info`, `kubectl version`;
    /// for a local shell or a custom CLI, that the program exists.
    ///
    /// # Errors
    /// [`Error::RuntimeNotFound`] when the program is missing; [`Error::RuntimeUnavailable`]
    /// with the CLI's own words when it runs but its engine does not answer.
    pub fn probe(&self) -> Result<()> {
        let Some(mut cmd) = self.probe_command() else {
            which::which(&self.program)
                .map_err(|e| self.spawn_error(&self.program, std::io::Error::new(std::io::ErrorKind::NotFound, e)))?;
            return Ok(());
        };
        let out = self.run_command(Op("probe", ""), &mut cmd, PROBE_TIMEOUT)?;
        if out.status.success() && !out.stdout.trim_ascii().is_empty() {
            Ok(())
        } else {
            Err(Error::RuntimeUnavailable { via: self.via(), command: proc::describe(&cmd), message: out.message() })
        }
    }

    /// The call that asks the engine whether it answers; `None` for a local shell or a custom
    /// CLI, which are only looked for.
    fn probe_command(&self) -> Option<Command> {
        let args: &[&str] = match self.runtime {
            Runtime::Docker => &["version", "--format", "{{.Server.Version}}"],
            Runtime::Podman => &["info", "--format", "{{.Host.OCIRuntime.Name}}"],
            Runtime::Kubectl(_) => &["version", "--request-timeout=5s"],
            Runtime::Local | Runtime::Custom(_) => return None,
        };
        let mut cmd = self.command();
        cmd.args(args);
        Some(cmd)
    }

    /// The program with the global arguments and the environment, ready for a subcommand.
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
                let mut cmd = proc::host_command(argv);
                cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
                cmd
            }
            Runtime::Docker | Runtime::Podman => {
                let mut cmd = self.command();
                cmd.arg("exec");
                if spec.interactive {
                    cmd.arg("-i");
                }
                if spec.tty {
                    cmd.arg("-t");
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
                if spec.tty {
                    cmd.arg("-t");
                }
                cmd.args(k.scope_args()).args(spec.extra).arg(spec.target);
                if let Some(c) = k.get_container() {
                    cmd.args(["-c", c]);
                }
                cmd.arg("--").args(argv);
                cmd
            }
            Runtime::Custom(c) => {
                let mut cmd = self.command();
                let template = if spec.tty { c.get_terminal_args().unwrap_or(c.args()) } else { c.args() };
                cmd.args(template.iter().map(|a| a.replace("{target}", spec.target))).args(spec.extra);
                if c.is_remote_shell() {
                    let words: Vec<String> = argv.iter().map(|a| text::quote(&a.to_string_lossy())).collect();
                    cmd.arg(words.join(" "));
                } else {
                    cmd.args(argv);
                }
                cmd
            }
        }
    }

    /// `reap.sh`, run by `shell` in `target` as `user` without stdin, as `reap` says: the one
    /// argv of every signalling call.
    pub(crate) fn reap(&self, target: &str, user: Option<&str>, shell: &str, reap: &Reap<'_>) -> Command {
        let args = reap.args();
        let mut argv: Vec<&OsStr> = [shell, "-c", crate::reap::script(), "reap"].map(OsStr::new).to_vec();
        argv.extend(args.iter().map(OsStr::new));
        self.exec(&ExecSpec { target, interactive: false, tty: false, user, extra: &[] }, &argv)
    }

    /// Runs a one-shot CLI call with `args` after the global ones; see [`Engine::run_command`].
    pub(crate) fn run<I, S>(&self, op: Op<'_>, args: I, timeout: Duration) -> Result<(Command, Captured)>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command();
        cmd.args(args);
        let out = self.run_command(op, &mut cmd, timeout)?;
        Ok((cmd, out))
    }

    /// Runs `cmd` (built by this engine) with a deadline; see [`Caller::call`].
    pub(crate) fn run_command(&self, op: Op<'_>, cmd: &mut Command, timeout: Duration) -> Result<Captured> {
        self.caller().call(op, cmd, timeout)
    }

    /// [`Error::Failed`] for `op` run as `cmd`.
    pub(crate) fn failed(&self, op: Op<'_>, cmd: &Command, message: String) -> Error {
        self.caller().failed(op, cmd, message)
    }

    /// The error for a program that could not be started.
    pub(crate) fn spawn_error(&self, program: &OsStr, e: std::io::Error) -> Error {
        self.caller().spawn_error(program, e)
    }

    fn caller(&self) -> Caller {
        Caller { via: self.via() }
    }

    /// Why an exec into `target` failed: the container is missing or not running, the engine
    /// does not answer, or (when none of these) `fallback`.
    pub(crate) fn diagnose(&self, target: &str, message: &str, fallback: Error) -> Error {
        self.container_problem(target, message).unwrap_or(fallback)
    }

    /// The call that prints the state of `target` (`running`, `exited`; a pod's `Running`,
    /// `Pending`); `None` when the runtime has no such call. For a kubectl `TYPE/NAME`
    /// target, which kubectl resolves to a pod itself, the call only says that it exists.
    fn state_command(&self, target: &str) -> Option<Command> {
        let args = match &self.runtime {
            Runtime::Docker | Runtime::Podman => {
                vec!["inspect", "--type", "container", "--format", "{{.State.Status}}", "--", target]
            }
            Runtime::Kubectl(k) => {
                let (kind, format) = match self.resolves_target(target) {
                    true => (None, "name"),
                    false => (Some("pod"), "jsonpath={.status.phase}"),
                };
                let mut args = vec!["get"];
                args.extend(kind);
                args.extend(k.scope_args());
                args.extend(["-o", format, "--", target]);
                args
            }
            _ => return None,
        };
        let mut cmd = self.command();
        cmd.args(args);
        Some(cmd)
    }

    /// Whether the CLI resolves `target` to a container itself: kubectl's `TYPE/NAME`.
    fn resolves_target(&self, target: &str) -> bool {
        matches!(self.runtime, Runtime::Kubectl(_)) && target.contains('/')
    }

    /// What keeps `target` from running commands, if anything: missing, not running, or an
    /// engine that does not answer. `message` is what the failed call printed.
    pub(crate) fn container_problem(&self, target: &str, message: &str) -> Option<Error> {
        let mut cmd = self.state_command(target)?;
        let status = self.run_command(Op("inspect", target), &mut cmd, PROBE_TIMEOUT).map(|out| (cmd, out));
        let via = self.via();
        let container = target.to_string();
        let message = message.to_string();
        Some(match status {
            // `TYPE/NAME` exists: kubectl exec picks its pod, and says what is wrong with it.
            Ok((_, out)) if out.status.success() && self.resolves_target(target) => return None,
            Ok((cmd, out)) if out.status.success() => match String::from_utf8_lossy(&out.stdout).trim() {
                word if State::from_engine(word) == State::Running => return None,
                word if !word.is_empty() && word.len() <= 20 && word.bytes().all(|b| b.is_ascii_alphabetic()) => {
                    Error::ContainerNotRunning {
                        via,
                        container,
                        state: State::from_engine(word),
                        engine_state: word.to_lowercase(),
                        message,
                    }
                }
                _ => Error::RuntimeUnavailable {
                    via,
                    command: proc::describe(&cmd),
                    message: format!(
                        "unexpected answer {:?}",
                        proc::said(&out.stdout).chars().take(80).collect::<String>()
                    ),
                },
            },
            Ok((_, out)) if is_no_such_container(&out.message()) => {
                Error::ContainerNotFound { via, container, message }
            }
            Ok((cmd, out)) => {
                let said = out.message();
                let message = match (said.is_empty(), said == message) {
                    (true, _) | (_, true) => message,
                    _ => format!("{said}; {message}"),
                };
                Error::RuntimeUnavailable { via, command: proc::describe(&cmd), message }
            }
            Err(e) => e,
        })
    }
}

// Detection probes engines, so it is said here, above the runtimes' names.
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
        detect_among(wanted.as_deref(), &[Engine::new(Runtime::Podman), Engine::new(Runtime::Docker)])
    }
}

/// The runtime named by `wanted`, if any, else the first of `candidates` whose engine answers.
pub(crate) fn detect_among(wanted: Option<&str>, candidates: &[Engine]) -> Result<Runtime> {
    if let Some(name) = wanted {
        let runtime: Runtime = name.parse()?;
        Engine::new(runtime.clone()).probe()?;
        return Ok(runtime);
    }
    let mut tried = Vec::new();
    for engine in candidates {
        match engine.probe() {
            Ok(()) => {
                log::info!("detected container runtime {}", engine.runtime);
                return Ok(engine.runtime.clone());
            }
            Err(e) => tried.push(format!("{} ({e})", engine.runtime)),
        }
    }
    Err(Error::NoRuntime { tried: tried.join("; ") })
}

/// The parts of an exec call besides the program to run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExecSpec<'a> {
    pub target: &'a str,
    pub interactive: bool,
    /// With a terminal (`-t`): the client's stdio must be one.
    pub tty: bool,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proc::RunError;
    use crate::runtime::{Custom, Kubectl};

    fn argv(cmd: &Command) -> Vec<String> {
        std::iter::once(cmd.get_program()).chain(cmd.get_args()).map(|a| a.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn exec_argv_per_runtime() {
        let extra = vec![OsString::from("--privileged")];
        let spec = ExecSpec { target: "web", interactive: true, tty: false, user: Some("1000"), extra: &extra };
        let mut docker = Engine::new(Runtime::Docker);
        docker.global_args = vec!["--context".into(), "prod".into()];
        assert_eq!(
            argv(&docker.exec(&spec, &[OsStr::new("/bin/sh")])),
            ["docker", "--context", "prod", "exec", "-i", "-u", "1000", "--privileged", "--", "web", "/bin/sh"]
        );
        let podman = Engine::new(Runtime::Podman);
        let spec = ExecSpec { interactive: false, user: None, extra: &[], ..spec };
        assert_eq!(
            argv(&podman.exec(&spec, &[OsStr::new("sh"), OsStr::new("-c"), OsStr::new("x")])),
            ["podman", "exec", "--", "web", "sh", "-c", "x"]
        );
        // A local shell runs as it is, or (when this process ignores SIGINT, as under `nohup`)
        // through a program that resets it.
        let local = argv(&Engine::new(Runtime::Local).exec(&spec, &[OsStr::new("/bin/sh")]));
        let reset: &[&str] = match local.first().map(String::as_str) {
            Some("env") => &["env", "--default-signal=INT,QUIT"],
            Some("perl") => &local[..3].iter().map(String::as_str).collect::<Vec<_>>(),
            _ => &[],
        };
        assert_eq!(local[reset.len()..], ["/bin/sh"], "{local:?}");
    }

    #[test]
    fn kubectl_argv() {
        let sh = [OsStr::new("/bin/sh"), OsStr::new("/dev/stdin")];
        let spec = ExecSpec { target: "web-0", interactive: true, tty: false, user: None, extra: &[] };
        let plain = Engine::new(Runtime::Kubectl(Kubectl::new()));
        assert_eq!(argv(&plain.exec(&spec, &sh)), ["kubectl", "exec", "-i", "web-0", "--", "/bin/sh", "/dev/stdin"]);
        let full = Kubectl::new().namespace("jobs").container("worker");
        let cli = Engine::new(Runtime::Kubectl(full)).global_args(["--kubeconfig", "/k", "--context", "prod"]);
        let extra = vec![OsString::from("--pod-running-timeout=5s")];
        let spec = ExecSpec { extra: &extra, ..spec };
        assert_eq!(
            argv(&cli.exec(&spec, &sh)),
            [
                "kubectl",
                "--kubeconfig",
                "/k",
                "--context",
                "prod",
                "exec",
                "-i",
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
                "--context",
                "prod",
                "exec",
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

    /// A kubeconfig whose one context, `unreachable` (the current one), points at a closed
    /// port on loopback: kubectl reads all its flags, then fails to dial. Removed on drop.
    struct UnreachableCluster(std::path::PathBuf);

    impl UnreachableCluster {
        fn new() -> UnreachableCluster {
            let dir = std::env::temp_dir().join(format!("boxshell-kubeconfig-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("config");
            std::fs::write(
                &path,
                "apiVersion: v1\nkind: Config\n\
                 clusters:\n- name: unreachable\n  cluster:\n    server: https://127.0.0.1:9\n    insecure-skip-tls-verify: true\n\
                 users:\n- name: dummy\n  user:\n    token: dummy-token\n\
                 contexts:\n- name: unreachable\n  context:\n    cluster: unreachable\n    user: dummy\n\
                 current-context: unreachable\n",
            )
            .unwrap();
            UnreachableCluster(dir)
        }

        /// kubectl for `k`, with `global` args, reading this kubeconfig (only in its own
        /// environment).
        fn cli(&self, k: Kubectl, global: &[&str]) -> Engine {
            let mut cli = Engine::new(Runtime::Kubectl(k));
            cli.global_args = global.iter().map(OsString::from).collect();
            cli.env = vec![("KUBECONFIG".into(), self.0.join("config").into_os_string())];
            cli
        }
    }

    impl Drop for UnreachableCluster {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Runs `cmd` (the real kubectl): `Ok` if kubectl took the argv and got as far as dialling
    /// the API server, else how it failed.
    fn dialled(mut cmd: Command) -> std::result::Result<(), String> {
        let out = match proc::run(&mut cmd, Duration::from_secs(20)) {
            Ok(out) => out,
            Err(RunError::Spawn(e)) => panic!(
                "cannot run `kubectl` ({e}): this test needs the real kubectl client on PATH (no \
                 cluster): `apt-get install kubernetes-client` on Debian, or `sudo \
                 scripts/setup-runtimes.sh`, or see https://kubernetes.io/docs/tasks/tools/"
            ),
            Err(RunError::TimedOut { stderr, .. }) => {
                return Err(format!("no answer in 20 s: {}", String::from_utf8_lossy(&stderr)));
            }
        };
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let usage = ["unknown flag", "unknown shorthand flag", "flag needs an argument", "Usage:", "--help"];
        if out.status.success()
            || !stderr.contains("The connection to the server 127.0.0.1:9 was refused")
            || usage.iter().any(|u| stderr.contains(u))
            || stderr.lines().any(|l| l.to_ascii_lowercase().starts_with("error"))
        {
            return Err(format!("{}: {stderr}", out.status));
        }
        Ok(())
    }

    #[test]
    fn kubectl_accepts_every_argv() {
        let cluster = UnreachableCluster::new();
        let sh = OsStr::new("/bin/sh");
        let launch = [sh, OsStr::new("-c"), OsStr::new(crate::session::protocol::LAUNCH), sh];
        let pids = [43, 44];
        let reap = Reap {
            procs: crate::reap::Procs::Pids(&pids),
            signal: crate::reap::Signal::Int,
            shell: 42,
            instance: Default::default(),
            watermark: Default::default(),
            remove: None,
        };
        // What follows `--` kubectl passes on unread; the scripts are the real ones.
        let feed =
            crate::session::feeder_argv("/bin/sh", "/tmp/.boxshell-x", "/tmp/.boxshell-x/in-1", "BOXSHELL_FEED=x", "0");
        let extra = [OsString::from("--pod-running-timeout=5s")];
        let timeout = ["--request-timeout=5s"];
        let clis = [
            cluster.cli(Kubectl::new(), &[]),
            cluster.cli(Kubectl::new().namespace("jobs"), &timeout),
            cluster.cli(Kubectl::new().container("main"), &[]),
            cluster.cli(Kubectl::new().namespace("jobs").container("main"), &["--context", "unreachable", timeout[0]]),
        ];
        let mut calls = Vec::new();
        for cli in &clis {
            let exec = |target, interactive, extra, argv: &[&OsStr]| {
                cli.exec(&ExecSpec { target, interactive, tty: false, user: None, extra }, argv)
            };
            // The session's shell (with exec args, and into a TYPE/NAME), the feeder, the
            // signalling call (no -i), the probe, the pod's phase, a TYPE/NAME's existence.
            calls.push(exec("web-0", true, &[], &launch));
            calls.push(exec("deploy/web", true, &extra, &launch));
            calls.push(exec("web-0", true, &[], &feed));
            calls.push(cli.reap("web-0", None, "/bin/sh", &reap));
            calls.push(cli.probe_command().unwrap());
            calls.push(cli.state_command("web-0").unwrap());
            calls.push(cli.state_command("deploy/web").unwrap());
        }
        for cmd in calls {
            let call = proc::describe(&cmd);
            if let Err(failure) = dialled(cmd) {
                panic!("`{call}` did not reach the API server: {failure}");
            }
        }

        // A malformed argv is told apart: docker's `-u USER` is no flag of `kubectl exec`.
        let docker_shaped = Engine::new(Runtime::Docker).program("kubectl");
        let spec = ExecSpec { target: "web-0", interactive: true, tty: false, user: Some("1000"), extra: &[] };
        let mut cmd = docker_shaped.exec(&spec, &launch);
        cmd.envs(cluster.cli(Kubectl::new(), &[]).env);
        let failure = dialled(cmd).unwrap_err();
        assert!(failure.contains("unknown shorthand flag: 'u' in -u"), "{failure}");
    }

    #[test]
    fn custom_argv() {
        let spec = ExecSpec { target: "box1", interactive: true, tty: false, user: None, extra: &[] };
        let cmd = [OsStr::new("sh"), OsStr::new("-c"), OsStr::new("echo 'a b'; kill $1"), OsStr::new("x")];
        let nerdctl = Engine::new(Runtime::Custom(Custom::new("nerdctl", ["exec", "-i", "{target}"])));
        assert_eq!(
            argv(&nerdctl.exec(&spec, &cmd)),
            ["nerdctl", "exec", "-i", "box1", "sh", "-c", "echo 'a b'; kill $1", "x"]
        );
        let ssh = Engine::new(Runtime::Custom(Custom::new("ssh", ["-T", "user@{target}"]).remote_shell()));
        let got = argv(&ssh.exec(&spec, &cmd));
        assert_eq!(got[..3], ["ssh", "-T", "user@box1"]);
        // What the remote shell runs is the argv, word for word.
        let out = Command::new("sh").arg("-c").arg(format!("printf '[%s]' {}", got[3])).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "[sh][-c][echo 'a b'; kill $1][x]");
    }

    #[test]
    fn detection_takes_the_override_or_the_first_that_answers() {
        assert_eq!(detect_among(Some("local"), &[]).unwrap(), Runtime::Local);
        let err = detect_among(Some("nerd"), &[]).unwrap_err();
        assert!(matches!(err, Error::InvalidName { what: "runtime", .. }), "{err:?}");

        let missing = |runtime: Runtime| Engine { program: "/nonexistent/engine".into(), ..Engine::new(runtime) };
        // An engine that does not answer: `false` runs and fails.
        let silent = Engine { program: "false".into(), ..Engine::new(Runtime::Docker) };
        let err = detect_among(None, &[missing(Runtime::Podman), silent]).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::NoRuntime { .. }), "{err:?}");
        assert!(text.contains("podman (podman: program `/nonexistent/engine` not found"), "{text}");
        assert!(text.contains("docker (docker: engine not answering (`false version"), "{text}");
        assert!(text.contains("apt-get install podman"), "{text}");

        let local = Engine::new(Runtime::Local);
        assert_eq!(detect_among(None, &[missing(Runtime::Podman), local]).unwrap(), Runtime::Local);
    }

    #[test]
    fn missing_program_is_named_with_a_hint() {
        let mut cli = Engine::new(Runtime::Docker);
        cli.program = "/nonexistent/docker".into();
        let err = cli.probe().unwrap_err();
        assert!(matches!(err, Error::RuntimeNotFound { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("/nonexistent/docker") && text.contains("apt-get install docker.io"), "{text}");
    }
}
