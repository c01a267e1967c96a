//! A small agent host: `cargo run --example pool`.
//!
//! Several agents, each on its own thread, send commands to their sandboxes. One pool keeps a
//! persistent shell per sandbox: an agent's commands see the state its earlier commands left
//! (cwd, variables), two agents sharing a sandbox never interleave, idle shells are closed by
//! the pool's reaper. Sandboxes are throwaway containers of the local test image when an engine
//! answers (removed at the end), otherwise local shells.

use std::time::Duration;

use boxshell::container::{Container, ContainerSpec, Containers};
use boxshell::pool::Pool;
use boxshell::{Runtime, Session};

fn main() -> boxshell::Result<()> {
    let (runtime, sandboxes) = sandboxes()?;
    let names: Vec<String> = match &sandboxes {
        Some(list) => list.iter().map(|c| c.name().to_string()).collect(),
        None => vec!["agent-a".into(), "agent-b".into()],
    };
    println!("sandboxes: {names:?} ({runtime})");

    let rt = runtime.clone();
    let pool = Pool::builder(move |sandbox: &str| {
        Session::builder(sandbox).runtime(rt.clone()).timeout(Duration::from_secs(10)).env("AGENT_HOST", "example")
    })
    .idle_timeout(Duration::from_secs(2))
    .reap_every(Duration::from_millis(500))
    .build();

    // Three agents, two of them sharing the first sandbox.
    let plan = [(0, "alice"), (0, "bob"), (1, "carol")];
    std::thread::scope(|s| {
        let agents: Vec<_> = plan
            .into_iter()
            .map(|(sandbox, agent)| {
                let (pool, target) = (&pool, names[sandbox].as_str());
                s.spawn(move || -> boxshell::Result<()> {
                    for step in 1..=3 {
                        // The session is held for one command: other agents of the sandbox wait.
                        let mut sh = pool.get_or_create(target)?;
                        let out = sh.exec(&format!(
                            "mkdir -p /tmp/{agent} && cd /tmp/{agent} && echo step{step} >> log && wc -l < log"
                        ))?;
                        println!("{agent:>5} @ {target}: step {step} -> {} lines logged", out.stdout_str().trim());
                    }
                    Ok(())
                })
            })
            .collect();
        agents.into_iter().try_for_each(|a| a.join().expect("agent thread"))
    })?;

    println!("\n{:<40} {:>8} {:>10} {:>10}", "session", "commands", "busy", "idle");
    for s in pool.list() {
        println!("{:<40} {:>8} {:>10.1?} {:>10.1?}", format!("{} ({})", s.container, s.id), s.commands, s.busy, s.idle);
    }

    println!("\nwaiting for the reaper to close the idle sessions...");
    while !pool.list().is_empty() {
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("all closed; {} sandboxes removed on the way out", sandboxes.map_or(0, |s| s.len()));
    Ok(())
}

/// Two throwaway containers when an engine answers, else nothing (local shells).
fn sandboxes() -> boxshell::Result<(Runtime, Option<Vec<Container>>)> {
    let runtime = match Runtime::detect() {
        Ok(r) if r.manages_containers() => r,
        _ => return Ok((Runtime::Local, None)),
    };
    let image = std::env::var("BOXSHELL_IMAGE").unwrap_or_else(|_| "boxshell-test:latest".into());
    let containers = Containers::new(runtime.clone());
    let mut made = Vec::new();
    for i in 0..2 {
        let spec = ContainerSpec::new(&image)
            .name(format!("boxshell-pool-example-{}-{i}", std::process::id()))
            .command(["sleep", "3600"])
            .init();
        match containers.run(&spec) {
            Ok(c) => made.push(c.remove_on_drop()),
            Err(e) => {
                println!("(no sandbox container: {e}; using local shells)");
                return Ok((Runtime::Local, None));
            }
        }
    }
    Ok((runtime, Some(made)))
}
