//! A tour of a boxshell session: `cargo run --example quickstart`.
//!
//! Uses a container when an engine answers: the one named by `BOXSHELL_CONTAINER`, or a
//! throwaway one from `BOXSHELL_IMAGE` (default: the local test image `boxshell-test:latest`
//! that `scripts/setup-runtimes.sh` builds), removed at the end. Otherwise it uses a shell on
//! this host. It says which.

use std::time::{Duration, Instant};

use boxshell::container::{Container, ContainerSpec, Containers};
use boxshell::{Runtime, Session};

fn main() -> boxshell::Result<()> {
    let place = Place::choose();
    println!("== {}", place.describe());
    tour(&place)
    // A throwaway container is removed here, when `place` is dropped.
}

fn tour(place: &Place) -> boxshell::Result<()> {
    let started = Instant::now();
    let mut sh = Session::builder(&place.container)
        .runtime(place.runtime.clone())
        .env("GREETING", "hello")
        .timeout(Duration::from_secs(30))
        .open()?;
    println!("opened in {:?}; the shell is PID {}", started.elapsed(), sh.pid());

    // State carries over: cd, exported variables, functions.
    sh.exec("cd /tmp && export PROJECT=boxshell")?.check()?;
    sh.exec("shout() { echo \"$*\" | tr a-z A-Z; }")?.check()?;
    let out = sh.exec("shout \"$GREETING from $PROJECT in $PWD\"")?;
    print!("state carries over:  {}", out.stdout_str());

    // stdout and stderr come back apart, byte for byte.
    let out = sh.exec("echo to-stdout; echo to-stderr >&2; printf 'no newline'")?;
    println!("stdout: {:?}", out.stdout_str());
    println!("stderr: {:?}", out.stderr_str());

    // Exit codes are data; `check` turns a failure into an error.
    let out = sh.exec("ls /no/such/dir")?;
    println!("exit code {} (success: {})", out.exit_code, out.success());
    if let Err(e) = out.check() {
        println!("as an error: {e}");
    }

    // A timeout interrupts the command, returns what it printed, and the session goes on.
    let out = sh.cmd("echo working; sleep 600").timeout(Duration::from_secs(1)).run()?;
    println!(
        "timed out: {} after {:?}, exit code {}, partial stdout {:?}",
        out.timed_out,
        out.duration,
        out.exit_code,
        out.stdout_str()
    );
    let out = sh.exec("echo still here in $PWD")?;
    print!("after the timeout:   {}", out.stdout_str());

    // One command's own environment and directory; the session keeps its own.
    let out = sh.cmd("echo \"$MODE in $PWD\"").env("MODE", "debug").workdir("/").run()?;
    print!("env and workdir:     {}", out.stdout_str());

    // Files, named as std::fs; missing parent directories are made.
    sh.write_file("/tmp/boxshell-tour/notes/plan.md", b"# plan\n")?;
    for entry in sh.read_dir("/tmp/boxshell-tour/notes")? {
        println!("read_dir:            {:?} {:?} {} bytes", entry.name, entry.kind, entry.len);
    }
    sh.remove_dir_all("/tmp/boxshell-tour")?;

    // A background process, followed by its handle while the session runs other commands.
    let server = sh.cmd("echo listening >&2; while :; do sleep 1; done").background()?;
    let seen = server.wait_for(boxshell::Stream::Stderr, b"listening", Duration::from_secs(10))?;
    println!("background:          {:?} (PID {})", String::from_utf8_lossy(&seen), server.pid());
    server.interrupt()?;
    println!("stopped with code    {:?}", server.wait(Duration::from_secs(10)));

    let m = sh.metrics();
    println!("{} commands, {:?} busy", m.commands, m.busy);
    sh.close()
}

/// Where the tour runs.
struct Place {
    runtime: Runtime,
    container: String,
    /// A container this example started: removed when dropped.
    throwaway: Option<Container>,
}

impl Place {
    fn choose() -> Place {
        let local = |why: String| {
            println!("(no container: {why})");
            Place { runtime: Runtime::Local, container: "-".into(), throwaway: None }
        };
        let runtime = match Runtime::detect() {
            Ok(Runtime::Local) => return local("BOXSHELL_RUNTIME=local".into()),
            Ok(runtime) => runtime,
            Err(e) => return local(e.to_string()),
        };
        if let Ok(container) = std::env::var("BOXSHELL_CONTAINER") {
            return Place { runtime, container, throwaway: None };
        }
        let image = std::env::var("BOXSHELL_IMAGE").unwrap_or_else(|_| "boxshell-test:latest".into());
        let spec = ContainerSpec::new(&image)
            .name(format!("boxshell-quickstart-{}", std::process::id()))
            .command(["sleep", "3600"])
            .init();
        match Containers::new(runtime.clone()).run(&spec) {
            Ok(c) => Place { runtime, container: c.name().to_string(), throwaway: Some(c.remove_on_drop()) },
            Err(e) => local(e.to_string()),
        }
    }

    fn describe(&self) -> String {
        match self.runtime {
            Runtime::Local => "running in a local shell".into(),
            _ => format!(
                "running in {} container {}{}",
                self.runtime,
                self.container,
                if self.throwaway.is_some() { " (throwaway)" } else { "" }
            ),
        }
    }
}
