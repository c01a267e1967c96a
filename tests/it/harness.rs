//! Test fixtures: one container per engine for the whole run, fresh ones for tests that break
//! them, and a way to list what runs inside.
//!
//! `BOXSHELL_TEST_RUNTIMES=docker,podman,local` selects the runtimes; a named runtime that
//! does not answer is a failure. Without it, each runtime that answers is tested and the
//! others are reported as left out, their tests marked ignored (never passed).

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use boxshell::{Runtime, Session, SessionBuilder};

/// The image the fixtures run; built by `scripts/setup-runtimes.sh`.
pub fn image() -> String {
    std::env::var("BOXSHELL_TEST_IMAGE").unwrap_or_else(|_| "boxshell-test:latest".into())
}

/// Label on every container the tests create.
pub const LABEL: &str = "boxshell-test=1";

/// One runtime under test, with its shared container.
pub struct Fixture {
    pub runtime: Runtime,
    /// The shared container (`-` for local).
    pub container: String,
}

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

pub fn remove_container(runtime: &Runtime, name: &str) {
    let _ = cli(runtime).args(["rm", "-f", name]).output();
}

impl Fixture {
    /// Sets up the fixture for `runtime`, or says why it cannot.
    pub fn new(runtime: Runtime) -> Result<Fixture, String> {
        if !runtime.is_container() {
            return Ok(Fixture { runtime, container: "-".into() });
        }
        let probe = match runtime {
            Runtime::Docker => cli(&runtime).args(["version", "--format", "{{.Server.Version}}"]).output(),
            _ => cli(&runtime).args(["info", "--format", "{{.Host.OCIRuntime.Name}}"]).output(),
        };
        match probe {
            Ok(out) if out.status.success() => {}
            Ok(out) => return Err(format!("engine not answering: {}", String::from_utf8_lossy(&out.stderr).trim())),
            Err(e) => return Err(format!("{} not runnable: {e}", runtime.name())),
        }
        let container = unique("boxshell-it");
        run_container(&runtime, &container)
            .map_err(|e| format!("cannot start the test container (run `sudo scripts/setup-runtimes.sh`): {e}"))?;
        Ok(Fixture { runtime, container })
    }

    /// A builder for a session in the shared container, with a 20 s default timeout.
    pub fn builder(&self) -> SessionBuilder {
        Session::builder(&self.container).runtime(self.runtime.clone()).timeout(Duration::from_secs(20))
    }

    /// An open session in the shared container.
    pub fn session(&self) -> Session {
        self.builder().open().unwrap_or_else(|e| panic!("open in {}: {e}", self.runtime))
    }

    /// A container of its own, removed when the guard drops.
    pub fn fresh(&self) -> Fresh {
        assert!(self.runtime.is_container());
        let name = unique("boxshell-it-fresh");
        run_container(&self.runtime, &name).unwrap_or_else(|e| panic!("{e}"));
        Fresh { runtime: self.runtime.clone(), name }
    }

    /// `PID ARGS` lines of the processes in the container (on the host, for local) whose
    /// command line starts with `needle`.
    pub fn processes(&self, needle: &str) -> Vec<String> {
        processes_in(&self.runtime, &self.container, needle)
    }

    /// Waits until no process starting with `needle` is left, up to 5 s; returns those left.
    pub fn wait_gone(&self, needle: &str) -> Vec<String> {
        self.wait_for(needle, |found| found.is_empty())
    }

    /// Waits until a process starting with `needle` runs, up to 5 s; returns those found.
    pub fn wait_present(&self, needle: &str) -> Vec<String> {
        self.wait_for(needle, |found| !found.is_empty())
    }

    fn wait_for(&self, needle: &str, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let found = self.processes(needle);
            if done(&found) || Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn cleanup(&self) {
        if self.runtime.is_container() {
            remove_container(&self.runtime, &self.container);
        }
    }
}

pub fn processes_in(runtime: &Runtime, container: &str, needle: &str) -> Vec<String> {
    let out = if runtime.is_container() {
        cli(runtime).args(["exec", container, "ps", "-o", "pid,args"]).output()
    } else {
        Command::new("ps").args(["-eo", "pid,args"]).output()
    }
    .expect("ps runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter(|l| l.trim_start().split_once(' ').is_some_and(|(_, args)| args.trim_start().starts_with(needle)))
        .map(str::to_string)
        .collect()
}

/// Whether a process with this PID exists in the container (on the host, for local).
pub fn pid_exists(runtime: &Runtime, container: &str, pid: u32) -> bool {
    processes_in(runtime, container, "").iter().any(|l| l.split_whitespace().next() == Some(&pid.to_string()))
}

/// A container that is removed when dropped.
pub struct Fresh {
    pub runtime: Runtime,
    pub name: String,
}

impl Fresh {
    pub fn builder(&self) -> SessionBuilder {
        Session::builder(&self.name).runtime(self.runtime.clone()).timeout(Duration::from_secs(20))
    }

    pub fn engine(&self, verb: &str) {
        engine(&self.runtime, &[verb, &self.name]);
    }
}

impl Drop for Fresh {
    fn drop(&mut self) {
        remove_container(&self.runtime, &self.name);
    }
}
