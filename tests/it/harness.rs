//! Test fixtures: one container per engine for the whole run, fresh ones for tests that break
//! them, and a way to list what runs inside.
//!
//! `BOXSHELL_TEST_RUNTIMES=docker,podman,local` selects the runtimes; a named runtime that
//! does not answer is a failure. Without it, each runtime that answers is tested and the
//! others are reported as left out, their tests marked ignored (never passed).

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use boxshell::{Engine, Runtime, Session, SessionBuilder};

/// The image the fixtures run; built by `scripts/setup-runtimes.sh`.
pub fn image() -> String {
    std::env::var("BOXSHELL_TEST_IMAGE").unwrap_or_else(|_| "boxshell-test:latest".into())
}

/// Label on every container the tests create.
pub const LABEL: &str = "boxshell-test=1";

/// One runtime under test, with its shared container.
pub struct Fixture {
    /// What sessions go through.
    pub runtime: Runtime,
    /// The engine that holds the containers, for looking inside them (for kubectl, the
    /// engine behind the stand-in).
    pub engine: Runtime,
    /// The shared container (`-` for local).
    pub container: String,
    /// The runtime's program, when it is not on `PATH` (the kubectl stand-in).
    pub program: Option<String>,
    /// The engine's global arguments (the kubectl stand-in's `--context`).
    pub global_args: Vec<String>,
    /// The shell sessions run, when not the default `/bin/sh`.
    pub shell: Option<String>,
    /// Environment of the runtime's client (docker's `DOCKER_HOST`).
    pub env: Vec<(String, String)>,
}

/// The test sshd's login, set up by `scripts/setup-runtimes.sh`: root on this host, with a
/// throwaway key the system ssh configuration names for 127.0.0.1.
pub const SSH_LOGIN: &str = "root@127.0.0.1";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A name no other test (or test run) uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A number unique to this call, for telling this test's processes apart (e.g. `sleep N`).
pub fn tag() -> u64 {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) as u64;
    9_000_000 + (u64::from(std::process::id()) % 1000) * 1000 + n % 1000
}

pub fn cli(runtime: &Runtime) -> Command {
    Command::new(runtime.name())
}

/// Runs the runtime CLI; panics with its stderr if it fails.
pub fn engine(runtime: &Runtime, args: &[&str]) -> String {
    let out = cli(runtime).args(args).output().expect("runtime CLI runs");
    assert!(out.status.success(), "{} {}: {}", runtime, args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Starts a detached container that removes itself after an hour even if this run dies.
pub fn run_container(runtime: &Runtime, name: &str) -> Result<(), String> {
    let out = cli(runtime)
        .args(["run", "-d", "--rm", "--init", "--label", LABEL, "--name", name, &image(), "sleep", "3600"])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).trim().to_string()) }
}

