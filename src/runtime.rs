//! Which CLI reaches the container: [`Runtime`], with the options of kubectl and of custom
//! CLIs, and which targets each takes.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::text;

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
    /// `kubectl exec -i [-n NS] POD [-c CONTAINER] -- SHELL`: the target is a pod (or
    /// `TYPE/NAME`, such as `deploy/web`). The kubeconfig context is one of the engine's
    /// global arguments: `Engine::new(rt).global_args(["--context", "prod"])`.
    Kubectl(Kubectl),
    /// Any CLI of the same shape, e.g. `nerdctl exec -i {target}` or `ssh {target}`.
    Custom(Custom),
}

/// Where `kubectl exec` goes in a cluster: namespace and container, each optional. Which
/// cluster (`--context`, `--kubeconfig`) is said once for every kubectl call, as the
/// [`Engine`](crate::Engine)'s global arguments.
///
/// ```
/// use boxshell::{Engine, Kubectl, Runtime};
/// let rt = Runtime::Kubectl(Kubectl::new().namespace("jobs").container("worker"));
/// let prod = Engine::new(rt).global_args(["--context", "prod"]);
/// assert_eq!(prod.runtime().name(), "kubectl");
/// ```
// Boxed, like `Custom`, so that a `Runtime` (carried by errors) stays two words.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Kubectl(Box<KubectlPlace>);

#[derive(Clone, Default, PartialEq, Eq, Hash)]
struct KubectlPlace {
    namespace: Option<String>,
    container: Option<String>,
}

impl Kubectl {
    /// The context's namespace, the pod's default container.
    pub fn new() -> Kubectl {
        Kubectl::default()
    }

    /// The namespace (`-n`).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.0.namespace = Some(namespace.into());
        self
    }

    /// The container in the pod (`-c`), for pods with several containers.
    pub fn container(mut self, container: impl Into<String>) -> Self {
        self.0.container = Some(container.into());
        self
    }

    /// The namespace, if one was given.
    pub fn get_namespace(&self) -> Option<&str> {
        self.0.namespace.as_deref()
    }

    /// The container, if one was given.
    pub fn get_container(&self) -> Option<&str> {
        self.0.container.as_deref()
    }

    /// `-n NS`, as given.
    pub(crate) fn scope_args(&self) -> Vec<&str> {
        let mut args = Vec::new();
        if let Some(n) = &self.0.namespace {
            args.extend(["-n", n]);
        }
        args
    }
}

impl fmt::Debug for Kubectl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kubectl").field("namespace", &self.0.namespace).field("container", &self.0.container).finish()
    }
}

/// A CLI that runs a command in a target, given as a program and an argument template in
/// which `{target}` stands for the session's target; the command's argv follows.
///
/// The program names the CLI (errors say `ssh: ...`) and is the binary run unless
/// [`Engine::program`](crate::Engine::program) gives another path for it, as it does for
/// `docker`: the runtime says which CLI, the engine where its binary is.
///
/// ```
/// use boxshell::{Custom, Runtime};
/// // nerdctl has docker's shape.
/// let nerdctl = Runtime::Custom(Custom::new("nerdctl", ["exec", "-i", "{target}"]));
/// // ssh hands its arguments to a remote shell, so the argv must be sent quoted.
/// let ssh = Runtime::Custom(Custom::new("ssh", ["-T", "{target}"]).remote_shell());
/// assert_eq!(ssh.name(), "ssh");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Custom(Box<CustomCli>);

#[derive(Clone, PartialEq, Eq, Hash)]
struct CustomCli {
    program: String,
    args: Vec<String>,
    remote_shell: bool,
    terminal_args: Option<Vec<String>>,
}

impl Custom {
    /// `program` with `args`; each `{target}` in them is replaced by the target.
    pub fn new<I, S>(program: impl Into<String>, args: I) -> Custom
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Custom(Box::new(CustomCli {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            remote_shell: false,
            terminal_args: None,
        }))
    }

    /// The CLI passes the command to a shell on the other side (as `ssh` does): the argv is
    /// sent as one line, each word quoted.
    pub fn remote_shell(mut self) -> Self {
        self.0.remote_shell = true;
        self
    }

    /// The argument template for a command on a terminal ([`Cmd::terminal`](crate::Cmd::terminal)),
    /// in place of [`args`](Custom::args): the CLI's form that gives the command a TTY, as
    /// `docker exec -i -t` or `ssh -q -tt` (without `-q`, ssh writes "Connection to HOST
    /// closed." on the terminal). Without it, a terminal command fails with
    /// [`Error::Unsupported`](crate::Error::Unsupported).
    ///
    /// ```
    /// use boxshell::Custom;
    /// let nerdctl = Custom::new("nerdctl", ["exec", "-i", "{target}"]).terminal(["exec", "-i", "-t", "{target}"]);
    /// assert_eq!(nerdctl.get_terminal_args(), Some(&["exec", "-i", "-t", "{target}"].map(String::from)[..]));
    /// ```
    pub fn terminal<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.0.terminal_args = Some(args.into_iter().map(Into::into).collect());
        self
    }

    /// The argument template for terminal commands, if set.
    pub fn get_terminal_args(&self) -> Option<&[String]> {
        self.0.terminal_args.as_deref()
    }

    /// The program.
    pub fn program(&self) -> &str {
        &self.0.program
    }

    /// The argument template.
    pub fn args(&self) -> &[String] {
        &self.0.args
    }

    /// Whether the CLI hands the command to a remote shell.
    pub fn is_remote_shell(&self) -> bool {
        self.0.remote_shell
    }
}

