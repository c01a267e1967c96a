//! Fault injection: everything that can go wrong under a session, on real engines, each
//! answered within 10 s with a clear error or result, nothing hanging, nothing left running.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use boxshell::{Engine, Error, Runtime, Session};
use libtest_mimic::Failed;

use crate::ensure;
use crate::harness::{Fixture, engine, image, tag, unique};
use crate::{R, Test};

/// The bound on every answer here.
const BOUND: Duration = Duration::from_secs(10);

/// The bound on an answer that waits for signalling calls that never answer: each is given
/// 10 s, twice (a loaded engine can be that slow), before the container is taken to be out of
/// reach.
const SIGNAL_BOUND: Duration = Duration::from_secs(25);

/// Faults of containers and engines (docker, podman).
pub const ENGINE_TESTS: &[(&str, Test<Fixture>)] = &[
    ("fault_container_stopped_and_removed_while_idle", fault_container_stopped_and_removed_while_idle),
    ("fault_paused_container_hits_the_timeout", fault_paused_container_hits_the_timeout),
];

/// Faults of any runtime.
pub const TESTS: &[(&str, Test<Fixture>)] = &[
    ("fault_output_floods_both_pipes", fault_output_floods_both_pipes),
    ("memory_stays_bounded_for_1gb_with_a_cap", memory_stays_bounded_for_1gb_with_a_cap),
    ("chunk_callback_gets_every_byte_once_in_order", chunk_callback_gets_every_byte_once_in_order),
];

/// Faults of the runtime CLI itself, played by `tests/bin/fake-cli`; and of the docker engine,
/// played by a docker engine of the test's own. Run once, over docker.
pub const CLI_TESTS: &[(&str, Test<Fixture>)] = &[
    ("fault_cli_crashes", fault_cli_crashes),
    ("fault_cli_prints_garbage", fault_cli_prints_garbage),
    ("fault_cli_hangs", fault_cli_hangs),
    ("fault_cli_hangs_when_signalling", fault_cli_hangs_when_signalling),
    ("fault_engine_stopped_mid_command", fault_engine_stopped_mid_command),
    ("fault_engine_frozen_hits_the_timeout", fault_engine_frozen_hits_the_timeout),
];

fn within<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, Failed> {
    within_bound(what, BOUND, f)
}

fn within_bound<T>(what: &str, bound: Duration, f: impl FnOnce() -> T) -> Result<T, Failed> {
    let start = Instant::now();
    let out = f();
    let took = start.elapsed();
    ensure!(took < bound, "{what} took {took:?}");
    Ok(out)
}

fn fault_container_stopped_and_removed_while_idle(fx: &Fixture) -> R {
    for verb in ["stop", "rm"] {
        let c = fx.fresh();
        let mut sh = fx.builder_for(&c.name).open()?;
        let t = tag();
        sh.exec(&format!("sleep {t} &"))?.check()?;
        match verb {
            "stop" => engine(&fx.engine, &["stop", "-t", "1", &c.name]),
            _ => engine(&fx.engine, &["rm", "-f", &c.name]),
        };
        // Either the session already knows the shell is gone, or the exec client is still on
        // its way out and the command comes back failed, without output; then it knows.
        match within("the next command", || sh.exec("echo hello"))? {
            Err(Error::ShellExited { .. }) => {}
            Ok(out) if !out.success() && out.stdout.is_empty() => {
                let r = within("the command after", || sh.exec("echo hello"))?;
                ensure!(matches!(r, Err(Error::ShellExited { .. })), "{verb}: {r:?}");
            }
            other => return Err(format!("{verb}: {other:?}").into()),
        }
        ensure!(!sh.is_alive(), "{verb}: alive");
        within("close", || sh.close())??;
    }
    Ok(())
}

fn fault_paused_container_hits_the_timeout(fx: &Fixture) -> R {
    let c = fx.fresh();
    let mut sh = fx.builder_for(&c.name).grace(Duration::from_millis(300)).open()?;
    let t = tag();
    sh.exec(&format!("sleep {t} &"))?.check()?;
    engine(&fx.engine, &["pause", &c.name]);
    let out = within("a command in a paused container", || sh.cmd("echo frozen").timeout(Duration::from_secs(1)).run());
    engine(&fx.engine, &["unpause", &c.name]);
    let out = out??;
    ensure!(out.timed_out && !out.success(), "{out:?}");
    ensure!(!sh.is_alive(), "a shell that could not be reached counts as gone");
    // Cleaning up could not reach the paused container; close tries again, now it can.
    within("close", || sh.close())??;
    let ps = crate::harness::processes_in(&fx.engine, &c.name, &format!("sleep {t}"));
    ensure!(ps.is_empty(), "left running: {ps:?}");
    Ok(())
}