/// Removes a container and waits until the engine no longer knows it (podman's `rm -f` can
/// fail while the container's own `--rm` clean-up runs), up to 60 s; says so if it cannot.
pub fn remove_container(runtime: &Runtime, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rm = cli(runtime).args(["rm", "-f", name]).output();
        let known = cli(runtime).args(["inspect", "--format", "{{.Id}}", name]).output();
        if known.is_ok_and(|out| !out.status.success()) {
            return;
        }
        if Instant::now() > deadline {
            let why = rm.map(|out| String::from_utf8_lossy(&out.stderr).into_owned()).unwrap_or_else(|e| e.to_string());
            eprintln!("cannot remove {runtime} container {name}: {}", why.trim());
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

impl Fixture {
    /// Sets up the fixture for `runtime`, or says why it cannot.
    pub fn new(runtime: Runtime) -> Result<Fixture, String> {
        if !runtime.is_container() {
            return Ok(Fixture::host());
        }
        probe(&runtime)?;
        let container = unique("boxshell-it");
        run_container(&runtime, &container)
            .map_err(|e| format!("cannot start the test container (run `sudo scripts/setup-runtimes.sh`): {e}"))?;
        Ok(Fixture {
            engine: runtime.clone(),
            runtime,
            container,
            program: None,
            global_args: Vec::new(),
            shell: None,
            env: Vec::new(),
        })
    }

    /// The local runtime, on this host.
    pub fn host() -> Fixture {
        Fixture {
            runtime: Runtime::Local,
            engine: Runtime::Local,
            container: "-".into(),
            program: None,
            global_args: Vec::new(),
            shell: None,
            env: Vec::new(),
        }
    }

    /// This fixture (its container too) with sessions running `shell`.
    pub fn with_shell(&self, shell: &str) -> Fixture {
        Fixture {
            runtime: self.runtime.clone(),
            engine: self.engine.clone(),
            container: self.container.clone(),
            program: self.program.clone(),
            global_args: self.global_args.clone(),
            shell: Some(shell.to_string()),
            env: self.env.clone(),
        }
    }

    /// Whether sessions run in a container (not on this host, directly or over ssh).
    pub fn in_container(&self) -> bool {
        self.engine.is_container()
    }

    /// A bound of `secs` on what takes a few calls of the runtime's CLI (an abort's signals, a
    /// dead shell's clean-up): over docker's ssh transport each call opens an ssh connection
    /// (0.5 to 2 s on a loaded 2-core machine), and so does each signal over `ssh`, so the
    /// bound is three times as long there.
    pub fn bound(&self, secs: u64) -> Duration {
        let over_ssh = matches!(&self.runtime, Runtime::Custom(c) if c.program() == "ssh");
        let factor = if over_ssh || self.env.iter().any(|(key, _)| key == "DOCKER_HOST") { 3 } else { 1 };
        Duration::from_secs(secs * factor)
    }

    /// Whether sessions reach this host over ssh (the `ssh` runtime).
    pub fn ssh_to_host(&self) -> bool {
        self.container == SSH_LOGIN
    }

    /// A second name for the host sessions run on, for a pool keyed by target: for ssh, the
    /// same login by another host name; locally any name reaches this host.
    pub fn other_host(&self) -> String {
        match self.ssh_to_host() {
            true => "root@localhost".into(),
            false => "second".into(),
        }
    }

    /// The shells besides the default one that the session tests run again with: bash and
    /// busybox ash on the host (whose `/bin/sh` is dash), bash in containers (whose `/bin/sh`
    /// is busybox ash).
    pub fn other_shells(&self) -> Vec<(&'static str, String)> {
        if self.in_container() {
            vec![("bash", "/bin/bash".into())]
        } else {
            vec![("bash", "/bin/bash".into()), ("ash", busybox_ash())]
        }
    }

    /// Sessions through `kubectl`, played by the stand-in `tests/bin/kubectl` over docker
    /// (no cluster runs on the test machines): everything above the argv runs for real.
    pub fn kubectl() -> Result<Fixture, String> {
        let mut fx = Fixture::new(Runtime::Docker)?;
        fx.runtime = Runtime::Kubectl(boxshell::Kubectl::new().namespace("default"));
        fx.global_args = vec!["--context".into(), "test".into()];
        fx.program = Some(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bin/kubectl").into());
        Ok(fx)
    }

    /// Sessions through `Runtime::Custom`, docker's CLI given as a template; with
    /// `remote_shell`, the command goes through `sh -c` in the container as one quoted line,
    /// the way `ssh` hands it to a remote shell.
    pub fn custom(remote_shell: bool) -> Result<Fixture, String> {
        let mut fx = Fixture::new(Runtime::Docker)?;
        fx.runtime = Runtime::Custom(if remote_shell {
            boxshell::Custom::new("docker", ["exec", "-i", "{target}", "sh", "-c"])
                .terminal(["exec", "-i", "-t", "{target}", "sh", "-c"])
                .remote_shell()
        } else {
            boxshell::Custom::new("docker", ["exec", "-i", "{target}"]).terminal(["exec", "-i", "-t", "{target}"])
        });
        Ok(fx)
    }

    /// Sessions over a real ssh connection to this host's test sshd: `ssh -T root@127.0.0.1`
    /// with the command handed to root's login shell, as a user reaches a build machine.
    pub fn ssh() -> Result<Fixture, String> {
        probe_ssh()?;
        let mut fx = Fixture::host();
        fx.runtime = Runtime::Custom(
            boxshell::Custom::new("ssh", ["-T", "{target}"]).terminal(["-q", "-tt", "{target}"]).remote_shell(),
        );
        fx.container = SSH_LOGIN.into();
        Ok(fx)
    }

    /// Sessions in a docker container reached through ssh: `ssh -T root@127.0.0.1 docker exec
    /// -i NAME`, the container's name part of the remote command line.
    pub fn ssh_docker() -> Result<Fixture, String> {
        probe_ssh()?;
        let mut fx = Fixture::new(Runtime::Docker)?;
        fx.runtime = Runtime::Custom(
            boxshell::Custom::new("ssh", ["-T", SSH_LOGIN, "docker", "exec", "-i", "{target}"])
                .terminal(["-q", "-tt", SSH_LOGIN, "docker", "exec", "-i", "-t", "{target}"])
                .remote_shell(),
        );
        Ok(fx)
    }

    /// Docker through its own ssh transport: `DOCKER_HOST=ssh://root@127.0.0.1`, the engine
    /// reached as a remote one is (its containers are this host's, for looking inside).
    pub fn docker_over_ssh() -> Result<Fixture, String> {
        probe_ssh()?;
        let mut fx = Fixture::new(Runtime::Docker)?;
        fx.env = vec![("DOCKER_HOST".into(), format!("ssh://{SSH_LOGIN}"))];
        Ok(fx)
    }

    /// The engine sessions go through: the runtime, with the program when not on `PATH`.
    pub fn session_engine(&self) -> Engine {
        let mut engine = Engine::new(self.runtime.clone()).global_args(&self.global_args);
        for (key, value) in &self.env {
            engine = engine.env(key, value);
        }
        match &self.program {
            Some(program) => engine.program(program),
            None => engine,
        }
    }

    /// A builder for a session in `target` through this fixture's runtime.
    pub fn builder_for(&self, target: &str) -> SessionBuilder {
        self.factory()(target)
    }

    /// Makes builders for sessions through this fixture's runtime, with a 20 s default timeout.
    pub fn factory(&self) -> impl Fn(&str) -> SessionBuilder + Send + Sync + 'static {
        let (engine, shell) = (self.session_engine(), self.shell.clone());
        move |target| {
            let mut builder = Session::builder(target).runtime(engine.clone()).timeout(Duration::from_secs(20));
            if let Some(shell) = &shell {
                builder = builder.shell(shell);
            }
            builder
        }
    }

    /// A builder for a session in the shared container, with a 20 s default timeout.
    pub fn builder(&self) -> SessionBuilder {
        self.builder_for(&self.container)
    }

    /// The shells to test every behaviour with: dash, bash and busybox ash on the host; busybox
    /// ash (`/bin/sh`) and bash in the test image.
    pub fn shells(&self) -> Vec<String> {
        if self.in_container() {
            return vec!["/bin/sh".into(), "/bin/bash".into()];
        }
        vec!["/bin/dash".into(), "/bin/bash".into(), busybox_ash()]
    }

    /// An open session in the shared container.
    pub fn session(&self) -> Session {
        self.builder().open().unwrap_or_else(|e| panic!("open in {}: {e}", self.runtime))
    }

    /// A container of its own, removed when the guard drops.
    pub fn fresh(&self) -> Fresh {
        assert!(self.in_container());
        let name = unique("boxshell-it-fresh");
        run_container(&self.engine, &name).unwrap_or_else(|e| panic!("{e}"));
        Fresh { engine: self.engine.clone(), name }
    }

    /// `PID ARGS` lines of the processes in the container (on the host, for local) whose
    /// command line starts with `needle`.
    pub fn processes(&self, needle: &str) -> Vec<String> {
        processes_in(&self.engine, &self.container, needle)
    }

    /// Waits until no process starting with `needle` is left, up to 5 s; returns those left.
    pub fn wait_gone(&self, needle: &str) -> Vec<String> {
        self.wait_for(|| self.processes(needle), |found| found.is_empty())
    }

    /// Waits until no process whose command line holds `needle` is left, up to 5 s; returns
    /// those left.
    pub fn wait_gone_containing(&self, needle: &str) -> Vec<String> {
        let find = || self.processes("").into_iter().filter(|l| l.contains(needle)).collect();
        self.wait_for(find, |found| found.is_empty())
    }

    /// Waits until a process starting with `needle` runs, up to 5 s; returns those found.
    pub fn wait_present(&self, needle: &str) -> Vec<String> {
        self.wait_for(|| self.processes(needle), |found| !found.is_empty())
    }

    fn wait_for(&self, find: impl Fn() -> Vec<String>, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let found = find();
            if done(&found) || Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn cleanup(&self) {
        if self.in_container() {
            remove_container(&self.engine, &self.container);
        }
    }
}

/// `PID ARGS` lines of the processes in `container` (on the host, for local) whose command line
/// starts with `needle`; PIDs as the container sees them. Read from the host's `/proc` (the
/// tests run as root), not through an exec: tests poll this often, and an engine serves execs
/// into one container one at a time (podman takes a second each when six queue up).
pub fn processes_in(runtime: &Runtime, container: &str, needle: &str) -> Vec<String> {
    let namespace = match runtime.is_container() {
        true => match pid_namespace(runtime, container) {
            Some(ns) => Some(ns),
            // Not running (or not ours to read): what `ps` in it says.
            None => return processes_by_exec(runtime, container, needle),
        },
        false => None,
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else { continue };
        let dir = entry.path();
        if let Some(ns) = &namespace
            && std::fs::read_link(dir.join("ns/pid")).ok().as_ref() != Some(ns)
        {
            continue;
        }
        let Ok(cmdline) = std::fs::read(dir.join("cmdline")) else { continue };
        let args = String::from_utf8_lossy(cmdline.strip_suffix(b"\0").unwrap_or(&cmdline)).replace('\0', " ");
        if args.is_empty() || !args.starts_with(needle) {
            continue;
        }
        // The PID in the innermost namespace: the container's own.
        let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
        let inner = status.lines().find_map(|l| l.strip_prefix("NSpid:")).and_then(|l| l.split_whitespace().last());
        let shown = if namespace.is_some() { inner.and_then(|p| p.parse().ok()).unwrap_or(pid) } else { pid };
        found.push(format!("{shown} {args}"));
    }
    found
}

/// The PID namespace of a running container, as `/proc/PID/ns/pid` links to it.
fn pid_namespace(runtime: &Runtime, container: &str) -> Option<std::path::PathBuf> {
    let out = cli(runtime).args(["inspect", "--format", "{{.State.Pid}}", container]).output().ok()?;
    let pid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().ok().filter(|p| *p > 0)?;
    std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()
}

fn processes_by_exec(runtime: &Runtime, container: &str, needle: &str) -> Vec<String> {
    let out = cli(runtime).args(["exec", container, "ps", "-o", "pid,args"]).output().expect("ps runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter(|l| l.trim_start().split_once(' ').is_some_and(|(_, args)| args.trim_start().starts_with(needle)))
        .map(|l| l.trim().to_string())
        .collect()
}

/// Whether a process with this PID exists in the container (on the host, for local).
pub fn pid_exists(runtime: &Runtime, container: &str, pid: u32) -> bool {
    processes_in(runtime, container, "").iter().any(|l| l.split_whitespace().next() == Some(&pid.to_string()))
}

/// A container that is removed when dropped.
pub struct Fresh {
    pub engine: Runtime,
    pub name: String,
}

impl Drop for Fresh {
    fn drop(&mut self) {
        remove_container(&self.engine, &self.name);
    }
}

/// This run's directory for files the tests need on the host.
pub fn temp() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("boxshell-it-{}", std::process::id()))
}

/// A directory of one test's own under [`temp`], removed with what it holds when dropped.
pub struct Scratch(std::path::PathBuf);

impl Scratch {
    pub fn new(prefix: &str) -> std::io::Result<Scratch> {
        let dir = temp().join(unique(prefix));
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }

    /// `name` inside it.
    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }

    /// Writes `contents` to `name` inside it (its directories made); its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> std::io::Result<std::path::PathBuf> {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, contents)?;
        Ok(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Removes [`temp`].
pub fn remove_temp() {
    let _ = std::fs::remove_dir_all(temp());
}

/// A path that runs busybox's ash on the host: busybox picks the applet by the name it is
/// called with.
fn busybox_ash() -> String {
    static LINK: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    LINK.get_or_init(|| {
        let dir = temp();
        let link = dir.join("ash");
        std::fs::create_dir_all(&dir).expect("temp dir");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("/bin/busybox", &link)
            .expect("link to /bin/busybox (apt-get install busybox-static)");
        link.to_string_lossy().into_owned()
    })
    .clone()
}

/// Checks that the test sshd lets us in.
fn probe_ssh() -> Result<(), String> {
    let out = Command::new("ssh")
        .args(["-T", "-o", "ConnectTimeout=10", SSH_LOGIN, "true"])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("ssh not runnable ({e}); run `sudo scripts/setup-runtimes.sh`"))?;
    if out.status.success() {
        Ok(())
    } else {
        let said = String::from_utf8_lossy(&out.stderr);
        Err(format!("`ssh {SSH_LOGIN} true` failed (run `sudo scripts/setup-runtimes.sh`): {}", said.trim()))
    }
}

/// Checks that the engine answers.
fn probe(runtime: &Runtime) -> Result<(), String> {
    let probe = match runtime {
        Runtime::Docker => cli(runtime).args(["version", "--format", "{{.Server.Version}}"]).output(),
        _ => cli(runtime).args(["info", "--format", "{{.Host.OCIRuntime.Name}}"]).output(),
    };
    match probe {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!("engine not answering: {}", String::from_utf8_lossy(&out.stderr).trim())),
        Err(e) => Err(format!("{} not runnable: {e}", runtime.name())),
    }
}

/// tmux on a private socket, so tests never touch the user's sessions.
pub struct TmuxFixture {
    pub socket: String,
}

impl TmuxFixture {
    pub fn new() -> Result<TmuxFixture, String> {
        match Command::new("tmux").arg("-V").output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => return Err(format!("tmux -V failed: {}", String::from_utf8_lossy(&out.stderr).trim())),
            Err(e) => return Err(format!("tmux not runnable ({e}); `apt-get install tmux`")),
        }
        Ok(TmuxFixture { socket: unique("boxshell-it") })
    }

    pub fn tmux(&self) -> boxshell::tmux::Tmux {
        boxshell::tmux::Tmux::new().socket(&self.socket)
    }

    /// Runs tmux on the fixture's socket; returns stdout, or the error text.
    pub fn raw(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("tmux").arg("-L").arg(&self.socket).args(args).output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }
}

