//! Races and deadlines: interrupts that land at any moment of a command, timeouts that fire
//! whatever the caller does, aborts on a loaded machine, the user's aliases and functions, and
//! sessions whose container was restarted under them. On every runtime and shell.

use std::time::{Duration, Instant};

use boxshell::pool::Pool;
use boxshell::{Error, Session, Stream};
use libtest_mimic::Failed;

use crate::ensure;
use crate::harness::{Fixture, LABEL, engine, heavy, image, processes_in, remove_container, tag, unique};
use crate::{R, Test};

pub const TESTS: &[(&str, Test<Fixture>)] = &[
    ("interrupts_land_at_every_moment", interrupts_land_at_every_moment),
    ("timeouts_land_at_every_moment", timeouts_land_at_every_moment),
    ("an_interrupt_ends_what_a_timeout_ends", an_interrupt_ends_what_a_timeout_ends),
    ("deadlines_hold_whatever_the_caller_does", deadlines_hold_whatever_the_caller_does),
    ("aliases_and_functions_change_nothing", aliases_and_functions_change_nothing),
    ("aborts_complete_under_load", aborts_complete_under_load),
];

/// Tests that restart containers, on docker and podman.
pub const ENGINE_TESTS: &[(&str, Test<Fixture>)] = &[
    ("stale_sessions_leave_the_restarted_container_alone", stale_sessions_leave_the_restarted_container_alone),
    ("pool_replaces_a_session_whose_container_restarted", pool_replaces_a_session_whose_container_restarted),
    ("pool_restores_the_shell_state_across_a_restart", pool_restores_the_shell_state_across_a_restart),
];

/// Interrupts sent per shell (and a quarter as many timeouts): `BOXSHELL_TEST_ROUNDS`, default
/// 200; a quarter of that through the kubectl stand-in and the custom runtimes, which reach the
/// same docker engine and shells through another argv.
fn rounds(fx: &Fixture) -> usize {
    let rounds = std::env::var("BOXSHELL_TEST_ROUNDS").ok().and_then(|n| n.parse().ok()).unwrap_or(200);
    match fx.runtime {
        boxshell::Runtime::Kubectl(_) | boxshell::Runtime::Custom(_) => rounds / 4,
        _ => rounds,
    }
}

/// The grace of the sessions here: far longer than any answer to an interrupt that landed,
/// even on a loaded engine (whose signalling exec can take seconds), so that one that was lost
/// (and ended only by the SIGKILL after the grace) shows.
const GRACE: Duration = Duration::from_secs(30);

/// How soon a command must end once its interrupt has been sent (or its timeout passed):
/// well before the grace is over, when one that was lost is killed.
const PROMPT: Duration = Duration::from_secs(20);

/// Commands that are interrupted at spread-out moments: between two children, as a child
/// exits normally, inside a loop of built-ins, and with the interrupt landing as a `sleep`
/// ends. Each prints only what `valid` accepts.
const PATTERNS: [&str; 4] = [
    "while :; do sleep 0.05; done",
    "while :; do true; /bin/true; done",
    "i=0; while :; do i=$((i+1)); echo Line $i; sleep 0.1; done",
    "i=0; while :; do i=$((i+1)); done",
];

/// Whether `stdout` is what pattern `p` prints before it is stopped.
fn valid(p: usize, stdout: &[u8]) -> bool {
    if p != 2 {
        return stdout.is_empty();
    }
    let text = String::from_utf8_lossy(stdout);
    text.lines().enumerate().all(|(i, l)| l == format!("Line {}", i + 1)) && (text.is_empty() || text.ends_with('\n'))
}

/// The `n`th of spread-out delays: every millisecond from 20 to 150 comes up.
fn spread(n: usize) -> Duration {
    Duration::from_millis(20 + (n as u64 * 37) % 131)
}

/// Checks that the session answers its next command exactly.
fn answers(sh: &mut Session, shell: &str, n: usize) -> R {
    let out = sh.exec(&format!("echo ok-{n}; echo err-{n} >&2"))?;
    ensure!(
        out.stdout == format!("ok-{n}\n").as_bytes() && out.stderr == format!("err-{n}\n").as_bytes(),
        "{shell}: round {n}, the next command printed {} and {}",
        shown(&out.stdout),
        shown(&out.stderr)
    );
    Ok(())
}

