//! What the benches share: a throwaway container, and snapshots of what a process holds.

#![allow(dead_code)] // each bench uses a part

use std::collections::BTreeMap;
use std::process::Command;

use boxshell::Runtime;

/// A container for one bench run, removed when dropped.
pub struct Throwaway {
    pub runtime: Runtime,
    pub name: String,
}

impl Throwaway {
    /// A detached container of `image` running `sleep`, with `--init` (or nothing to start
    /// for the local runtime: its name is `-`).
    pub fn start(runtime: &Runtime, image: &str, purpose: &str) -> Result<Throwaway, String> {
        let name = format!("boxshell-{purpose}-{}", std::process::id());
        if !runtime.is_container() {
            return Ok(Throwaway { runtime: runtime.clone(), name: "-".into() });
        }
        let out = Command::new(runtime.name())
            .args(["run", "-d", "--rm", "--init", "--name", &name, image, "sleep", "86400"])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Throwaway { runtime: runtime.clone(), name })
    }
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        if self.runtime.is_container() {
            match Command::new(self.runtime.name()).args(["rm", "-f", &self.name]).output() {
                Ok(out) if out.status.success() => {}
                other => eprintln!("removing {}: {other:?}", self.name),
            }
        }
    }
}

/// What this process holds, and what runs in the container.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub fds: usize,
    pub threads: usize,
    /// Processes whose parent is this process.
    pub children: usize,
    pub rss_kib: i64,
    /// Command lines in the container, counted (on the host: those `host` picks).
    pub processes: BTreeMap<String, usize>,
}

impl Snapshot {
    pub fn take(runtime: &Runtime, container: &str, host: impl Fn(&str) -> bool) -> Snapshot {
        let count = |dir: &str| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        let out = if runtime.is_container() {
            Command::new(runtime.name()).args(["exec", container, "ps", "-o", "args"]).output()
        } else {
            Command::new("ps").args(["-eo", "args"]).output()
        }
        .expect("ps");
        let mut processes = BTreeMap::new();
        for line in String::from_utf8_lossy(&out.stdout).lines().skip(1) {
            if !line.starts_with("ps ") && (runtime.is_container() || host(line)) {
                *processes.entry(line.to_string()).or_insert(0) += 1;
            }
        }
        Snapshot {
            fds: count("/proc/self/fd"),
            threads: count("/proc/self/task"),
            children: children().len(),
            rss_kib: rss_kib("/proc/self/status"),
            processes,
        }
    }

    /// Whether `after` holds what `self` held (memory aside).
    pub fn same_holdings(&self, after: &Snapshot) -> bool {
        (self.fds, self.threads, self.children, &self.processes)
            == (after.fds, after.threads, after.children, &after.processes)
    }
}

/// `VmRSS` of a `/proc/PID/status` file, in KiB.
pub fn rss_kib(status: &str) -> i64 {
    std::fs::read_to_string(status)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The `/proc` directories of this process's children.
pub fn children() -> Vec<std::path::PathBuf> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|path| {
            std::fs::read_to_string(path.join("stat")).is_ok_and(|stat| {
                stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.split_whitespace().nth(1) == Some(me.as_str()))
            })
        })
        .collect()
}

/// A number from the environment, or `default`.
pub fn env_number(key: &str, default: usize) -> usize {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}