impl Drop for TmuxFixture {
    fn drop(&mut self) {
        let _ = self.raw(&["kill-server"]);
        // tmux leaves its socket file behind.
        use std::os::unix::fs::MetadataExt;
        let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0);
        let dir = std::env::var("TMUX_TMPDIR").unwrap_or_else(|_| "/tmp".into());
        let _ = std::fs::remove_file(format!("{dir}/tmux-{uid}/{}", self.socket));
    }
}

/// The test binary doubles as a helper for what cannot run inside the test process: when
/// `BOXSHELL_IT_HELPER` is set it does that one thing and exits. Returns whether it did.
pub fn helper_mode() -> bool {
    let Ok(what) = std::env::var("BOXSHELL_IT_HELPER") else { return false };
    let parts: Vec<&str> = what.splitn(4, ':').collect();
    if let [task @ ("big-output" | "big-stream"), runtime, container, program] = parts.as_slice() {
        crate::faults::run_helper(task, runtime, container, program);
        return true;
    }
    if let Some(args) = what.strip_prefix("abort-ignoring-sigint:") {
        crate::abort::run_helper(args);
        return true;
    }
    let parts: Vec<&str> = what.splitn(3, ':').collect();
    if let ["tmux-c-locale", socket, name] = parts.as_slice() {
        let result = crate::tmux::run_c_locale_helper(socket, name);
        if let Err(e) = &result {
            eprintln!("helper: {e:?}");
        }
        std::process::exit(i32::from(result.is_err()));
    }
    let err = match parts.as_slice() {
        ["attach-container", runtime, name] => {
            boxshell::container::Containers::new(runtime.parse::<Runtime>().expect("runtime")).attach(name)
        }
        ["attach-tmux", socket, name] => boxshell::tmux::Tmux::new().socket(*socket).attach(name),
        _ => panic!("unknown helper {what}"),
    };
    // attach only returns when it could not replace this process.
    eprintln!("helper: {err}");
    std::process::exit(3);
}

