//! `cargo bench --bench soak`: many open/close cycles and many commands in one process, then
//! a check that nothing leaked.
//!
//! `BOXSHELL_SOAK_CYCLES` (default 10 000) sessions are opened and ended one after another,
//! in four ways in turn: `close`, `Drop`, `close` after starting background jobs, and `close`
//! after the shell has exited. Then `BOXSHELL_SOAK_COMMANDS` (default 100 000) commands run in
//! one session, with every 100th reading stdin, and every 1000th timing out. Afterwards the
//! process must have the open fds, threads and child processes it started with, and the
//! container the processes it started with. `BOXSHELL_BENCH_RUNTIMES` (default `local,docker`)
//! picks the runtimes; CI runs a shortened form.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use boxshell::{Runtime, Session};

fn main() {
    let cycles = env_number("BOXSHELL_SOAK_CYCLES", 10_000);
    let commands = env_number("BOXSHELL_SOAK_COMMANDS", 100_000);
    let names = std::env::var("BOXSHELL_BENCH_RUNTIMES").unwrap_or_else(|_| "local,docker".into());
    let image = std::env::var("BOXSHELL_IMAGE").unwrap_or_else(|_| "boxshell-test:latest".into());
    println!("boxshell soak: {cycles} open/close cycles, {commands} commands\n");
    println!(
        "| runtime | cycles | time | commands | time | fds before → after | threads | child processes | processes in the container |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut leaked = false;
    for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let runtime: Runtime = name.parse().expect("runtime name");
        let container = if runtime.is_container() {
            let name = format!("boxshell-soak-{}", std::process::id());
            let out = Command::new(runtime.name())
                .args(["run", "-d", "--rm", "--init", "--name", &name, &image, "sleep", "86400"])
                .output()
                .expect("run the container");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            name
        } else {
            "-".into()
        };
        let before = Snapshot::take(&runtime, &container);
        let (cycle_time, command_time) = soak(&runtime, &container, cycles, commands);
        std::thread::sleep(Duration::from_millis(500));
        let after = Snapshot::take(&runtime, &container);
        println!(
            "| {runtime} | {cycles} | {:.1} s | {commands} | {:.1} s | {} → {} | {} → {} | {} → {} | {} → {} |",
            cycle_time.as_secs_f64(),
            command_time.as_secs_f64(),
            before.fds,
            after.fds,
            before.threads,
            after.threads,
            before.children,
            after.children,
            before.container.values().sum::<usize>(),
            after.container.values().sum::<usize>(),
        );
        if (after.fds, after.threads, after.children, &after.container)
            != (before.fds, before.threads, before.children, &before.container)
        {
            println!("LEAK in {runtime}:\n  before {before:?}\n  after  {after:?}");
            leaked = true;
        }
        if runtime.is_container() {
            let _ = Command::new(runtime.name()).args(["rm", "-f", &container]).output();
        }
    }
    if leaked {
        std::process::exit(1);
    }
}

fn soak(runtime: &Runtime, container: &str, cycles: usize, commands: usize) -> (Duration, Duration) {
    let open =
        || Session::builder(container).runtime(runtime.clone()).grace(Duration::from_millis(200)).open().expect("open");
    let start = Instant::now();
    for i in 0..cycles {
        let mut sh = open();
        match i % 4 {
            0 => sh.close().expect("close"),
            1 => drop(sh),
            2 => {
                sh.exec("sleep 600 & (sleep 601 &); sh -c 'sleep 602 & wait' &").expect("exec");
                sh.close().expect("close");
            }
            _ => {
                assert_eq!(sh.exec("exit 3").expect("exec").exit_code, 3);
                sh.close().expect("close");
            }
        }
    }
    let cycle_time = start.elapsed();

    let mut sh = open();
    let start = Instant::now();
    for i in 0..commands {
        if i % 1000 == 999 {
            let out = sh.cmd("sleep 5").timeout(Duration::from_millis(50)).run().expect("timeout");
            assert!(out.timed_out, "{out:?}");
        } else if i % 100 == 99 {
            let out = sh.cmd("wc -c").stdin(vec![b'x'; i % 5000]).run().expect("stdin");
            assert_eq!(out.stdout_str().trim(), (i % 5000).to_string());
        } else {
            let out = sh.exec(&format!("echo {i}; echo e{i} >&2")).expect("exec");
            assert_eq!(out.stdout, format!("{i}\n").as_bytes());
            assert_eq!(out.stderr, format!("e{i}\n").as_bytes());
        }
    }
    let command_time = start.elapsed();
    sh.close().expect("close");
    (cycle_time, command_time)
}

#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    fds: usize,
    threads: usize,
    children: usize,
    /// Command lines in the container (on the host: the soak's background jobs), counted.
    container: BTreeMap<String, usize>,
}

impl Snapshot {
    fn take(runtime: &Runtime, container: &str) -> Snapshot {
        let count = |dir: &str| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        // In the container, every process; on the host, the background jobs the soak starts.
        let out = if runtime.is_container() {
            Command::new(runtime.name()).args(["exec", container, "ps", "-o", "args"]).output()
        } else {
            Command::new("ps").args(["-eo", "args"]).output()
        }
        .expect("ps");
        let mut procs = BTreeMap::new();
        let ours = |l: &&str| runtime.is_container() || l.starts_with("sleep 60");
        for line in String::from_utf8_lossy(&out.stdout).lines().skip(1).filter(|l| !l.starts_with("ps ")).filter(ours)
        {
            *procs.entry(line.to_string()).or_insert(0) += 1;
        }
        Snapshot {
            fds: count("/proc/self/fd"),
            threads: count("/proc/self/task"),
            children: children(),
            container: procs,
        }
    }
}

/// Processes whose parent is this process.
fn children() -> usize {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.split_whitespace().nth(1) == Some(me.as_str()))
        })
        .count()
}

fn env_number(key: &str, default: usize) -> usize {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}
