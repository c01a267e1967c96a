//! What the backends say about a container or a session: the crate's words for states, used
//! by statuses and errors alike.

/// The state of what a backend runs, in the crate's words: a container
/// ([`ContainerStatus`](crate::container::ContainerStatus), [`Error::ContainerNotRunning`](crate::Error::ContainerNotRunning)),
/// a tmux session's command ([`TmuxStatus`](crate::tmux::TmuxStatus)), or a session the
/// [`Ops`](crate::ops::Ops) facade manages ([`SessionStatus`](crate::ops::SessionStatus)).
/// Each says which of these states it can report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// Its process runs.
    Running,
    /// A paused container: its processes are frozen, not gone.
    Paused,
    /// A container that exists but does not run: created but not started, or dead.
    Stopped,
    /// Its process has exited; the status beside it holds the exit code.
    Exited,
    /// Defined in [`Ops`](crate::ops::Ops), but not started.
    Defined,
    /// The backend reports a state boxshell does not know.
    Unknown,
}

impl std::fmt::Display for State {
    /// The state's name as kstlib names it: `running`, `paused`, `stopped`, `exited`,
    /// `defined`, `unknown`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            State::Running => "running",
            State::Paused => "paused",
            State::Stopped => "stopped",
            State::Exited => "exited",
            State::Defined => "defined",
            State::Unknown => "unknown",
        })
    }
}

impl State {
    /// The state for the engine's word (docker's and podman's `State.Status`, a pod's phase).
    pub(crate) fn from_engine(word: &str) -> State {
        match word.to_ascii_lowercase().as_str() {
            "running" | "restarting" | "stopping" => State::Running,
            "paused" => State::Paused,
            // Podman says `stopped` between the main process's exit and its clean-up.
            "exited" | "stopped" | "succeeded" | "failed" => State::Exited,
            "created" | "dead" | "configured" | "initialized" | "removing" | "pending" => State::Stopped,
            _ => State::Unknown,
        }
    }
}
