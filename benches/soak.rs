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

mod common;

use std::time::{Duration, Instant};

use boxshell::{Runtime, Session};
use common::{Snapshot, Throwaway, env_number};

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
        let target = Throwaway::start(&runtime, &image, "soak").expect("the container");
        // On the host, the background jobs the soak starts.
        let snapshot = || Snapshot::take(&runtime, &target.name, |l| l.starts_with("sleep 60"));
        let before = snapshot();
        let (cycle_time, command_time) = soak(&runtime, &target.name, cycles, commands);
        std::thread::sleep(Duration::from_millis(500));
        let after = snapshot();
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
            before.processes.values().sum::<usize>(),
            after.processes.values().sum::<usize>(),
        );
        if !before.same_holdings(&after) {
            println!("LEAK in {runtime}:\n  before {before:?}\n  after  {after:?}");
            leaked = true;
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