/// Bytes for a message: at most their first and last 100.
fn shown(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    match text.char_indices().nth(200) {
        None => format!("{text:?}"),
        Some(_) => {
            let chars: Vec<char> = text.chars().collect();
            let (head, tail): (String, String) =
                (chars[..100].iter().collect(), chars[chars.len() - 100..].iter().collect());
            format!("{head:?}...{tail:?} ({} bytes)", bytes.len())
        }
    }
}

fn interrupts_land_at_every_moment(fx: &Fixture) -> R {
    // Thousands of signalling execs: not beside the other tests that load the engines most.
    let _heavy = heavy();
    for shell in fx.shells() {
        let mut sh = fx.builder().shell(&shell).grace(GRACE).open()?;
        let stop = sh.interrupter();
        for n in 0..rounds(fx) {
            let p = n % PATTERNS.len();
            let (delay, stop) = (spread(n / PATTERNS.len()), stop.clone());
            let thread = std::thread::spawn(move || {
                std::thread::sleep(delay);
                let sent = stop.interrupt();
                (sent, Instant::now())
            });
            let out = sh.cmd(PATTERNS[p]).timeout(Duration::from_secs(60)).run()?;
            let ended = Instant::now();
            let (sent, at) = thread.join().expect("interrupter thread");
            sent?;
            let took = ended.saturating_duration_since(at);
            ensure!(
                out.exit_code == 130 && !out.timed_out && valid(p, &out.stdout) && out.stderr.is_empty(),
                "{shell}: round {n}, `{}` interrupted after {delay:?}: {out:?}",
                PATTERNS[p]
            );
            ensure!(took < PROMPT, "{shell}: round {n}, `{}` ended {took:?} after its interrupt", PATTERNS[p]);
            answers(&mut sh, &shell, n)?;
        }
        sh.close()?;
    }
    Ok(())
}

fn timeouts_land_at_every_moment(fx: &Fixture) -> R {
    let _heavy = heavy();
    for shell in fx.shells() {
        let mut sh = fx.builder().shell(&shell).grace(GRACE).open()?;
        for n in 0..rounds(fx) / 4 {
            let p = n % PATTERNS.len();
            let timeout = Duration::from_millis(100) + spread(n / PATTERNS.len());
            let start = Instant::now();
            let out = sh.cmd(PATTERNS[p]).timeout(timeout).run()?;
            let took = start.elapsed();
            ensure!(
                out.exit_code == 130 && out.timed_out && valid(p, &out.stdout),
                "{shell}: round {n}, `{}` with a timeout of {timeout:?}: {out:?}",
                PATTERNS[p]
            );
            // One that was lost ends only by the kill after the signalling exec and the grace.
            ensure!(took < timeout + PROMPT, "{shell}: round {n}, `{}` took {took:?}", PATTERNS[p]);
            answers(&mut sh, &shell, n)?;
        }
        sh.close()?;
    }
    Ok(())
}

fn an_interrupt_ends_what_a_timeout_ends(fx: &Fixture) -> R {
    for shell in fx.shells() {
        let mut sh = fx.builder().shell(&shell).grace(Duration::from_secs(1)).open()?;
        // The command's own background job, which ignores SIGINT, goes with it: from each
        // kind of interrupt.
        for how in ["interrupter", "running", "send"] {
            let (bg, fg) = (tag(), tag());
            let command = format!("sleep {bg} & sleep {fg}; echo after");
            let started = format!("sleep {fg}");
            let (code, stdout) = match how {
                "interrupter" => {
                    let stop = sh.interrupter();
                    let running = sh.spawn(&command)?;
                    ensure!(!fx.wait_present(&started).is_empty(), "{shell}: `{command}` did not start");
                    stop.interrupt()?;
                    let out = running.wait()?;
                    (out.exit_code, out.stdout)
                }
                "running" => {
                    let running = sh.spawn(&command)?;
                    ensure!(!fx.wait_present(&started).is_empty(), "{shell}: `{command}` did not start");
                    running.interrupt()?;
                    let out = running.wait()?;
                    (out.exit_code, out.stdout)
                }
                _ => {
                    sh.send(&command)?;
                    ensure!(!fx.wait_present(&started).is_empty(), "{shell}: `{command}` did not start");
                    sh.interrupt()?;
                    // The next command waits for the sent one to end.
                    sh.exec("true")?.check()?;
                    (130, sh.read()?.stdout)
                }
            };
            ensure!(code == 130 && stdout.is_empty(), "{shell}: {how}: exit {code}, stdout {stdout:?}");
            for t in [bg, fg] {
                let left = fx.wait_gone(&format!("sleep {t}"));
                ensure!(left.is_empty(), "{shell}: {how}: `sleep {t}` of `{command}` left running: {left:?}");
            }
            answers(&mut sh, &shell, 0)?;
        }
        // A background job pouring output must not pour it into later commands.
        let t = tag();
        let running = sh.spawn(&format!("yes o & sleep {t}"))?;
        ensure!(!fx.wait_present(&format!("sleep {t}")).is_empty(), "{shell}: did not start");
        running.interrupt()?;
        let out = running.wait()?;
        ensure!(out.exit_code == 130, "{shell}: {:?}", out.exit_code);
        ensure!(fx.wait_gone("yes o").is_empty(), "{shell}: `yes` outlived the command that started it");
        // What it printed as the command ended is not the next command's: background output,
        // read once.
        answers(&mut sh, &shell, 1)?;
        sh.read()?;
        for n in 2..4 {
            std::thread::sleep(Duration::from_millis(100));
            answers(&mut sh, &shell, n)?;
        }
        let unread = sh.read()?;
        ensure!(unread.stdout.is_empty(), "{shell}: `yes` went on printing: {}", shown(&unread.stdout));
        sh.close()?;
    }
    Ok(())
}

