//! What the backends say about a container or a session: the crate's words for states, used
//! by statuses and errors alike.

/// A container's state, simplified from the engine's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ContainerState {
    /// Running (or restarting).
    Running,
    /// Paused: its processes are frozen, not gone.
    Paused,
    /// Created but not started, or dead.
    Stopped,
    /// Its main process has exited.
    Exited,
    /// The engine reports a state boxshell does not know.
    Unknown,
}

impl ContainerState {
    /// The state for the engine's word (docker's and podman's `State.Status`, a pod's phase).
    pub(crate) fn from_engine(word: &str) -> ContainerState {
        match word.to_ascii_lowercase().as_str() {
            "running" | "restarting" | "stopping" => ContainerState::Running,
            "paused" => ContainerState::Paused,
            // Podman says `stopped` between the main process's exit and its clean-up.
            "exited" | "stopped" | "succeeded" | "failed" => ContainerState::Exited,
            "created" | "dead" | "configured" | "initialized" | "removing" | "pending" => ContainerState::Stopped,
            _ => ContainerState::Unknown,
        }
    }
}

/// The state of a session, across backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// Its process runs.
    Running,
    /// A paused container: its processes are frozen.
    Paused,
    /// A container that exists but does not run (created, dead).
    Stopped,
    /// Its process has exited; see [`SessionStatus::exit_code`](crate::SessionStatus::exit_code).
    Exited,
    /// Defined, but not started.
    Defined,
    /// The backend reports something else.
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

impl From<ContainerState> for State {
    fn from(state: ContainerState) -> State {
        match state {
            ContainerState::Running => State::Running,
            ContainerState::Paused => State::Paused,
            ContainerState::Stopped => State::Stopped,
            ContainerState::Exited => State::Exited,
            ContainerState::Unknown => State::Unknown,
        }
    }
}
