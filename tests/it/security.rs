//! What an attacker-shaped input can do: nothing. Names, paths and values full of quotes,
//! spaces, `$()` and newlines arrive literally; environment values never reach the logs.

use std::sync::Mutex;
use std::time::Duration;

use boxshell::quote;

use crate::ensure;
use crate::harness::{Fixture, tag};
use crate::{R, Test};

pub const TESTS: &[(&str, Test<Fixture>)] = &[
    ("security_paths_and_values_arrive_literally", security_paths_and_values_arrive_literally),
    ("security_env_values_never_reach_the_logs", security_env_values_never_reach_the_logs),
];

/// A file name (no `/`) with everything a shell would act on.
fn hostile(t: u64) -> String {
    format!("it's \"{t}\" $(touch pwned-{t}) `touch pwned2-{t}` ; & | * ? \\ \n newline")
}

fn security_paths_and_values_arrive_literally(fx: &Fixture) -> R {
    let t = tag();
    let name = hostile(t);
    let dir = format!("/tmp/bx {t}");
    let mut sh = fx.builder().env("HOSTILE", &name).open()?;
    sh.exec(&format!("mkdir -p {}", quote(&format!("{dir}/{name}"))))?.check()?;
    // A workdir, a file path, a stdin, an environment value: all the same bytes back.
    let mut inside = fx.builder().workdir(format!("{dir}/{name}")).env("HOSTILE", &name).open()?;
    let out = inside.exec("printf '%s|%s' \"$PWD\" \"$HOSTILE\"")?;
    ensure!(out.stdout_str() == format!("{dir}/{name}|{name}"), "{out:?}");
    let path = format!("{dir}/{name}/{name}");
    inside.write_file(&path, name.as_bytes())?;
    ensure!(inside.read_file(&path)? == name.as_bytes(), "file");
    let out = inside.cmd("cat").stdin(name.clone()).run()?;
    ensure!(out.stdout == name.as_bytes(), "stdin");
    // Nothing of it ran as a command: no `pwned` file anywhere a command could have run.
    let out = sh.exec(&format!("find / -maxdepth 4 -name '*pwned*-{t}' 2>/dev/null; echo done"))?;
    ensure!(out.stdout == b"done\n", "injected: {out:?}");
    sh.exec(&format!("rm -rf {}", quote(&dir)))?.check()?;
    inside.close()?;
    sh.close()?;
    Ok(())
}

fn security_env_values_never_reach_the_logs(fx: &Fixture) -> R {
    let secret = format!("s3cr3t-{}-{}", tag(), std::process::id());
    let mut sh = fx.builder().env("API_TOKEN", &secret).grace(Duration::from_millis(200)).open()?;
    ensure!(sh.exec("printf %s \"$API_TOKEN\"")?.stdout == secret.as_bytes(), "the value arrived");
    sh.exec("if")?;
    sh.cmd("sleep 30").timeout(Duration::from_millis(300)).run()?;
    let _ = sh.exec("exit 3");
    let _ = sh.close();
    // Also through what the builders show of themselves.
    let builder = fx.builder().env("API_TOKEN", &secret);
    ensure!(!format!("{builder:?}").contains(&secret), "SessionBuilder's Debug shows the value");
    let spec = boxshell::container::ContainerSpec::new("img").env("API_TOKEN", &secret);
    ensure!(!format!("{spec:?}").contains(&secret), "ContainerSpec's Debug shows the value");
    // A value in the CLI's environment (a registry token, `DOCKER_HOST` with a password),
    // through every value that holds an engine, and a live session's interrupter.
    let engine = fx.session_engine().env("CLI_TOKEN", &secret);
    let mut sh = fx.builder().runtime(engine.clone()).open()?;
    let shown = [
        ("Engine", format!("{engine:?}")),
        ("Containers", format!("{:?}", boxshell::container::Containers::new(engine.clone()))),
        ("Session", format!("{sh:?}")),
        ("Interrupter", format!("{:?}", sh.interrupter())),
        ("Running", format!("{:?}", sh.cmd("true").spawn()?)),
        ("TmuxSpec", format!("{:?}", boxshell::tmux::TmuxSpec::new("t").env("API_TOKEN", &secret))),
        ("SessionDef", format!("{:?}", boxshell::ops::SessionDef::default().env("API_TOKEN", &secret))),
        ("Ops", format!("{:?}", boxshell::ops::Ops::new().runtime(engine.clone()))),
    ];
    sh.close()?;
    for (what, shown) in shown {
        ensure!(!shown.contains(&secret), "{what}'s Debug shows the value: {shown}");
        // What shows an environment shows its names.
        let names = !["Session", "Interrupter", "Running"].contains(&what);
        ensure!(!names || shown.contains("_TOKEN"), "{what}'s Debug shows no names: {shown}");
    }
    let logged = LOGS.lock().unwrap_or_else(|e| e.into_inner());
    ensure!(!logged.is_empty(), "the capturing logger saw nothing: it is not installed");
    let leaks: Vec<&String> = logged.iter().filter(|l| l.contains(&secret)).collect();
    ensure!(leaks.is_empty(), "logged: {leaks:?}");
    Ok(())
}

static LOGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Keeps every log record of the test run, at every level, for the test above.
struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {}: {}", record.level(), record.target(), record.args());
        LOGS.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    }

    fn flush(&self) {}
}

/// Installs the capturing logger (once, for the whole run).
pub fn capture_logs() {
    if log::set_logger(&Capture).is_ok() {
        log::set_max_level(log::LevelFilter::Trace);
    }
}
