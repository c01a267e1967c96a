//! What a container is created from: [`ContainerSpec`], and the `run` argv it makes.

use std::ffi::OsString;

use super::MANAGED_LABEL;
use crate::error::{Error, Result};
use crate::text;

/// What to create: an image and everything `run` takes. Built with methods, passed to
/// [`Containers::run`](super::Containers::run).
#[derive(Clone, Default)]
#[must_use]
pub struct ContainerSpec {
    image: String,
    pub(super) name: Option<String>,
    command: Vec<String>,
    env: Vec<(String, String)>,
    volumes: Vec<String>,
    pub(super) log_volume: Option<String>,
    ports: Vec<String>,
    workdir: Option<String>,
    user: Option<String>,
    labels: Vec<(String, String)>,
    init: bool,
    stdin_open: bool,
    tty: bool,
    memory: Option<String>,
    cpus: Option<String>,
    extra_args: Vec<OsString>,
}

impl std::fmt::Debug for ContainerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerSpec")
            .field("image", &self.image)
            .field("name", &self.name)
            .field("command", &self.command)
            .field("env", &text::EnvNames(&self.env))
            .field("volumes", &self.volumes)
            .field("ports", &self.ports)
            .finish_non_exhaustive()
    }
}

impl ContainerSpec {
    /// A container of `image`.
    pub fn new(image: impl Into<String>) -> ContainerSpec {
        ContainerSpec { image: image.into(), ..ContainerSpec::default() }
    }

    /// Its name. Without one, the engine makes one up.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The command to run instead of the image's default, as argv (no shell).
    pub fn command<I, S>(mut self, argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.command = argv.into_iter().map(Into::into).collect();
        self
    }

    /// An environment variable. Its value is handed to the CLI through its environment,
    /// not on its command line (`-e KEY`), so it does not show in `ps`.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// A volume, as `-v` takes it: `host-path:container-path[:ro]` or `name:path`.
    pub fn volume(mut self, volume: impl Into<String>) -> Self {
        self.volumes.push(volume.into());
        self
    }

    /// A volume for the container's logs (`host-dir:container-dir`), kept on the host for
    /// post-mortem reading after the container is gone. The host directory is created if
    /// missing.
    pub fn log_volume(mut self, volume: impl Into<String>) -> Self {
        self.log_volume = Some(volume.into());
        self
    }

    /// A published port, as `-p` takes it: `8080:80`, `127.0.0.1:8080:80/tcp`.
    pub fn port(mut self, port: impl Into<String>) -> Self {
        self.ports.push(port.into());
        self
    }

    /// The working directory of the command.
    pub fn workdir(mut self, dir: impl Into<String>) -> Self {
        self.workdir = Some(dir.into());
        self
    }

    /// The user to run as: a name or `uid[:gid]`.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// A label, besides `boxshell.managed=true` which every container boxshell creates has.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.push((key.into(), value.into()));
        self
    }

    /// Runs an init process as PID 1 (`--init`): it reaps zombies and forwards signals, so
    /// `stop` is immediate even if the command ignores SIGTERM.
    pub fn init(mut self) -> Self {
        self.init = true;
        self
    }

    /// Keeps the command's stdin open (`-i`), so that a command reading it (a shell) waits
    /// for input instead of ending, and [`Containers::attach`](super::Containers::attach) can
    /// send it lines. Its stdout and stderr stay apart.
    pub fn stdin_open(mut self) -> Self {
        self.stdin_open = true;
        self
    }

    /// Keeps stdin open and gives the command a terminal (`-i -t`), so that
    /// [`Containers::attach`](super::Containers::attach) gets a console. The terminal makes
    /// stdout and stderr one stream, with lines ending in `\r\n`.
    pub fn tty(mut self) -> Self {
        self.stdin_open = true;
        self.tty = true;
        self
    }

    /// A memory limit, as `--memory` takes it: `512m`, `2g`.
    pub fn memory(mut self, limit: impl Into<String>) -> Self {
        self.memory = Some(limit.into());
        self
    }

    /// A CPU limit, as `--cpus` takes it: `1.5`.
    pub fn cpus(mut self, cpus: impl Into<String>) -> Self {
        self.cpus = Some(cpus.into());
        self
    }

    /// Further arguments for `run`, put before the image.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.extra_args.push(arg.into());
        self
    }

    /// The `run -d ...` argv and the environment that carries the `-e` values.
    pub(super) fn run_args(&self) -> Result<(Vec<OsString>, Env)> {
        if self.image.is_empty() || self.image.starts_with('-') {
            return Err(Error::InvalidName {
                what: "image",
                value: self.image.clone(),
                reason: "an image name must not be empty or start with `-`",
            });
        }
        let mut args: Vec<OsString> = vec!["run".into(), "-d".into()];
        let mut push = |flag: &str, value: &str| {
            args.push(flag.into());
            args.push(value.into());
        };
        if let Some(name) = &self.name {
            text::container_name(name)?;
            push("--name", name);
        }
        push("--label", &format!("{MANAGED_LABEL}=true"));
        for (k, v) in &self.labels {
            push("--label", &format!("{k}={v}"));
        }
        for (key, value) in &self.env {
            text::env_var(key, value, false)?;
            push("-e", key);
        }
        for volume in self.volumes.iter().chain(&self.log_volume) {
            push("-v", volume);
        }
        for port in &self.ports {
            push("-p", port);
        }
        if let Some(dir) = &self.workdir {
            push("-w", dir);
        }
        if let Some(user) = &self.user {
            push("-u", user);
        }
        if let Some(memory) = &self.memory {
            push("--memory", memory);
        }
        if let Some(cpus) = &self.cpus {
            push("--cpus", cpus);
        }
        if self.init {
            args.push("--init".into());
        }
        if self.stdin_open {
            args.push("-i".into());
        }
        if self.tty {
            args.push("-t".into());
        }
        args.extend(self.extra_args.iter().cloned());
        args.push(self.image.clone().into());
        args.extend(self.command.iter().map(OsString::from));
        Ok((args, self.env.clone()))
    }
}

/// Environment variables, in order.
pub(super) type Env = Vec<(String, String)>;