fn deadlines_hold_whatever_the_caller_does(fx: &Fixture) -> R {
    let grace = Duration::from_secs(3);
    // The deadline, the grace, and a signalling exec on a loaded engine (which serves the
    // execs into one container one at a time: seconds when many queue).
    let bound = Duration::from_secs(1) + grace + Duration::from_secs(10);
    for shell in fx.shells() {
        let mut sh = fx.builder().shell(&shell).grace(grace).open()?;
        // The caller writes, and writes: the timeout fires meanwhile.
        let start = Instant::now();
        let mut r = sh.cmd("cat >/dev/null").interactive().timeout(Duration::from_secs(1)).spawn()?;
        let chunk = vec![b'y'; 64 << 10];
        let err = loop {
            if let Err(e) = r.write_stdin(&chunk) {
                break e;
            }
            ensure!(start.elapsed() < Duration::from_secs(30), "{shell}: writes go on past the timeout");
        };
        let took = start.elapsed();
        match err {
            Error::CommandEnded { output } => ensure!(output.timed_out, "{shell}: {output:?}"),
            other => return Err(format!("{shell}: writing past the timeout gave {other:?}").into()),
        }
        ensure!(took < bound, "{shell}: the writes ended {took:?} after the start");
        drop(r);
        answers(&mut sh, &shell, 0)?;

        // The caller does not call at all: the command is stopped on time all the same.
        let t = tag();
        let start = Instant::now();
        let mut r = sh.cmd(format!("echo go; sleep {t}; echo never")).timeout(Duration::from_secs(1)).spawn()?;
        ensure!(!fx.wait_present(&format!("sleep {t}")).is_empty(), "{shell}: did not start");
        let left = fx.wait_gone(&format!("sleep {t}"));
        let gone = start.elapsed();
        ensure!(left.is_empty() && gone < bound, "{shell}: not stopped without a caller: {left:?} after {gone:?}");
        // Its end is on its way through the engine's pipes.
        let out = r
            .wait_timeout(Duration::from_secs(5))?
            .ok_or_else(|| format!("{shell}: the stopped command is not over"))?;
        ensure!(out.timed_out && out.exit_code == 130 && out.stdout == b"go\n", "{shell}: {out:?}");
        drop(r);
        answers(&mut sh, &shell, 1)?;

        // The caller waits for output that never comes: the timeout ends the command first.
        let start = Instant::now();
        let mut r = sh.cmd(format!("sleep {}", tag())).interactive().timeout(Duration::from_secs(1)).spawn()?;
        match r.expect(Stream::Stdout, b"never", Duration::from_secs(30)) {
            Err(Error::CommandEnded { output }) => ensure!(output.timed_out, "{shell}: {output:?}"),
            other => return Err(format!("{shell}: expect past the timeout gave {other:?}").into()),
        }
        ensure!(start.elapsed() < bound, "{shell}: expect ended after {:?}", start.elapsed());
        drop(r);
        answers(&mut sh, &shell, 2)?;

        // A write blocked on a command that does not read, interrupted from another thread:
        // the command has ended, and the write says so.
        for n in 0..5 {
            let stop = sh.interrupter();
            let mut r = sh.cmd(format!("sleep {}", tag())).interactive().spawn()?;
            let thread = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(500));
                stop.interrupt()
            });
            let written = r.write_stdin(&vec![b'z'; 32 << 20]);
            thread.join().expect("interrupter thread")?;
            match written {
                Err(Error::CommandEnded { output }) => ensure!(output.exit_code == 130, "{shell}: {output:?}"),
                other => return Err(format!("{shell}: round {n}, a blocked write gave {other:?}").into()),
            }
            drop(r);
            answers(&mut sh, &shell, 3 + n)?;
        }
        sh.close()?;
    }
    Ok(())
}

