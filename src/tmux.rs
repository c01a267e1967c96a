//! tmux sessions for local long-lived processes: start, stop, send keys, logs, status, list,
//! exists, attach.
//!
//! Every call runs the tmux program with an argv built as a vector and a deadline. Sessions are
//! addressed as `=NAME` so that `web` never matches `web2` by prefix. Sessions started here keep
//! their pane when the command ends (`remain-on-exit`), so its output and exit code can still
//! be read; [`Tmux::stop`] removes them.
//!
//! ```no_run
//! # fn main() -> boxshell::Result<()> {
//! use std::time::Duration;
//! use boxshell::tmux::{Keys, Tmux, TmuxSpec};
//! use boxshell::Stop;
//!
//! let tmux = Tmux::new().socket("bots");            // tmux -L bots: apart from your own sessions
//! tmux.start(&TmuxSpec::new("bot").command("python3 bot.py").workdir("/srv/bot").env("MODE", "prod"))?;
//! tmux.send_keys("bot", "reload", Keys::Enter)?;
//! let last = tmux.logs("bot", Some(20))?;             // ANSI colours kept
//! tmux.stop("bot", Stop::Graceful(Duration::from_secs(5)))?; // C-c, wait, then kill-session
//! # Ok(()) }
//! ```

use std::ffi::{OsStr, OsString};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::error::{Error, Result, Via};
use crate::output::{Logs, Stream};
use crate::proc::{self, Caller, Captured, Op, Stop};
use crate::state::State;
use crate::text;

/// Deadline of each tmux call.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A tmux server: its program and socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tmux {
    program: OsString,
    socket: Option<String>,
}

impl Default for Tmux {
    fn default() -> Tmux {
        Tmux::new()
    }
}

/// What to start in tmux. Built with methods, passed to [`Tmux::start`].
#[derive(Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct TmuxSpec {
    name: String,
    command: Option<String>,
    workdir: Option<String>,
    env: Vec<(String, String)>,
}

impl std::fmt::Debug for TmuxSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TmuxSpec")
            .field("name", &self.name)
            .field("command", &self.command)
            .field("workdir", &self.workdir)
            .field("env", &text::EnvNames(&self.env))
            .finish()
    }
}

impl TmuxSpec {
    /// A session named `name` (ASCII letters, digits, `_` and `-`).
    pub fn new(name: impl Into<String>) -> TmuxSpec {
        TmuxSpec { name: name.into(), ..TmuxSpec::default() }
    }

    /// The command, as a line for tmux's shell. Without one, tmux runs the default shell.
    pub fn command(mut self, command: impl Into<String>) -> Self {
        self.command = Some(command.into());
        self
    }

    /// The directory it starts in.
    pub fn workdir(mut self, dir: impl Into<String>) -> Self {
        self.workdir = Some(dir.into());
        self
    }

    /// An environment variable of the session (`new-session -e`).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
}

/// Whether [`Tmux::send_keys`] presses Enter after the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// Just the keys.
    Only,
    /// The keys, then Enter.
    Enter,
}

/// What tmux says about a session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TmuxStatus {
    /// Session name.
    pub name: String,
    /// [`State::Running`] while its command runs, then [`State::Exited`] (the pane is kept for
    /// its output); no other state.
    pub state: State,
    /// The command's exit status once it has exited (`128 + N` for signal N).
    pub exit_code: Option<i32>,
    /// PID of the command in its active pane.
    pub pid: Option<u32>,
    /// When the session was created.
    pub created: Option<SystemTime>,
    /// Number of windows.
    pub windows: u32,
    /// Number of clients attached.
    pub attached: u32,
    /// The socket (`-L` name), if not the default.
    pub socket: Option<String>,
}

/// How many times [`Tmux::list`] asks the server to reap a dead pane before it reports the
/// pane as running.
const NUDGES: u32 = 6;

const STATUS_FORMAT: &str = "#{session_name}\x1f#{session_created}\x1f#{session_windows}\x1f#{session_attached}\x1f#{pane_pid}\x1f#{pane_dead}\x1f#{pane_dead_status}\x1f#{pane_dead_signal}\x1f#{pid}";

impl Tmux {
    /// `tmux` on `PATH`, its default socket.
    pub fn new() -> Tmux {
        Tmux { program: "tmux".into(), socket: None }
    }

    /// Another tmux program (a name on `PATH` or a path).
    pub fn program(mut self, program: impl Into<OsString>) -> Self {
        self.program = program.into();
        self
    }