fn fault_output_floods_both_pipes(fx: &Fixture) -> R {
    let mut sh = fx.session();
    // Ended at its timeout: the signalling exec competes with the flood for the CPU, and on a
    // loaded machine podman's took 11 s once.
    let out = within_bound("a flood", Duration::from_secs(30), || {
        sh.cmd("cat /dev/zero >&2 & cat /dev/zero").timeout(Duration::from_secs(2)).max_output(1 << 20).run()
    })??;
    ensure!(out.timed_out && out.truncated, "{:?}", (out.timed_out, out.truncated, out.exit_code));
    ensure!(out.stdout.len() == 1 << 20 && out.stdout.iter().all(|&b| b == 0), "stdout {}", out.stdout.len());
    ensure!(out.stderr.len() == 1 << 20, "stderr {}", out.stderr.len());
    ensure!(fx.wait_gone("cat /dev/zero").is_empty(), "the flood goes on");
    assert_eq!(sh.exec("echo calm")?.stdout, b"calm\n");
    Ok(())
}

/// Runs the test binary as a helper (a process of its own, so its memory is its own) and
/// returns what it printed.
fn helper(fx: &Fixture, what: &str) -> Result<String, Failed> {
    let program = fx.program.clone().unwrap_or_else(|| "-".into());
    let spec = format!("{what}:{}:{}:{program}", fx.runtime.name(), fx.container);
    let mut child = crate::harness::spawn_helper(&spec);
    let (mut out, mut err) = (String::new(), String::new());
    let read_out = child.stdout.take().expect("stdout").read_to_string(&mut out);
    let read_err = child.stderr.take().expect("stderr").read_to_string(&mut err);
    let status = child.wait()?;
    read_out?;
    read_err?;
    ensure!(status.success(), "helper {what} failed: {status:?}\n{out}{err}");
    Ok(out)
}

fn memory_stays_bounded_for_1gb_with_a_cap(fx: &Fixture) -> R {
    let _heavy = crate::harness::heavy();
    let out = helper(fx, "big-output")?;
    let field = |k: &str| out.split_whitespace().find_map(|w| w.strip_prefix(k)).and_then(|v| v.parse::<u64>().ok());
    let (kept, seen, hwm) = (field("kept="), field("seen="), field("hwm_kib="));
    ensure!(out.contains("truncated=true"), "{out}");
    ensure!(kept == Some(1 << 20), "{out}");
    ensure!(seen == Some(1_000_000_000), "every byte goes by the callback: {out}");
    ensure!(hwm.is_some_and(|k| k < 50 * 1024), "peak RSS: {out}");
    Ok(())
}

fn chunk_callback_gets_every_byte_once_in_order(fx: &Fixture) -> R {
    let _heavy = crate::harness::heavy();
    let out = helper(fx, "big-stream")?;
    ensure!(out.starts_with("in-order "), "{out}");
    Ok(())
}

/// The lines a stream of `seq 1 N` is made of, checked as they come: every number once, in
/// order, whatever the chunks.
pub struct SeqCheck {
    next: u64,
    line: Vec<u8>,
    pub bytes: u64,
}

impl SeqCheck {
    pub fn new() -> SeqCheck {
        SeqCheck { next: 1, line: Vec::new(), bytes: 0 }
    }

    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), String> {
        self.bytes += chunk.len() as u64;
        for &b in chunk {
            if b != b'\n' {
                self.line.push(b);
                continue;
            }
            let want = self.next.to_string();
            if self.line != want.as_bytes() {
                return Err(format!(
                    "expected {want}, got {:?} at byte {}",
                    String::from_utf8_lossy(&self.line),
                    self.bytes
                ));
            }
            self.next += 1;
            self.line.clear();
        }
        Ok(())
    }

    /// The last number seen.
    pub fn last(&self) -> u64 {
        self.next - 1
    }
}