impl fmt::Debug for Custom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Custom")
            .field("program", &self.0.program)
            .field("args", &self.0.args)
            .field("remote_shell", &self.0.remote_shell)
            .field("terminal_args", &self.0.terminal_args)
            .finish()
    }
}

impl Runtime {
    /// The runtime's name: `docker`, `podman`, `local`, `kubectl`, or a custom CLI's program.
    pub fn name(&self) -> &str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Podman => "podman",
            Runtime::Local => "local",
            Runtime::Kubectl(_) => "kubectl",
            Runtime::Custom(c) => c.program(),
        }
    }

    /// Whether the target is a container (false for [`Runtime::Local`]).
    pub fn is_container(&self) -> bool {
        !matches!(self, Runtime::Local)
    }

    /// Whether a client that exited with `code`, its stderr ending in `said`, lost its
    /// connection rather than saw its shell exit: ssh's own code 255, for a remote-shell CLI;
    /// docker's ssh transport (`DOCKER_HOST=ssh://`, or a context) exits 1 and names the ssh
    /// command that failed. Engine CLIs have no other code apart from their commands' codes.
    pub(crate) fn lost_connection(&self, code: i32, said: &[u8]) -> bool {
        match self {
            Runtime::Custom(c) if c.is_remote_shell() => code == 255,
            Runtime::Docker if code == 1 => {
                let said = String::from_utf8_lossy(said);
                said.rfind("command [ssh ").is_some_and(|at| said[at..].contains("] has exited with exit status 255"))
            }
            _ => false,
        }
    }

    /// Whether this is a container engine boxshell manages containers of (Docker, Podman).
    pub fn manages_containers(&self) -> bool {
        matches!(self, Runtime::Docker | Runtime::Podman)
    }

    pub(crate) fn default_program(&self) -> &str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Podman => "podman",
            Runtime::Local => "sh",
            Runtime::Kubectl(_) => "kubectl",
            Runtime::Custom(c) => c.program(),
        }
    }

    pub(crate) fn install_hint(&self) -> &'static str {
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

/// Checks a session's target for its runtime: a container name, a pod (or `TYPE/NAME`), or
/// for a custom CLI anything that cannot be read as an option (for one that hands its command
/// to a remote shell, only what no shell reads specially: the target may be part of the remote
/// command line). Local takes any target.
pub(crate) fn validate_target(runtime: &Runtime, target: &str) -> Result<()> {
    match runtime {
        Runtime::Local => Ok(()),
        Runtime::Docker | Runtime::Podman => text::container_name(target),
        Runtime::Kubectl(_) => text::pod_name(target),
        Runtime::Custom(c) if c.is_remote_shell() => text::remote_word("target", target),
        Runtime::Custom(_) => text::word("target", target),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let ssh =
            Runtime::Custom(Custom::new("ssh", ["-T", "host", "docker", "exec", "-i", "{target}"]).remote_shell());
        validate_target(&ssh, "web-1.x").unwrap();
        validate_target(&ssh, "user@host:2222").unwrap();
        for bad in ["x;id", "$(id)", "a'b", "`id`", "a|b", "a&b", "~x", "*", "-x"] {
            assert!(validate_target(&ssh, bad).is_err(), "{bad:?}");
        }
        validate_target(&Runtime::Local, "").unwrap();
    }

    #[test]
    fn a_lost_connection_is_told_from_an_exit() {
        let ssh = Runtime::Custom(Custom::new("ssh", ["-T", "{target}"]).remote_shell());
        assert!(ssh.lost_connection(255, b""));
        assert!(
            !ssh.lost_connection(1, b"")
                && !Runtime::Custom(Custom::new("ssh", ["{target}"])).lost_connection(255, b"")
        );
        // docker's own words when its ssh transport drops (docker/cli's connhelper).
        let said = b"out\ncommand [ssh -o ConnectTimeout=30 -T -- root@10.0.0.2 docker system dial-stdio] has \
                     exited with exit status 255, make sure the URL is valid, and Docker 18.09 or later is \
                     installed on the remote host: stderr=Connection to 10.0.0.2 closed by remote host.\n";
        assert!(Runtime::Docker.lost_connection(1, said));
        assert!(!Runtime::Docker.lost_connection(0, said) && !Runtime::Docker.lost_connection(255, said));
        assert!(!Runtime::Docker.lost_connection(1, b"grep: nothing\n") && !Runtime::Podman.lost_connection(1, said));
        assert!(!Runtime::Docker.lost_connection(1, b"command [ssh x] has exited with exit status 1\n"));
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
}