/// This test binary as a helper doing `what` (see [`helper_mode`]), its stdin empty.
pub fn helper(what: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.env("BOXSHELL_IT_HELPER", what).stdin(std::process::Stdio::null());
    cmd
}

/// Starts this test binary as a helper (see [`helper_mode`]).
pub fn spawn_helper(what: &str) -> std::process::Child {
    helper(what)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn helper")
}

/// The command line of a running process on the host.
pub fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " ").trim().to_string())
        .unwrap_or_default()
}

/// Runs a test's body so that the clean-up after it runs even if it panics: a panic becomes
/// the test's error.
pub fn contain(body: impl FnOnce() -> Result<(), libtest_mimic::Failed>) -> Result<(), libtest_mimic::Failed> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(result) => result,
        Err(panic) => {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panicked".into());
            Err(text.into())
        }
    }
}

/// Held by tests that move tens of MiB, so that they run one at a time: together they would
/// load a 2-core machine enough to slow every other test's engine calls by seconds.
pub fn heavy() -> std::sync::MutexGuard<'static, ()> {
    static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits until `cond` holds, checking every 50 ms for up to 10 s; says whether it did.
pub fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

/// Waits up to `timeout` for `child` to exit.
pub fn wait_child(child: &mut std::process::Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `test` with a session per shell of `fx`; after each, the session still answers, and no
/// helper exec of the session whose scratch file starts with `helper` (`in-` for a feeder,
/// `tty-` for a terminal's holder) is left running.
pub fn each_shell(fx: &Fixture, helper: &str, mut test: impl FnMut(&mut Session, &str) -> crate::R) -> crate::R {
    for shell in fx.shells() {
        let mut sh = fx.builder().shell(&shell).open()?;
        test(&mut sh, &shell)?;
        let out = sh.exec("echo still")?;
        crate::ensure!(out.stdout == b"still\n" && out.exit_code == 0, "{shell}: after: {out:?}");
        let left = fx.wait_gone_containing(&format!(".boxshell-{}/{helper}", sh.id().simple()));
        crate::ensure!(left.is_empty(), "{shell}: {helper} helpers left running: {left:?}");
        sh.close()?;
    }
    Ok(())
}