/// Names boxshell's own shell text uses. Any of them may be an alias; bash lets a function
/// take any name, dash and busybox ash all but those of special built-ins.
const NAMES: [&str; 29] = [
    "cat", "printf", "rm", "mkdir", "kill", "read", "test", "echo", "wait", "command", "trap", "eval", "exec", "set",
    "unset", "true", "cd", "export", "mv", "stat", "xargs", "shopt", "[", "umask", "alias", "unalias", "readonly",
    "declare", "compgen",
];
const SPECIAL: [&str; 7] = ["trap", "eval", "exec", "set", "unset", "export", "readonly"];

fn aliases_and_functions_change_nothing(fx: &Fixture) -> R {
    for shell in fx.shells() {
        for kind in ["aliases", "functions"] {
            let mut sh = fx.builder().shell(&shell).grace(Duration::from_secs(1)).open()?;
            let bash = sh.exec("[ -n \"${BASH_VERSION-}\" ] && /bin/echo bash")?.stdout == b"bash\n";
            let mut define = String::new();
            for name in NAMES {
                match kind {
                    "aliases" => define.push_str(&format!("alias {name}='/bin/echo ALIAS-{name}'\n")),
                    _ if !bash && (SPECIAL.contains(&name) || name == "[") => {}
                    _ => define.push_str(&format!("{name}() {{ /bin/echo FUNCTION-{name}; }}\n")),
                }
            }
            if bash && kind == "functions" {
                define.push_str(":() { /bin/echo FUNCTION-colon; }\n");
            }
            if kind == "functions" {
                define.push_str("command x\n");
            }
            let out = sh.exec(&define)?;
            // (An alias named `alias` prints the later aliases' definitions.)
            let said = kind == "aliases" || out.stdout == b"FUNCTION-command\n";
            ensure!(out.success() && said && out.stderr.is_empty(), "{shell}: defining the {kind}: {out:?}");
            if kind == "functions" {
                // A function named `command` would replace the escape from functions itself:
                // it lasts for the command that defines it.
                let out = sh.exec("command /bin/echo the-built-in")?;
                ensure!(out.stdout == b"the-built-in\n", "{shell}: `command` after: {out:?}");
            }
            let what = format!("{shell} with {kind}");
            the_api_works(fx, &mut sh, &what)?;
            let t = tag();
            sh.exec(&format!("/bin/sleep {t} &"))?.check()?;
            sh.close()?;
            ensure!(fx.wait_gone(&format!("/bin/sleep {t}")).is_empty(), "{what}: close left a job");
        }
    }
    Ok(())
}