    /// The tmux program.
    pub fn get_program(&self) -> &OsStr {
        &self.program
    }

    /// A socket of its own (`tmux -L NAME`), so these sessions stay apart from others.
    pub fn socket(mut self, name: impl Into<String>) -> Self {
        self.socket = Some(name.into());
        self
    }

    /// The socket name, if one was given.
    pub fn get_socket(&self) -> Option<&str> {
        self.socket.as_deref()
    }

    /// Starts a detached session running the spec's command.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] if a session of that name exists; [`Error::InvalidName`];
    /// [`Error::RuntimeNotFound`] without tmux; [`Error::Failed`] (operation `start`).
    pub fn start(&self, spec: &TmuxSpec) -> Result<TmuxStatus> {
        text::session_name(&spec.name)?;
        if let Ok(status) = self.status(&spec.name) {
            return Err(Error::AlreadyExists { via: self.via(), name: spec.name.clone(), state: status.state });
        }
        let mut args: Vec<OsString> = ["new-session", "-d", "-s", &spec.name].map(OsString::from).to_vec();
        if let Some(dir) = &spec.workdir {
            args.extend(["-c".into(), dir.into()]);
        }
        for (key, value) in &spec.env {
            text::env_var(key, value, false)?;
            args.extend(["-e".into(), format!("{key}={value}").into()]);
        }
        // The command waits for the rest of this call (its pane kept when it ends, and a pipe
        // that reads nothing, `cat >/dev/null`, gone with the pane: tmux 3.3a, Debian 12's, may
        // reap a command that ended before it read the command's last output, and drop that
        // output, unless a pipe is open on the pane). A command that ended at once, before the
        // pipe was open, lost its output on a loaded machine. It waits on a tmux channel, which
        // the call signals last; a signal sent before the wait is kept until it comes. The pane's
        // `$TMUX` names this server.
        let channel = format!("boxshell-start-{}", uuid::Uuid::new_v4().simple());
        if let Some(command) = &spec.command {
            let program = text::quote(&self.program.to_string_lossy());
            args.push(format!("{program} wait-for {channel} 2>/dev/null; {command}").into());
        }
        let target = pane(&spec.name);
        for option in [["remain-on-exit", "on"], ["remain-on-exit-format", ""]] {
            args.extend([";", "set-option", "-t", &target, option[0], option[1]].map(OsString::from));
        }
        args.extend([";", "pipe-pane", "-t", &target, "cat >/dev/null"].map(OsString::from));
        args.extend([";", "wait-for", "-S", &channel].map(OsString::from));
        self.run("start", &spec.name, &args)?;
        log::info!("tmux started session {}", spec.name);
        self.status(&spec.name)
    }

