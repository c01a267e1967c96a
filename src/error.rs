//! The one error type of the crate.

use std::fmt;
use std::io;
use std::time::Duration;

use crate::output::{Output, Stream};
use crate::runtime::Runtime;
use crate::state::State;

/// Shorthand for `Result<T, boxshell::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in boxshell.
///
/// Every variant names what failed: the runtime, the container and, where there is one, the
/// command line and the CLI's own message. A command that exits non-zero or times out is not an
/// error: that is data in [`Output`](crate::Output) (see [`Output::check`](crate::Output::check)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The program of a runtime or backend (docker, podman, tmux, a local shell) is not
    /// installed: not on `PATH`, or the given path is missing.
    #[error("{via}: program `{program}` not found: {reason}. {hint}")]
    RuntimeNotFound {
        /// The runtime or tmux server whose program it is.
        via: Via,
        /// The program that was looked for.
        program: String,
        /// Why it could not be started.
        reason: String,
        /// How to install it.
        hint: &'static str,
    },

    /// The runtime's program runs, but its engine does not answer (daemon down, socket
    /// unreachable, no permission).
    #[error("{via}: engine not answering (`{command}`): {message}")]
    RuntimeUnavailable {
        /// The runtime.
        via: Via,
        /// The command that was tried.
        command: String,
        /// What the CLI printed.
        message: String,
    },

    /// [`Runtime::detect`](crate::Runtime::detect) found no runtime that answers.
    #[error(
        "no container runtime answers; tried: {tried}. Install one: `apt-get install podman` or `apt-get install docker.io` (then start dockerd), or set BOXSHELL_RUNTIME=local for a shell on this host"
    )]
    NoRuntime {
        /// Each runtime tried and why it was passed over.
        tried: String,
    },

    /// The container does not exist.
    #[error("{via}: container `{container}` not found: {message}")]
    ContainerNotFound {
        /// The runtime.
        via: Via,
        /// Container name or id.
        container: String,
        /// What the CLI printed.
        message: String,
    },

    /// The container exists but is not running (stopped, exited, created or paused).
    #[error("{via}: container `{container}` is not running ({engine_state}): {message}")]
    ContainerNotRunning {
        /// The runtime.
        via: Via,
        /// Container name or id.
        container: String,
        /// Its state: stopped, exited or paused.
        state: State,
        /// The state word of the engine, e.g. `exited` or `created`.
        engine_state: String,
        /// What the CLI printed.
        message: String,
    },

    /// A tmux session, or a session the [`Ops`](crate::ops::Ops) facade manages, does not exist.
    #[error("{via}: no session `{name}`")]
    NotFound {
        /// Where it was looked for: a tmux server, or [`Via::Ops`] (neither a tmux session
        /// nor a container, nor defined).
        via: Via,
        /// The session name.
        name: String,
    },

    /// A session or container of that name exists already.
    #[error("{via}: `{name}` already exists ({state})")]
    AlreadyExists {
        /// The runtime or tmux server that has it.
        via: Via,
        /// The name.
        name: String,
        /// Its state: running, or exited and not yet removed.
        state: State,
    },

    /// A name was found both as a tmux session and as a container; say which backend to use.
    #[error("`{name}` is both a tmux session and a container; give the backend to use")]
    Ambiguous {
        /// The name.
        name: String,
    },

    /// A configuration file (or configuration given in code) is wrong.
    #[error("{path}: {key}: {message}")]
    Config {
        /// The file, or `<definition>` for a [`SessionDef`](crate::ops::SessionDef) given in code.
        path: String,
        /// The key at fault, dotted (`ops.sessions.web.image`).
        key: String,
        /// What is wrong.
        message: String,
    },

    /// A name given to boxshell cannot be used: empty, starting with `-`, or holding
    /// characters the runtime does not allow.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        /// What the name is for, e.g. `container name`.
        what: &'static str,
        /// The name as given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A value given to boxshell cannot be used: a command, path or environment value
    /// holding a NUL byte, an exec without a program. The value itself is not shown.
    #[error("invalid {what}: {reason}")]
    InvalidValue {
        /// What the value is, e.g. `command` or `environment value`.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The runtime cannot do what was asked, e.g. `user` with the local runtime.
    #[error("{via}: {what} is not supported")]
    Unsupported {
        /// The runtime.
        via: Via,
        /// The option or operation.
        what: &'static str,
    },

    /// The session's shell could not be started in the container, or did not get ready.
    #[error("{via}: could not open a shell in `{container}` (`{command}`): {message}")]
    Open {
        /// The runtime.
        via: Via,
        /// Container name or id (`-` for the local runtime).
        container: String,
        /// The command line that was run.
        command: String,
        /// What went wrong, with what the shell or CLI printed.
        message: String,
    },

    /// The session's shell has exited (`exit`, a failure under `set -e`, the container stopped),
    /// so the session cannot run more commands.
    #[error("{via}: the shell of the session in `{container}` has exited{}", code.map(|c| format!(" with code {c}")).unwrap_or_default())]
    ShellExited {
        /// The runtime.
        via: Via,
        /// Container name or id.
        container: String,
        /// The shell's exit code, when known.
        code: Option<i32>,
    },

    /// The connection to the target dropped during a command: the runtime's client exited
    /// with the code it keeps for its own failures (255, for a
    /// [`remote_shell`](crate::Custom::remote_shell) CLI such as `ssh`; 1 with the words of
    /// docker's ssh transport, for docker reached through `DOCKER_HOST=ssh://` or a context)
    /// before the command ended. The shell went with it: later calls return
    /// [`Error::ShellExited`]. What the command printed until then is in `output`, the
    /// client's own words last on its stderr.
    #[error("{via}: the connection to `{container}` dropped during `{}`: {message}", output.command)]
    Disconnected {
        /// The runtime.
        via: Via,
        /// The target.
        container: String,
        /// What the client said (its last line on stderr), or its exit code.
        message: String,
        /// The command's output until the connection dropped.
        output: Box<crate::Output>,
    },

    /// [`Output::check`](crate::Output::check) on a command that exited non-zero or timed out.
    #[error("command `{command}` {}{}", if *timed_out { "timed out".to_string() } else { format!("exited with code {exit_code}") }, if stderr.is_empty() { String::new() } else { format!(": {stderr}") })]
    CommandFailed {
        /// The command.
        command: String,
        /// Its exit code.
        exit_code: i32,
        /// Whether it was stopped by a timeout.
        timed_out: bool,
        /// The end of its stderr (lossy UTF-8, at most 2 KiB).
        stderr: String,
    },

    /// An operation through a runtime CLI or tmux failed (start, stop, attach, logs, ...);
    /// holds the command line and what the CLI printed.
    #[error("{via}: {operation} `{name}` failed (`{command}`): {message}")]
    Failed {
        /// The runtime or tmux server the operation went through.
        via: Via,
        /// What was being done: `start`, `stop`, `attach`, `logs`, ...
        operation: &'static str,
        /// The container or session it was done to.
        name: String,
        /// The command line that was run.
        command: String,
        /// What the CLI printed (or how it ended, if it printed nothing).
        message: String,
    },

    /// [`Session::read_file`](crate::Session::read_file) on a file larger than the session's
    /// output cap.
    #[error("file `{path}` is larger than the output cap of {max_output} bytes")]
    FileTooLarge {
        /// The file.
        path: String,
        /// The cap ([`SessionBuilder::max_output`](crate::SessionBuilder::max_output)).
        max_output: usize,
    },

    /// A path in the container could not be used: a command's
    /// [`workdir`](crate::Cmd::workdir) (the command was not run), or a file system call of
    /// the session ([`Session::read_dir`](crate::Session::read_dir) and the other verbs named
    /// as `std::fs` names them). `kind` says why, in `std::io`'s words, so a caller can match
    /// it: `NotFound`, `PermissionDenied`, `NotADirectory`, `IsADirectory`, `AlreadyExists`,
    /// `DirectoryNotEmpty`, or `Other` with the tool's own message.
    #[error("{op} `{path}`: {message}")]
    Fs {
        /// What was being done: `workdir`, `read_dir`, `metadata`, `remove_file`, ...
        op: &'static str,
        /// The path (lossy UTF-8 if it is not UTF-8).
        path: String,
        /// Why, as `std::io` names it.
        kind: io::ErrorKind,
        /// What the tool said, or the kind in words.
        message: String,
    },

    /// Input could not be written to a running command: it was not started with
    /// [`Cmd::interactive`](crate::Cmd::interactive), its stdin was closed, or its input no
    /// longer reaches it.
    #[error("command `{command}`: cannot write to its stdin: {reason}")]
    StdinClosed {
        /// The command.
        command: String,
        /// Why.
        reason: String,
    },

    /// [`Running::expect`](crate::Running::expect) did not see what it waited for in time.
    /// The command goes on.
    #[error("command `{command}`: the awaited output did not appear on {stream:?} within {waited:?} ({} bytes seen: {:?})", seen.len(), String::from_utf8_lossy(&seen[seen.len().saturating_sub(200)..]))]
    ExpectTimeout {
        /// The command.
        command: String,
        /// The stream watched.
        stream: Stream,
        /// What the stream showed meanwhile (not consumed: the next `expect` sees it too).
        seen: Vec<u8>,
        /// How long it waited.
        waited: Duration,
    },

    /// The command ended before what was asked of it (an expect, a write to its stdin)
    /// could happen. Holds its output and exit code, which [`Running::wait`](crate::Running::wait)
    /// also returns.
    #[error("command `{}` ended (exit code {}{})", output.command, output.exit_code, if output.timed_out { ", timed out" } else { "" })]
    CommandEnded {
        /// Its output.
        output: Box<Output>,
    },

    /// An I/O error talking to a child process.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io { context: context.into(), source }
    }

    /// The error for `program` (of `via`) that could not be started: missing or not
    /// executable is [`Error::RuntimeNotFound`] with how to install it; anything else is I/O.
    pub(crate) fn spawn(via: Via, program: &std::ffi::OsStr, e: io::Error) -> Error {
        let program = program.to_string_lossy().into_owned();
        match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied => {
                let hint = via.install_hint();
                Error::RuntimeNotFound { via, program, reason: e.to_string(), hint }
            }
            _ => Error::io(format!("{via}: starting `{program}`"), e),
        }
    }
}

