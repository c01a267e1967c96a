//! The ops facade over tmux and containers: `cargo run --example ops`.
//!
//! Without arguments it defines two sessions (a tmux one and, when an engine answers, a
//! container from the local test image), starts them, lists everything, shows their logs and
//! stops them. With arguments it is a small CLI over the same facade:
//!
//! ```text
//! cargo run --example ops -- list
//! cargo run --example ops -- status NAME | logs NAME | stop NAME | attach NAME
//! ```
//!
//! Everything runs on the tmux socket `boxshell-example`, apart from your own tmux sessions.

use std::time::Duration;

use boxshell::ops::{Backend, Ops, SessionDef, SessionStatus};
use boxshell::tmux::Tmux;
use boxshell::{Runtime, Stop};

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> boxshell::Result<()> {
    let mut ops = Ops::new().tmux(Tmux::new().socket("boxshell-example")).define(
        "ticker",
        SessionDef::tmux("for i in 1 2 3; do echo tick $i; sleep 0.2; done; sleep 600").env("GREETING", "hi"),
    );
    let engine = Runtime::detect().ok().filter(Runtime::is_container);
    if let Some(runtime) = &engine {
        let image = std::env::var("BOXSHELL_IMAGE").unwrap_or_else(|_| "boxshell-test:latest".into());
        ops = ops
            .runtime(runtime.clone())
            .define("sleeper", SessionDef::container(image).argv(["sh", "-c", "echo container up; sleep 600"]));
    }

    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] => demo(&ops, engine.is_some()),
        ["list"] => {
            ops.list()?.iter().for_each(print);
            Ok(())
        }
        ["status", name] => {
            print(&ops.status(name)?);
            Ok(())
        }
        ["logs", name] => {
            let logs = ops.logs(name, Some(50))?;
            print!("{}{}", String::from_utf8_lossy(&logs.stdout), String::from_utf8_lossy(&logs.stderr));
            Ok(())
        }
        ["start", name] => ops.start(name).map(|s| print(&s)),
        ["stop", name] => ops.stop(name, Stop::Graceful(Duration::from_secs(5))),
        ["attach", name] => Err(ops.attach(name)),
        _ => {
            eprintln!("usage: ops [list | start NAME | status NAME | logs NAME | stop NAME | attach NAME]");
            std::process::exit(2);
        }
    }
}

fn demo(ops: &Ops, with_containers: bool) -> boxshell::Result<()> {
    if !with_containers {
        println!("(no container engine answers: showing tmux only)");
    }
    println!("== defined, not started");
    ops.list()?.iter().for_each(print);

    for name in ops.definitions().keys() {
        ops.start(name)?;
    }
    std::thread::sleep(Duration::from_secs(1));
    println!("== started");
    ops.list()?.iter().for_each(print);

    for name in ops.definitions().keys() {
        let logs = ops.logs(name, Some(3))?;
        println!("== last lines of {name}:\n{}", String::from_utf8_lossy(&logs.stdout).trim_end());
    }

    for name in ops.definitions().keys() {
        ops.stop(name, Stop::Graceful(Duration::from_secs(5)))?;
    }
    println!("== stopped");
    ops.list()?.iter().for_each(print);
    Ok(())
}

fn print(s: &SessionStatus) {
    let backend = match s.backend {
        Backend::Tmux => "tmux",
        Backend::Container => "container",
    };
    let pid = s.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
    println!(
        "{:<10} {:<10} {:<8} pid {:<8} {}",
        s.name,
        backend,
        format!("{:?}", s.state),
        pid,
        s.image.as_deref().unwrap_or("")
    );
}