    /// Stops a session. [`Stop::Graceful`] sends C-c, waits up to the timeout for the command
    /// to exit, then kills the session; [`Stop::Kill`] kills it at once.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::Failed`] (operation `stop`).
    pub fn stop(&self, name: &str, how: Stop) -> Result<()> {
        let status = self.status(name)?;
        if let (Stop::Graceful(timeout), State::Running) = (how, status.state) {
            self.run("stop", name, &["send-keys", "-t", &pane(name), "C-c"])?;
            // Each look runs tmux: one every 20 ms, not the quick start of a cheap check.
            proc::poll_until(Instant::now() + timeout, Duration::from_millis(20), || {
                matches!(self.status(name), Ok(TmuxStatus { state: State::Exited, .. }) | Err(Error::NotFound { .. }))
            });
        }
        match self.run("stop", name, &["kill-session", "-t", &format!("={name}")]) {
            Ok(_) => Ok(()),
            Err(e) if !self.exists(name)? => {
                log::debug!("{name} ended while being stopped: {e}");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Sends keys to the session's active pane, as `send-keys` takes them: key names such as
    /// `C-c` or `Up` are pressed, other text is typed.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::Failed`] (operation `send-keys`).
    pub fn send_keys(&self, name: &str, keys: &str, then: Keys) -> Result<()> {
        self.require(name)?;
        let target = pane(name);
        let mut args = vec!["send-keys", "-t", &target, keys];
        if then == Keys::Enter {
            args.push("Enter");
        }
        self.run("send-keys", name, &args).map(drop)
    }

    /// The last `lines` lines of the session's active pane, history included (all of it for
    /// `None`), with ANSI colour codes kept (as tmux renders them); trailing blank lines are
    /// left out. A pane has one stream: the text is in [`Logs::stdout`], each line in
    /// [`Logs::lines`]. On a busy machine tmux may report a command exited a moment before it has
    /// drawn the command's last output.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::Failed`] (operation `logs`).
    pub fn logs(&self, name: &str, lines: Option<usize>) -> Result<Logs> {
        self.require(name)?;
        let out =
            self.run("logs", name, &["capture-pane", "-p", "-e", "-J", "-S", "-", "-E", "-", "-t", &pane(name)])?;
        let text = out.stdout;
        let mut rows: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
        while rows.last().is_some_and(|r| r.iter().all(u8::is_ascii_whitespace)) {
            rows.pop();
        }
        let skip = lines.map_or(0, |n| rows.len().saturating_sub(n));
        let lines = rows[skip..].iter().map(|row| (Stream::Stdout, [row, &b"\n"[..]].concat())).collect();
        Ok(Logs::from_lines(lines))
    }

    /// Status of one session.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::InvalidName`]; [`Error::Failed`] (operation `status`).
    pub fn status(&self, name: &str) -> Result<TmuxStatus> {
        text::session_name(name)?;
        self.list()?.into_iter().find(|s| s.name == name).ok_or_else(|| self.not_found(name))
    }

    /// All sessions on this socket (none if no server runs).
    ///
    /// # Errors
    /// [`Error::Failed`] (operation `list`).
    pub fn list(&self) -> Result<Vec<TmuxStatus>> {
        let mut nudges = 0;
        loop {
            let out = match self.run("list", "", &["list-sessions", "-F", STATUS_FORMAT]) {
                Ok(out) => out,
                Err(Error::Failed { message, .. }) if no_server(&message) => return Ok(Vec::new()),
                Err(e) => return Err(e),
            };
            let text = String::from_utf8_lossy(&out.stdout);
            let parsed: Vec<Parsed> = text.lines().filter_map(|line| self.parse_status(line)).collect();
            // tmux (3.3a, seen here) can leave a child's exit unhandled for good while clients
            // come and go: the pane is dead, its exit status not read. A SIGCHLD makes the
            // server reap it; on a loaded machine that can take a while, so it is asked again,
            // waiting longer each time (some 300 ms in all).
            match parsed.iter().find(|p| p.unreaped) {
                Some(p) if nudges < NUDGES && p.server_pid > 0 => {
                    self.nudge(p.server_pid, Duration::from_millis(5 << nudges));
                    nudges += 1;
                }
                _ => return Ok(parsed.into_iter().map(|p| p.status).collect()),
            }
        }
    }

    /// Sends SIGCHLD to the tmux server `pid` (through `kill`: this crate has no unsafe code),
    /// and waits `wait` for it to reap.
    fn nudge(&self, pid: u32, wait: Duration) {
        let sent = Command::new("kill")
            .args(["-s", "CHLD", &pid.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        log::debug!("nudged tmux server {pid} to reap an exited pane: {sent:?}");
        std::thread::sleep(wait);
    }

    /// Whether a session of that name exists (running or exited).
    ///
    /// # Errors
    /// [`Error::InvalidName`]; [`Error::Failed`] (operation `list`).
    pub fn exists(&self, name: &str) -> Result<bool> {
        match self.status(name) {
            Ok(_) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Attaches this terminal to the session (`attach-session`), replacing the current
    /// process: on success it never returns. Returns the error that kept it from doing so.
    #[must_use = "attach returns only when it failed: the error says why"]
    pub fn attach(&self, name: &str) -> Error {
        if let Err(e) = self.require(name) {
            return e;
        }
        let mut cmd = self.command();
        cmd.args(["attach-session", "-t", &format!("={name}")]);
        let e = cmd.exec();
        self.caller().failed(Op("attach", name), &cmd, e.to_string())
    }

    fn require(&self, name: &str) -> Result<()> {
        self.status(name).map(drop)
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        if let Some(socket) = &self.socket {
            cmd.args(["-L", socket]);
        }
        cmd
    }

    fn run<S: AsRef<std::ffi::OsStr>>(&self, operation: &'static str, name: &str, args: &[S]) -> Result<Captured> {
        let mut cmd = self.command();
        // `-u`: what tmux prints comes back as it is. Without a UTF-8 locale (cron, services,
        // CI) it would print `_` for the status fields' separator and for every non-ASCII byte.
        cmd.arg("-u").args(args);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let out = self.caller().call(Op(operation, name), &mut cmd, CALL_TIMEOUT)?;
            match out.status.success() {
                true => return Ok(out),
                // The server ended (its last session was just killed, by anyone) while this
                // call reached it: the call did nothing, and the next one finds no server or
                // starts one.
                false if attempts < 3 && out.message().contains("server exited unexpectedly") => continue,
                false => return Err(self.caller().failed(Op(operation, name), &cmd, out.message())),
            }
        }
    }

    fn parse_status(&self, line: &str) -> Option<Parsed> {
        let f: Vec<&str> = line.split('\x1f').collect();
        let [name, created, windows, attached, pid, dead, status, signal, server] = f.as_slice() else { return None };
        // A pane is marked dead when its terminal closes, a moment before its process is
        // reaped; until then there is no status and it counts as running.
        let exit = status.parse().ok().or_else(|| signal.parse::<i32>().ok().map(|s| 128 + s));
        let exit_code = exit.filter(|_| *dead == "1");
        let status = TmuxStatus {
            name: name.to_string(),
            state: if exit_code.is_some() { State::Exited } else { State::Running },
            exit_code,
            pid: pid.parse().ok().filter(|_| exit_code.is_none()),
            created: created.parse().ok().map(|secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs)),
            windows: windows.parse().unwrap_or(0),
            attached: attached.parse().unwrap_or(0),
            socket: self.socket.clone(),
        };
        Some(Parsed { status, unreaped: *dead == "1" && exit.is_none(), server_pid: server.parse().unwrap_or(0) })
    }

    fn not_found(&self, name: &str) -> Error {
        Error::NotFound { via: self.via(), name: name.to_string() }
    }

    /// This server, for errors.
    fn via(&self) -> Via {
        Via::Tmux(self.socket.clone())
    }

    fn caller(&self) -> Caller {
        Caller { via: self.via() }
    }
}

/// The active pane of session `name`, matched exactly.
fn pane(name: &str) -> String {
    format!("={name}:")
}

/// A line of `list-sessions`.
struct Parsed {
    status: TmuxStatus,
    /// The pane is dead, but the server has not read its exit status yet.
    unreaped: bool,
    server_pid: u32,
}

fn no_server(message: &str) -> bool {
    message.contains("no server running") || message.contains("error connecting to") || message.contains("No such file")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_parse() {
        let tmux = Tmux::new().socket("s");
        let p = tmux.parse_status("web\x1f10\x1f2\x1f1\x1f4242\x1f0\x1f\x1f\x1f77").unwrap();
        let s = p.status;
        assert_eq!((s.state, s.exit_code, s.pid, s.windows, s.attached), (State::Running, None, Some(4242), 2, 1));
        assert_eq!(s.created, Some(SystemTime::UNIX_EPOCH + Duration::from_secs(10)));
        assert_eq!(s.socket.as_deref(), Some("s"));
        assert!(!p.unreaped && p.server_pid == 77);
        let p = tmux.parse_status("web\x1f10\x1f1\x1f0\x1f4242\x1f1\x1f3\x1f\x1f77").unwrap();
        assert_eq!(
            (p.status.state, p.status.exit_code, p.status.pid, p.unreaped),
            (State::Exited, Some(3), None, false)
        );
        let p = tmux.parse_status("web\x1f10\x1f1\x1f0\x1f4242\x1f1\x1f\x1f9\x1f77").unwrap();
        assert_eq!((p.status.state, p.status.exit_code), (State::Exited, Some(137)));
        // Dead, but not reaped yet: still running, and worth a nudge.
        let p = tmux.parse_status("web\x1f10\x1f1\x1f0\x1f4242\x1f1\x1f\x1f\x1f77").unwrap();
        assert_eq!((p.status.state, p.status.exit_code, p.unreaped), (State::Running, None, true));
        assert!(tmux.parse_status("short").is_none());
    }

    #[test]
    fn names_are_checked() {
        for ok in ["bot", "web-1", "a_b", "9lives"] {
            text::session_name(ok).unwrap();
        }
        for bad in ["", "-t", "a:b", "a.b", "a b", "=x", "é"] {
            assert!(text::session_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn missing_program_is_named_with_a_hint() {
        let err = Tmux::new().program("/nonexistent/tmux").list().unwrap_err();
        assert!(matches!(err, Error::RuntimeNotFound { .. }), "{err:?}");
        assert!(err.to_string().contains("apt-get install tmux"), "{err}");
    }
}