/// Every call of the API gives what it gives in a session of no aliases or functions.
fn the_api_works(fx: &Fixture, sh: &mut Session, what: &str) -> R {
    let out = sh.exec("/bin/echo out; /bin/echo err >&2; (exit 3)")?;
    ensure!(
        (out.stdout.as_slice(), out.stderr.as_slice(), out.exit_code) == (b"out\n", b"err\n", 3),
        "{what}: {out:?}"
    );
    let out = sh.exec("if")?;
    ensure!(out.exit_code == 2 && out.stdout.is_empty(), "{what}: a syntax error: {out:?}");
    for size in [5usize, 100 << 10] {
        let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let out = sh.cmd("/bin/cat").stdin(data.clone()).run()?;
        ensure!(out.stdout == data && out.success(), "{what}: stdin of {size} bytes: {:?}", out.exit_code);
        let path = format!("/tmp/boxshell-alias-{}", tag());
        sh.write_file(&path, &data)?;
        ensure!(sh.read_file(&path)? == data, "{what}: a file of {size} bytes did not round-trip");
        sh.exec(&format!("/bin/rm -f {path}"))?.check()?;
    }
    let mut r = sh.cmd("/bin/cat").interactive().spawn()?;
    r.write_stdin(b"line\n")?;
    ensure!(r.expect(Stream::Stdout, b"line\n", Duration::from_secs(10))? == b"line\n", "{what}: expect");
    r.close_stdin()?;
    let out = r.wait()?;
    ensure!(out.success() && out.stdout.is_empty(), "{what}: interactive: {out:?}");
    let t = tag();
    let running = sh.spawn(&format!("/bin/echo go; /bin/sleep {t}; /bin/echo never"))?;
    ensure!(!fx.wait_present(&format!("/bin/sleep {t}")).is_empty(), "{what}: did not start");
    running.interrupt()?;
    let out = running.wait()?;
    ensure!(out.exit_code == 130 && out.stdout == b"go\n", "{what}: interrupted: {out:?}");
    let out = sh.cmd(format!("/bin/sleep {}", tag())).timeout(Duration::from_millis(300)).run()?;
    ensure!(out.exit_code == 130 && out.timed_out, "{what}: timed out: {out:?}");
    let out = sh.cmd("/bin/pwd; /bin/echo \"$A\"").env("A", "a b").workdir("/tmp").run()?;
    ensure!(out.stdout == b"/tmp\na b\n" && out.stderr.is_empty(), "{what}: env and workdir: {out:?}");
    let dir = format!("/tmp/boxshell-alias-dir-{}", tag());
    sh.write_file(format!("{dir}/sub/f"), b"x")?;
    let names: Vec<_> = sh.read_dir(&dir)?.into_iter().map(|e| e.name).collect();
    ensure!(names == ["sub"] && sh.metadata(format!("{dir}/sub/f"))?.len == 1, "{what}: fs: {names:?}");
    sh.rename(format!("{dir}/sub/f"), format!("{dir}/g"))?;
    ensure!(sh.exists(format!("{dir}/g"))? && !sh.exists(format!("{dir}/sub/f"))?, "{what}: rename");
    sh.remove_dir_all(&dir)?;
    sh.exec("V='a b'")?.check()?;
    let state = sh.snapshot()?;
    ensure!(state.variables().iter().any(|(n, v)| n == "V" && v == "a b"), "{what}: snapshot: {state:?}");
    let restored = sh.restore(&state)?;
    ensure!(restored.missed.is_empty(), "{what}: restore missed {:?}", restored.missed);
    let out = sh.cmd("/bin/echo on a terminal").terminal(80, 24).run()?;
    ensure!(out.stdout == b"on a terminal\r\n" && out.success(), "{what}: terminal: {out:?}");
    let bg = sh.cmd("/bin/echo in the background").background()?;
    ensure!(bg.wait(Duration::from_secs(20)) == Some(0), "{what}: background");
    ensure!(bg.logs(None).stdout == b"in the background\n", "{what}: background: {:?}", bg.logs(None));
    let out = sh.exec("/bin/echo next")?;
    ensure!(out.stdout == b"next\n" && out.stderr.is_empty(), "{what}: {out:?}");
    Ok(())
}

/// Busy loops on the host, ended when dropped.
struct Load(Vec<std::process::Child>);

