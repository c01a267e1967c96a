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

fn scale(runtime: &Runtime, container: &str, sessions: usize, commands: usize) -> bool {
    let snapshot = || Snapshot::take(runtime, container, |_| false);
    let before = snapshot();
    let start = Instant::now();
    let opened: Vec<Session> = std::thread::scope(|s| {
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
    });
    let open_time = start.elapsed();
    let during = snapshot();
    let clients = exec_clients_rss_kib();

    let start = Instant::now();
    let mut opened: Vec<Session> = std::thread::scope(|s| {
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
    });
    let command_time = start.elapsed();
    let busy: Duration = opened.iter().map(|s| s.metrics().busy).sum();
    let per_command = busy / (sessions * commands) as u32;

    let start = Instant::now();
    std::thread::scope(|s| {
        for sh in opened.drain(..) {
            s.spawn(move || sh.close().expect("close"));
        }
    });
    let close_time = start.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let after = snapshot();

    let n = sessions as f64;
    let kib = |k: i64| format!("{:.1} MiB", k as f64 / 1024.0);
    println!("| {runtime} | measure | value |");
    println!("|---|---|---|");
    println!("| {runtime} | open {sessions} sessions at once | {:.2} s |", open_time.as_secs_f64());
    println!(
        "| {runtime} | {} commands ({sessions} threads) | {:.2} s ({:.0} commands/s; {:.0} µs each on average) |",
        sessions * commands,
        command_time.as_secs_f64(),
        (sessions * commands) as f64 / command_time.as_secs_f64(),
        per_command.as_secs_f64() * 1e6
    );
    println!("| {runtime} | close all | {:.2} s |", close_time.as_secs_f64());
    println!(
        "| {runtime} | this process, per session | {:.0} KiB RSS, {:.1} threads, {:.1} fds |",
        (during.rss_kib - before.rss_kib) as f64 / n,
        (during.threads as f64 - before.threads as f64) / n,
        (during.fds as f64 - before.fds as f64) / n
    );
    println!(
        "| {runtime} | exec client processes, per session | {} RSS (total {}) |",
        kib((clients as f64 / n) as i64),
        kib(clients)
    );
    println!("| {runtime} | before → after: fds | {} → {} |", before.fds, after.fds);
    println!("| {runtime} | before → after: threads | {} → {} |", before.threads, after.threads);
    println!(
        "| {runtime} | before → after: processes in the container | {} → {} |",
        before.processes.len(),
        after.processes.len()
    );
    println!();
    let ok = before.same_holdings(&after);
    if !ok {
        println!("LEAK: before {before:?}\n      after  {after:?}");
    }
    ok
}

/// Total RSS of this process's children: the runtime's exec clients.
fn exec_clients_rss_kib() -> i64 {
    children().iter().map(|p| rss_kib(&p.join("status").to_string_lossy())).sum()
}
