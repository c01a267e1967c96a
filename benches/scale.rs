//! `cargo bench --bench scale`: 100 sessions at once from one process.
//!
//! Opens `BOXSHELL_SCALE_SESSIONS` (default 100) sessions against one container from as many
//! threads, runs `BOXSHELL_SCALE_COMMANDS` (default 100) commands on each, then closes them all.
//! Reports the total times, this process's own memory and threads per session beside the RSS
//! of the runtime's exec clients (separate processes the library cannot shrink), and checks
//! that afterwards the process has the same open fds and threads as before and the container
//! the same processes.

mod common;

use std::time::{Duration, Instant};

use boxshell::{Runtime, Session};
use common::{Snapshot, Throwaway, children, env_number, rss_kib};

fn main() {
    let sessions: usize = env_number("BOXSHELL_SCALE_SESSIONS", 100);
    let commands: usize = env_number("BOXSHELL_SCALE_COMMANDS", 100);
    let names = std::env::var("BOXSHELL_BENCH_RUNTIMES").unwrap_or_else(|_| "docker,podman".into());
    let image = std::env::var("BOXSHELL_IMAGE").unwrap_or_else(|_| "boxshell-test:latest".into());
    println!("boxshell scale bench: {sessions} sessions at once, {commands} commands each\n");
    let mut failed = false;
    for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let runtime: Runtime = name.parse().expect("runtime name");
        match Throwaway::start(&runtime, &image, "scale") {
            Ok(target) => failed |= !scale(&runtime, &target.name, sessions, commands),
            Err(e) => println!("{runtime}: left out: {e}"),
        }
    }
    if failed {
        std::process::exit(1);
    }
}

/// Opens `sessions` sessions at once, runs `commands` commands on each, closes them all and
/// reports; false if the process or the container holds more afterwards than before.
fn scale(runtime: &Runtime, container: &str, sessions: usize, commands: usize) -> bool {
    let snapshot = || Snapshot::take(runtime, container, |_| false);
    let before = snapshot();
    let (opened, open_time) = timed(|| open_all(runtime, container, sessions));
    let during = snapshot();
    let clients = exec_clients_rss_kib();
    let (opened, command_time) = timed(|| run_commands(opened, commands));
    let busy: Duration = opened.iter().map(|s| s.metrics().busy).sum();
    let per_command = busy / (sessions * commands) as u32;
    let ((), close_time) = timed(|| close_all(opened));
    std::thread::sleep(Duration::from_millis(500));
    let after = snapshot();

    let run = Run { sessions, commands, open_time, command_time, per_command, close_time, clients };
    print_table(runtime, &run.rows(&before, &during, &after));
    let ok = before.same_holdings(&after);
    if !ok {
        println!("LEAK: before {before:?}\n      after  {after:?}");
    }
    ok
}

/// `f`'s result and how long it took.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let result = f();
    (result, start.elapsed())
}

/// `sessions` sessions on `container`, opened at once from as many threads.
fn open_all(runtime: &Runtime, container: &str, sessions: usize) -> Vec<Session> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..sessions)
            .map(|_| {
                s.spawn(|| {
                    Session::builder(container)
                        .runtime(runtime.clone())
                        .open_timeout(Duration::from_secs(120))
                        .open()
                        .expect("open")
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    })
}

/// Runs `commands` commands on each session, each session on a thread of its own, checking
/// every output.
fn run_commands(opened: Vec<Session>, commands: usize) -> Vec<Session> {
    std::thread::scope(|s| {
        let handles: Vec<_> = opened
            .into_iter()
            .map(|mut sh| {
                s.spawn(move || {
                    for i in 0..commands {
                        let out = sh.exec(&format!("echo {i}")).expect("exec");
                        assert_eq!(out.stdout, format!("{i}\n").as_bytes());
                    }
                    sh
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    })
}

/// Closes every session at once, each on a thread of its own.
fn close_all(opened: Vec<Session>) {
    std::thread::scope(|s| {
        for sh in opened {
            s.spawn(move || sh.close().expect("close"));
        }
    });
}

/// What one run measured, besides the snapshots.
struct Run {
    sessions: usize,
    commands: usize,
    open_time: Duration,
    command_time: Duration,
    /// The average time one command kept its session busy.
    per_command: Duration,
    close_time: Duration,
    /// The exec clients' RSS while the sessions were open.
    clients: i64,
}

impl Run {
    /// The measures and their values, as the table shows them.
    fn rows(&self, before: &Snapshot, during: &Snapshot, after: &Snapshot) -> Vec<(String, String)> {
        let Run { sessions, commands, open_time, command_time, per_command, close_time, clients } = *self;
        let n = sessions as f64;
        let total = sessions * commands;
        let kib = |k: i64| format!("{:.1} MiB", k as f64 / 1024.0);
        vec![
            (format!("open {sessions} sessions at once"), format!("{:.2} s", open_time.as_secs_f64())),
            (
                format!("{total} commands ({sessions} threads)"),
                format!(
                    "{:.2} s ({:.0} commands/s; {:.0} µs each on average)",
                    command_time.as_secs_f64(),
                    total as f64 / command_time.as_secs_f64(),
                    per_command.as_secs_f64() * 1e6
                ),
            ),
            ("close all".into(), format!("{:.2} s", close_time.as_secs_f64())),
            (
                "this process, per session".into(),
                format!(
                    "{:.0} KiB RSS, {:.1} threads, {:.1} fds",
                    (during.rss_kib - before.rss_kib) as f64 / n,
                    (during.threads as f64 - before.threads as f64) / n,
                    (during.fds as f64 - before.fds as f64) / n
                ),
            ),
            (
                "exec client processes, per session".into(),
                format!("{} RSS (total {})", kib((clients as f64 / n) as i64), kib(clients)),
            ),
            ("before → after: fds".into(), format!("{} → {}", before.fds, after.fds)),
            ("before → after: threads".into(), format!("{} → {}", before.threads, after.threads)),
            (
                "before → after: processes in the container".into(),
                format!("{} → {}", before.processes.len(), after.processes.len()),
            ),
        ]
    }
}

/// A markdown table of `rows`, each marked with `runtime`, and a blank line.
fn print_table(runtime: &Runtime, rows: &[(String, String)]) {
    println!("| {runtime} | measure | value |");
    println!("|---|---|---|");
    for (measure, value) in rows {
        println!("| {runtime} | {measure} | {value} |");
    }
    println!();
}

/// Total RSS of this process's children: the runtime's exec clients.
fn exec_clients_rss_kib() -> i64 {
    children().iter().map(|p| rss_kib(&p.join("status").to_string_lossy())).sum()
}