/// What the helper process does for the memory tests; prints its findings.
pub fn run_helper(what: &str, runtime: &str, container: &str, program: &str) {
    let runtime: Runtime = match runtime {
        "kubectl" => Runtime::Kubectl(boxshell::Kubectl::new()),
        other => other.parse().expect("runtime"),
    };
    let engine =
        if program == "-" { Engine::new(runtime.clone()) } else { Engine::new(runtime.clone()).program(program) };
    let mut sh = Session::builder(container).runtime(engine).timeout(Duration::from_secs(300)).open().expect("open");
    match what {
        "big-output" => {
            let mut seen = 0u64;
            let out = sh
                .cmd("head -c 1000000000 /dev/zero")
                .max_output(1 << 20)
                .on_chunk(|_, b| seen += b.len() as u64)
                .run()
                .expect("run");
            let hwm = std::fs::read_to_string("/proc/self/status")
                .unwrap_or_default()
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:").map(|v| v.trim().trim_end_matches(" kB").to_string()))
                .unwrap_or_default();
            println!(
                "truncated={} kept={} seen={seen} hwm_kib={hwm} exit={}",
                out.truncated,
                out.stdout.len(),
                out.exit_code
            );
        }
        "big-stream" => {
            // GNU seq on the host makes 1 GB in a second; busybox seq in the test image is
            // slower, so containers stream 100 MB.
            let n: u64 = if runtime.is_container() { 12_000_000 } else { 113_000_000 };
            let mut check = SeqCheck::new();
            let mut error = None;
            let out = sh
                .cmd(format!("seq 1 {n}"))
                .max_output(0)
                .on_chunk(|_, b| {
                    if error.is_none() {
                        error = check.feed(b).err();
                    }
                })
                .run()
                .expect("run");
            match error {
                None if check.last() == n && out.success() => println!("in-order {} bytes, 1..{n}", check.bytes),
                None => println!("incomplete: last {} of {n}, {out:?}", check.last()),
                Some(e) => println!("out of order: {e}"),
            }
        }
        other => panic!("unknown helper {other}"),
    }
    sh.close().expect("close");
}

fn fake(fx: &Fixture, mode: &str) -> boxshell::SessionBuilder {
    Session::builder(&fx.container).runtime(fake_cli(mode))
}