impl Load {
    fn start(loops: usize) -> std::io::Result<Load> {
        let mut children = Vec::new();
        for _ in 0..loops {
            children.push(std::process::Command::new("sh").args(["-c", "while :; do :; done"]).spawn()?);
        }
        Ok(Load(children))
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn aborts_complete_under_load(fx: &Fixture) -> R {
    // Alone among the tests that load the machine.
    let _heavy = heavy();
    let _load = Load::start(4)?;
    for shell in fx.shells() {
        let mut sh = fx.builder().shell(&shell).open()?;
        for n in 0..20 {
            let t = tag();
            let out = sh.cmd(format!("echo part; sleep {t}; echo never")).timeout(Duration::from_millis(300)).run()?;
            ensure!(
                out.timed_out && out.exit_code == 130 && out.stdout == b"part\n",
                "{shell}: round {n} under load: {out:?}"
            );
            ensure!(fx.wait_gone(&format!("sleep {t}")).is_empty(), "{shell}: round {n} left its sleep");
        }
        answers(&mut sh, &shell, 0)?;
        sh.close()?;
    }
    Ok(())
}

/// A container of its own that survives being stopped (no `--rm`), removed when dropped.
struct Restartable {
    engine: boxshell::Runtime,
    name: String,
}

impl Restartable {
    fn run(fx: &Fixture) -> Restartable {
        let c = Restartable { engine: fx.engine.clone(), name: unique("bx-restart") };
        c.start_new();
        c
    }

    fn start_new(&self) {
        engine(
            &self.engine,
            &["run", "-d", "--init", "--label", LABEL, "--name", &self.name, &image(), "sleep", "3600"],
        );
    }

    /// Restarts it `how`, and waits until it runs again.
    fn restart(&self, how: &str) {
        let name = self.name.as_str();
        match how {
            "restart" => drop(engine(&self.engine, &["restart", "-t", "0", name])),
            "stop+start" => {
                engine(&self.engine, &["stop", "-t", "0", name]);
                engine(&self.engine, &["start", name]);
            }
            "kill+start" => {
                engine(&self.engine, &["kill", name]);
                engine(&self.engine, &["start", name]);
            }
            _ => {
                remove_container(&self.engine, name);
                self.start_new();
            }
        }
        let running = crate::harness::eventually(|| {
            crate::harness::cli(&self.engine)
                .args(["inspect", "--format", "{{.State.Running}}", name])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "true")
        });
        assert!(running, "{name} does not run again after {how}");
    }

    /// The PIDs of `sleep 3600`, its main process.
    fn main_process(&self) -> Vec<String> {
        processes_in(&self.engine, &self.name, "sleep 3600")
    }

    fn state(&self) -> String {
        engine(&self.engine, &["inspect", "--format", "{{.State.Status}}", &self.name])
    }
}

impl Drop for Restartable {
    fn drop(&mut self) {
        remove_container(&self.engine, &self.name);
    }
}

const RESTARTS: [&str; 4] = ["restart", "stop+start", "kill+start", "re-created"];

fn stale_sessions_leave_the_restarted_container_alone(fx: &Fixture) -> R {
    for how in RESTARTS {
        for shell in fx.shells() {
            let what = format!("{shell}, {how}");
            let c = Restartable::run(fx);
            let open = || fx.builder_for(&c.name).shell(&shell).grace(Duration::from_millis(500)).open();
            // Stale sessions, each with a background job; one runs a command through the restart.
            let mut stale: Vec<Session> = (0..3).map(|_| open()).collect::<boxshell::Result<_>>()?;
            for sh in &mut stale {
                sh.exec(&format!("sleep {} &", tag()))?.check()?;
            }
            let mut busy = open()?;
            let stale_pids: Vec<u32> = stale.iter().chain([&busy]).map(Session::pid).collect();
            let running = busy.spawn(&format!("sleep {}", tag()))?;
            c.restart(how);
            // The new instance: sessions opened in the same order get the same PIDs again.
            let mut fresh: Vec<Session> = (0..4).map(|_| open()).collect::<boxshell::Result<_>>()?;
            let jobs: Vec<u64> = fresh.iter().map(|_| tag()).collect();
            for (sh, job) in fresh.iter_mut().zip(&jobs) {
                sh.exec(&format!("sleep {job} &"))?.check()?;
            }
            let main = c.main_process();
            let fresh_pids: Vec<u32> = fresh.iter().map(Session::pid).collect();
            eprintln!("{what}: stale shells {stale_pids:?}, fresh shells {fresh_pids:?}, main {main:?}");
            // The stale sessions: an interrupt, a command, their running command, close, drop.
            let mut stale = stale.into_iter();
            let (first, mut second, third) = (stale.next(), stale.next(), stale.next());
            let (first, third) = (first.ok_or("first")?, third.ok_or("third")?);
            if let Some(sh) = second.as_mut() {
                sh.interrupter().interrupt()?;
                match within(|| sh.exec("echo stale"))? {
                    Err(Error::ShellExited { .. }) => {}
                    Ok(out) if !out.success() && out.stdout.is_empty() => {}
                    other => return Err(format!("{what}: a command in a stale session: {other:?}").into()),
                }
            }
            let _ = running.interrupt();
            let ended = within(|| running.wait())?;
            ensure!(!matches!(ended, Ok(ref out) if out.success()), "{what}: the command went on: {ended:?}");
            within(|| first.close())?.ok();
            within(|| drop(second))?;
            within(|| drop(third))?;
            within(|| drop(busy))?;
            // Nothing of the new instance was touched.
            ensure!(c.state() == "running", "{what}: the container is {}", c.state());
            ensure!(c.main_process() == main, "{what}: the main process was {main:?}, now {:?}", c.main_process());
            for (sh, job) in fresh.iter_mut().zip(&jobs) {
                let out = sh.exec("echo alive")?;
                ensure!(out.stdout == b"alive\n", "{what}: session {} after the stale ones went: {out:?}", sh.pid());
                let left = processes_in(&fx.engine, &c.name, &format!("sleep {job}"));
                ensure!(left.len() == 1, "{what}: the background job of session {}: {left:?}", sh.pid());
            }
            for sh in fresh {
                sh.close()?;
            }
        }
    }
    Ok(())
}

fn pool_replaces_a_session_whose_container_restarted(fx: &Fixture) -> R {
    for how in RESTARTS {
        let c = Restartable::run(fx);
        let pool = Pool::builder(fx.factory()).build();
        let old = {
            let mut p = pool.get_or_create(&c.name)?;
            p.exec(&format!("cd /tmp; sleep {} &", tag()))?.check()?;
            p.id()
        };
        c.restart(how);
        let mut other = fx.builder_for(&c.name).open()?;
        let job = tag();
        other.exec(&format!("sleep {job} &"))?.check()?;
        let main = c.main_process();
        let mut p = within(|| pool.get_or_create(&c.name))??;
        ensure!(p.id() != old, "{how}: the pool handed out the stale session");
        let out = p.exec("echo pooled; pwd")?;
        ensure!(out.stdout == b"pooled\n/\n", "{how}: {out:?}");
        drop(p);
        ensure!(c.state() == "running", "{how}: the container is {}", c.state());
        ensure!(c.main_process() == main, "{how}: the main process was {main:?}, now {:?}", c.main_process());
        ensure!(other.exec("echo alive")?.stdout == b"alive\n", "{how}: the other session");
        ensure!(processes_in(&fx.engine, &c.name, &format!("sleep {job}")).len() == 1, "{how}: its job");
        other.close()?;
        pool.close_all();
    }
    Ok(())
}

fn pool_restores_the_shell_state_across_a_restart(fx: &Fixture) -> R {
    for shell in fx.shells() {
        let c = Restartable::run(fx);
        let factory = fx.factory();
        let shell_for = shell.clone();
        let pool = Pool::builder(move |target| factory(target).shell(&shell_for)).restore_on_replace(true).build();
        let old = {
            let mut p = pool.get_or_create(&c.name)?;
            p.exec("mkdir -p '/tmp/a b' && cd '/tmp/a b'; export K='v w'; u=1; alias hi='echo hi'")?.check()?;
            if shell.contains("bash") {
                p.exec("greet() { echo \"hello $1\"; }")?.check()?;
            }
            p.id()
        };
        // Twice: the replacement's own state, taken when it is handed back, carries on.
        let mut last = old;
        for round in 0..2 {
            c.restart("restart");
            // The old session's client may see its end only a moment after the restart: a
            // caller who gets it then finds it dead, and the next one gets the replacement.
            let deadline = Instant::now() + Duration::from_secs(25);
            let mut p = loop {
                let mut p = within(|| pool.get_or_create(&c.name))??;
                if p.id() != old && p.id() != last {
                    break p;
                }
                ensure!(Instant::now() < deadline, "{shell}: the pool hands out the stale session");
                let _ = p.exec("true");
                drop(p);
                std::thread::sleep(Duration::from_millis(100));
            };
            last = p.id();
            let out = p.exec("pwd; echo \"$K|$u\"; hi")?;
            ensure!(out.stdout == b"/tmp/a b\nv w|1\nhi\n", "{shell}, round {round}: {out:?}");
            if shell.contains("bash") {
                ensure!(p.exec("greet you")?.stdout == b"hello you\n", "{shell}, round {round}: functions");
            }
        }
        pool.close_all();
    }
    Ok(())
}

/// Runs `f`, which must answer within 25 s (a stale session gives up in bounded time, even
/// when its signalling execs do not answer).
fn within<T>(f: impl FnOnce() -> T) -> Result<T, Failed> {
    let start = Instant::now();
    let out = f();
    ensure!(start.elapsed() < Duration::from_secs(25), "took {:?}", start.elapsed());
    Ok(out)
}