/// What an error went through: a container runtime's CLI, a tmux server, or the
/// [`Ops`](crate::ops::Ops) facade's definitions. Shown as `docker`, `tmux`, `tmux -L bots`, `ops`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Via {
    /// A runtime's CLI (or the local shell).
    Runtime(Runtime),
    /// tmux, on its default server (`None`) or the socket named (`tmux -L NAME`).
    Tmux(Option<String>),
    /// The facade, for a name that is no session it knows.
    Ops,
}

impl Via {
    fn install_hint(&self) -> &'static str {
        match self {
            Via::Runtime(runtime) => runtime.install_hint(),
            Via::Tmux(_) => "Install tmux (`apt-get install tmux`)",
            Via::Ops => "",
        }
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Via::Runtime(runtime) => write!(f, "{runtime}"),
            Via::Tmux(None) => f.write_str("tmux"),
            Via::Tmux(Some(socket)) => write!(f, "tmux -L {socket}"),
            Via::Ops => f.write_str("ops"),
        }
    }
}

impl From<Runtime> for Via {
    fn from(runtime: Runtime) -> Via {
        Via::Runtime(runtime)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Past 128 bytes, clippy's `result_large_err` fires in every caller's code.
    #[test]
    fn errors_stay_small() {
        assert!(std::mem::size_of::<Error>() <= 128, "{}", std::mem::size_of::<Error>());
        assert_eq!(std::mem::size_of::<Runtime>(), 16);
    }

    #[test]
    fn via_shows_where() {
        let shown = [Via::Runtime(Runtime::Podman), Via::Tmux(None), Via::Tmux(Some("bots".into())), Via::Ops]
            .map(|v| v.to_string());
        assert_eq!(shown, ["podman", "tmux", "tmux -L bots", "ops"]);
    }
}