/// docker's CLI behind the stand-in `tests/bin/fake-cli`, misbehaving as `mode` says.
fn fake_cli(mode: &str) -> Engine {
    Engine::new(Runtime::Docker)
        .program(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bin/fake-cli"))
        .env("FAKE_CLI_MODE", mode)
}

fn fault_cli_crashes(fx: &Fixture) -> R {
    // The CLI may die before or after the session has sent its first command: both told alike.
    for _ in 0..20 {
        let err = within("open", || fake(fx, "crash").open().unwrap_err())?;
        let text = err.to_string();
        ensure!(matches!(err, Error::Open { .. } | Error::RuntimeUnavailable { .. }), "{err:?}");
        ensure!(text.contains("139"), "the crash is not told: {text}");
    }
    Ok(())
}

fn fault_cli_prints_garbage(fx: &Fixture) -> R {
    let err = within("open", || fake(fx, "garbage").open().unwrap_err())?;
    ensure!(matches!(err, Error::Open { .. } | Error::RuntimeUnavailable { .. }), "{err:?}");
    Ok(())
}

fn fault_cli_hangs(fx: &Fixture) -> R {
    let t = tag();
    let builder = Session::builder(&fx.container)
        .runtime(fake_cli("hang").env("FAKE_CLI_SLEEP", t.to_string()))
        .open_timeout(Duration::from_secs(2));
    let err = within("open", || builder.open().unwrap_err())?;
    match &err {
        Error::Open { message, .. } => ensure!(message.contains("did not answer within 2s"), "{message}"),
        other => return Err(format!("expected Open, got {other:?}").into()),
    }
    let host = Fixture::host();
    ensure!(host.wait_gone(&format!("sleep {t}")).is_empty(), "the hanging CLI was left running");
    Ok(())
}

fn fault_cli_hangs_when_signalling(fx: &Fixture) -> R {
    let c = fx.fresh();
    let t = tag();
    let mut sh = Session::builder(&c.name)
        .runtime(fake_cli("hang-on-signal").env("FAKE_CLI_SLEEP", t.to_string()))
        .grace(Duration::from_millis(300))
        .close_timeout(Duration::from_secs(2))
        .open()?;
    let out = within_bound("a timeout whose interrupt hangs", SIGNAL_BOUND, || {
        sh.cmd("sleep 600").timeout(Duration::from_secs(1)).run()
    })??;
    ensure!(out.timed_out, "{out:?}");
    ensure!(!sh.is_alive(), "the session should be given up");
    // Cleaning up cannot reach the container through this CLI: close says so, in bounded time.
    let closed = within_bound("close", SIGNAL_BOUND, || sh.close())?;
    ensure!(closed.is_err(), "close claimed a clean-up it could not do");
    let host = Fixture::host();
    ensure!(host.wait_gone(&format!("sleep {t}")).is_empty(), "hanging CLI calls were left running");
    Ok(())
}

/// A docker engine of the test's own, so stopping it disturbs no other test. `dockerd` runs
/// under `unshare`, which execs it: the child is dockerd itself.
struct PrivateEngine {
    dir: std::path::PathBuf,
    socket: String,
    dockerd: std::process::Child,
}

impl PrivateEngine {
    fn start() -> Result<PrivateEngine, Failed> {
        let dir = std::path::PathBuf::from(format!("/tmp/{}", unique("bx-dockerd")));
        std::fs::create_dir_all(&dir)?;
        let socket = format!("unix://{}/docker.sock", dir.display());
        let d = |sub: &str| dir.join(sub).display().to_string();
        // Its own network and mount namespaces: nothing it sets up or tears down (bridges,
        // mounts) touches the machine's engine.
        let dockerd = Command::new("unshare")
            .args(["--net", "--mount", "--", "dockerd"])
            .args(["--host", &socket, "--data-root", &d("data"), "--exec-root", &d("exec"), "--pidfile", &d("pid")])
            .args(["--bridge", "none", "--iptables=false", "--ip6tables=false"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("log"))?)
            .spawn()
            .map_err(|e| format!("dockerd: {e}"))?;
        let engine = PrivateEngine { dir, socket, dockerd };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !engine.docker(&["version"]).status()?.success() {
            ensure!(Instant::now() < deadline, "the private dockerd did not start");
            std::thread::sleep(Duration::from_millis(200));
        }
        let save = Command::new("docker").args(["save", &image()]).stdout(Stdio::piped()).spawn()?;
        let loaded = engine.docker(&["load", "-q"]).stdin(save.stdout.expect("pipe")).output()?;
        ensure!(loaded.status.success(), "load: {}", String::from_utf8_lossy(&loaded.stderr));
        Ok(engine)
    }

    fn docker(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("docker");
        cmd.args(["-H", &self.socket]).args(args).stdout(Stdio::null()).stderr(Stdio::null());
        cmd
    }

    fn run(&self, name: &str) -> R {
        let status = self
            .docker(&["run", "-d", "--init", "--network", "none", "--name", name, &image(), "sleep", "3600"])
            .status()?;
        ensure!(status.success(), "run in the private engine");
        Ok(())
    }

    fn signal(&self, signal: &str) {
        let _ = Command::new("kill").args(["-s", signal, &self.dockerd.id().to_string()]).status();
    }
}

impl Drop for PrivateEngine {
    fn drop(&mut self) {
        self.signal("CONT");
        self.signal("TERM");
        if crate::harness::wait_child(&mut self.dockerd, Duration::from_secs(20)).is_none() {
            let _ = self.dockerd.kill();
            let _ = self.dockerd.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn fault_engine_stopped_mid_command(_: &Fixture) -> R {
    let engine = PrivateEngine::start()?;
    let name = unique("bx-private");
    engine.run(&name)?;
    let mut sh =
        Session::builder(&name).runtime(Engine::new(Runtime::Docker).global_args(["-H", &engine.socket])).open()?;
    sh.exec("echo warm")?.check()?;
    let stop = std::thread::spawn({
        let pid = engine.dockerd.id();
        move || {
            std::thread::sleep(Duration::from_millis(700));
            let _ = Command::new("kill").args(["-s", "TERM", &pid.to_string()]).status();
        }
    });
    let out = within("a command when the engine stops", || sh.exec("echo partial; sleep 60"))?;
    stop.join().expect("thread");
    let out = out?;
    ensure!(out.stdout == b"partial\n" && !out.success(), "{out:?}");
    ensure!(!sh.is_alive(), "alive without an engine");
    ensure!(matches!(within("the next command", || sh.exec("true"))?, Err(Error::ShellExited { .. })), "next");
    // Whether anything is left cannot be known without the engine: close says so.
    match within("close", || sh.close())? {
        Err(e @ Error::RuntimeUnavailable { .. }) => ensure!(e.to_string().contains(&engine.socket), "{e}"),
        other => return Err(format!("expected RuntimeUnavailable, got {other:?}").into()),
    }
    Ok(())
}

fn fault_engine_frozen_hits_the_timeout(_: &Fixture) -> R {
    let engine = PrivateEngine::start()?;
    let name = unique("bx-private");
    engine.run(&name)?;
    let mut sh = Session::builder(&name)
        .runtime(Engine::new(Runtime::Docker).global_args(["-H", &engine.socket]))
        .grace(Duration::from_millis(300))
        .open()?;
    let t = tag();
    sh.exec(&format!("sleep {t} &"))?.check()?;
    engine.signal("STOP");
    let out = within_bound("a timeout while the engine is frozen", SIGNAL_BOUND, || {
        sh.cmd("sleep 60").timeout(Duration::from_secs(1)).run()
    });
    engine.signal("CONT");
    let out = out??;
    ensure!(out.timed_out, "{out:?}");
    // The engine answers again: close cleans up what the frozen engine kept from it.
    within("close", || sh.close())??;
    let ps = String::from_utf8_lossy(
        &engine.docker(&["exec", &name, "ps", "-o", "args"]).stdout(Stdio::piped()).output()?.stdout,
    )
    .to_string();
    ensure!(!ps.contains(&format!("sleep {t}")) && !ps.contains("sleep 60"), "left running: {ps}");
    Ok(())
}
