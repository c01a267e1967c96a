//! `cargo bench`: what a session costs, beside the floor of the same pipe driven by hand.
//!
//! For each runtime (docker, podman, local; `BOXSHELL_BENCH_RUNTIMES` picks), in one run:
//! - round trip of `echo hi` through a session, beside the raw floor (the same `exec -i` pipe
//!   driven by a minimal marker loop on one thread) and beside one new exec per command; for
//!   reference, the floor reading both streams on one thread, and through a reader thread per
//!   stream (the hand-offs a session's readers add);
//! - throughput of 200 MB of stdout, beside raw `exec -i ... head -c`;
//! - session open time, beside a bare `exec -i ... true`;
//! - 64 MiB into a file through `write_file`, `Cmd::stdin` and `Running::write_stdin`, beside
//!   raw `exec -i ... cat >FILE`; and out through `read_file`, beside raw `exec ... cat FILE`;
//! - 4095 bytes of stdin (inline in the command) beside no stdin, and 8 KiB and one byte
//!   (through a second exec) beside a bare `exec -i ... true`;
//! - the cost of aborting a command at its timeout (from the deadline to the answer to the next
//!   command), beside one bare `exec ... true`, the second exec an abort signals through.
//!
//! - `read_dir` of 10,000 entries and `metadata` of one file through the session, beside one
//!   new `exec ... ls -la DIR` and `exec ... stat FILE` (what a caller without a session runs).
//! - a background process started and its first line seen, beside one new `exec ... echo hi`.
//! - a snapshot of a shell's state (100 variables, 20 functions, as bash, the shell that lists
//!   functions) and its restore into a new session, beside a plain round trip of `echo hi`.
//! - a terminal: a keystroke to its echo by the terminal (`cat` reading), and a terminal
//!   command's start to its output, beside `exec -i -t` driven by hand through a host PTY
//!   (`setsid -c` on the local runtime), what a caller without a session runs.
//!
//! - docker only: a session through the engine reached over ssh (`DOCKER_HOST=ssh://LOGIN`,
//!   LOGIN from `BOXSHELL_BENCH_SSH`, default `root@127.0.0.1`, the test sshd of
//!   `scripts/setup-runtimes.sh`), beside a session through the local socket; and one new
//!   `docker exec` per command over ssh, what a caller without a session pays each time.
//!
//! - local only, with `--features cli`: the `boxshell` command's start-up (`--version`,
//!   `exec --help`), beside `true` and `docker --version`.
//!
//! `BOXSHELL_BENCH_ONLY` picks measures by name: round_trip, new_exec, throughput, files,
//! small_input, open, interrupt, fs, background, terminal, snapshot, remote, cli
//! (comma-separated).
//!
//! Measurements of a session and of its floor alternate in rounds, so both see the same machine.
//! Containers run the local test image (`scripts/setup-runtimes.sh`), or `BOXSHELL_IMAGE`.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use boxshell::{Runtime, Session};
use common::Throwaway;

mod common;

const ROUNDS: usize = 10;
const PER_ROUND: usize = 300;
const STREAM_BYTES: u64 = 200_000_000;

fn main() {
    let names = std::env::var("BOXSHELL_BENCH_RUNTIMES").unwrap_or_else(|_| "docker,podman,local".into());
    let image = std::env::var("BOXSHELL_IMAGE").unwrap_or_else(|_| "boxshell-test:latest".into());
    let only = std::env::var("BOXSHELL_BENCH_ONLY").ok();
    println!("boxshell bench: {} rounds, medians and 99th percentiles; ratio = session / floor\n", ROUNDS);
    println!("| runtime | measure | session | floor | ratio | target |");
    println!("|---|---|---|---|---|---|");
    for name in names.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let runtime: Runtime = name.parse().expect("runtime name");
        let target = match Target::start(&runtime, &image) {
            Ok(t) => t,
            Err(e) => {
                println!("| {runtime} | left out: {e} | | | | |");
                continue;
            }
        };
        let measures: [(&str, Measure); 13] = [
            ("round_trip", round_trip),
            ("new_exec", new_exec_per_command),
            ("throughput", throughput),
            ("files", file_throughput),
            ("small_input", small_input),
            ("open", open_time),
            ("interrupt", interrupt_cost),
            ("fs", fs_verbs),
            ("background", background_start),
            ("terminal", terminal),
            ("snapshot", snapshot),
            ("remote", remote_engine),
            ("cli", cli_start),
        ];
        for (measure, run) in measures {
            if only.as_ref().is_none_or(|only| only.split(',').any(|m| m.trim() == measure)) {
                run(&target);
            }
        }
    }
}

/// One group of rows.
type Measure = fn(&Target);

/// A container (or the host) to measure in.
struct Target {
    runtime: Runtime,
    container: String,
    _throwaway: Throwaway,
}

impl Target {
    fn start(runtime: &Runtime, image: &str) -> Result<Target, String> {
        let throwaway = Throwaway::start(runtime, image, "bench")?;
        Ok(Target { runtime: runtime.clone(), container: throwaway.name.clone(), _throwaway: throwaway })
    }

    /// `argv` run in the target: `RUNTIME exec [-i] CONTAINER argv...`, or argv on the host.
    fn command(&self, interactive: bool, argv: &[&str]) -> Command {
        if !self.runtime.is_container() {
            let mut cmd = Command::new(argv[0]);
            cmd.args(&argv[1..]);
            return cmd;
        }
        let mut cmd = Command::new(self.runtime.name());
        cmd.arg("exec");
        if interactive {
            cmd.arg("-i");
        }
        cmd.arg(&self.container).args(argv);
        cmd
    }

    fn session(&self) -> Session {
        Session::builder(&self.container).runtime(self.runtime.clone()).open().expect("open a session")
    }

    fn spawn_stdout(&self, argv: &[&str]) -> Child {
        self.command(true, argv)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn")
    }
}

/// Median and 99th percentile.
fn stats(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[(v.len() * 99 / 100).min(v.len() - 1)])
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn row(runtime: &Runtime, measure: &str, session: String, floor: String, ratio: f64, target: &str) {
    println!("| {runtime} | {measure} | {session} | {floor} | {ratio:.2}× | {target} |");
}

/// How a floor reads the shell's answer.
#[derive(Clone, Copy, PartialEq)]
enum Floor {
    /// The caller reads stdout until the marker: the floor.
    Stdout,
    /// The caller reads stdout, then stderr, each until its marker: what a protocol that must
    /// know both streams are complete cannot avoid, with no thread between.
    Both,
    /// A reader thread per stream hands what it reads to the caller on a channel, as a
    /// session's readers do: `Both` plus the hand-offs between threads.
    Threads,
}

/// A floor: `echo hi; echo MARK` (and `echo MARK >&2`) written to a bare shell, read back.
struct RawLoop {
    child: Child,
    buf: Vec<u8>,
    floor: Floor,
    from_readers: Option<crossbeam_channel::Receiver<(bool, Vec<u8>)>>,
}

impl RawLoop {
    fn new(target: &Target, floor: Floor) -> RawLoop {
        let mut cmd = target.command(true, &["/bin/sh"]);
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
        let from_readers = (floor == Floor::Threads).then(|| {
            let (tx, rx) = crossbeam_channel::unbounded();
            let streams: [(bool, Box<dyn Read + Send>); 2] = [
                (false, Box::new(child.stdout.take().expect("stdout"))),
                (true, Box::new(child.stderr.take().expect("stderr"))),
            ];
            for (is_stderr, mut pipe) in streams {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    let mut buf = vec![0; 65536];
                    while let Ok(n @ 1..) = pipe.read(&mut buf) {
                        if tx.send((is_stderr, buf[..n].to_vec())).is_err() {
                            break;
                        }
                    }
                });
            }
            rx
        });
        RawLoop { child, buf: vec![0; 65536], floor, from_readers }
    }

    fn read_until_mark(&mut self, stderr: bool) -> Vec<u8> {
        let mut got = Vec::new();
        while !got.ends_with(b"MARK\n") {
            let n = if stderr {
                self.child.stderr.as_mut().expect("stderr").read(&mut self.buf)
            } else {
                self.child.stdout.as_mut().expect("stdout").read(&mut self.buf)
            };
            let n = n.expect("read");
            assert!(n > 0, "raw shell exited");
            got.extend_from_slice(&self.buf[..n]);
        }
        got
    }

    /// Both streams from the reader threads, until each ends in its marker.
    fn receive_until_marks(&mut self) -> [Vec<u8>; 2] {
        let rx = self.from_readers.as_ref().expect("reader threads");
        let mut got = [Vec::new(), Vec::new()];
        while !got.iter().all(|g| g.ends_with(b"MARK\n")) {
            let (is_stderr, chunk) = rx.recv().expect("raw shell exited");
            got[usize::from(is_stderr)].extend_from_slice(&chunk);
        }
        got
    }

    fn round_trip(&mut self) -> Duration {
        let start = Instant::now();
        let line: &[u8] =
            if self.floor == Floor::Stdout { b"echo hi; echo MARK\n" } else { b"echo hi; echo MARK >&2; echo MARK\n" };
        self.child.stdin.as_mut().expect("stdin").write_all(line).expect("write");
        match self.floor {
            Floor::Stdout => assert_eq!(self.read_until_mark(false), b"hi\nMARK\n"),
            Floor::Both => {
                assert_eq!(self.read_until_mark(false), b"hi\nMARK\n");
                assert_eq!(self.read_until_mark(true), b"MARK\n");
            }
            Floor::Threads => assert_eq!(self.receive_until_marks(), [&b"hi\nMARK\n"[..], b"MARK\n"]),
        }
        start.elapsed()
    }
}

impl Drop for RawLoop {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

fn round_trip(target: &Target) {
    let mut sh = target.session();
    let mut raws = [Floor::Stdout, Floor::Both, Floor::Threads].map(|f| RawLoop::new(target, f));
    for _ in 0..100 {
        for raw in &mut raws {
            raw.round_trip();
        }
        sh.exec("echo hi").expect("exec");
    }
    let mut ours = Vec::new();
    let [mut floor, mut both, mut threads] = [(); 3].map(|()| Vec::new());
    for _ in 0..ROUNDS {
        for (raw, times) in raws.iter_mut().zip([&mut floor, &mut both, &mut threads]) {
            for _ in 0..PER_ROUND {
                times.push(raw.round_trip());
            }
        }
        for _ in 0..PER_ROUND {
            let start = Instant::now();
            let out = sh.exec("echo hi").expect("exec");
            ours.push(start.elapsed());
            assert_eq!(out.stdout, b"hi\n");
        }
    }
    let ((o50, o99), (f50, f99), (b50, _), (t50, _)) = (stats(ours), stats(floor), stats(both), stats(threads));
    let rt = &target.runtime;
    row(rt, "round trip p50", us(o50), us(f50), o50.as_secs_f64() / f50.as_secs_f64(), "≤ 1.5×");
    row(rt, "round trip p99", us(o99), us(f99), o99.as_secs_f64() / f99.as_secs_f64(), "");
    let ratio = b50.as_secs_f64() / f50.as_secs_f64();
    row(rt, "(floor reading stdout and stderr, p50)", us(b50), us(f50), ratio, "(for reference)");
    let ratio = t50.as_secs_f64() / f50.as_secs_f64();
    row(rt, "(the same through a reader thread per stream, p50)", us(t50), us(f50), ratio, "(for reference)");
    sh.close().expect("close");
}

fn new_exec_per_command(target: &Target) {
    if !target.runtime.is_container() {
        return;
    }
    let mut sh = target.session();
    let (mut ours, mut fresh) = (Vec::new(), Vec::new());
    for _ in 0..30 {
        let start = Instant::now();
        let out = target.command(false, &["sh", "-c", "echo hi"]).output().expect("exec");
        fresh.push(start.elapsed());
        assert_eq!(out.stdout, b"hi\n");
        let start = Instant::now();
        sh.exec("echo hi").expect("exec");
        ours.push(start.elapsed());
    }
    let ((o50, _), (f50, _)) = (stats(ours), stats(fresh));
    let ratio = o50.as_secs_f64() / f50.as_secs_f64();
    row(&target.runtime, "`echo hi` vs one new exec each", us(o50), ms(f50), ratio, "(a session avoids this)");
    sh.close().expect("close");
}

/// A session through docker's ssh transport, beside one through the local socket (the same
/// container: the engine over ssh is this host's).
fn remote_engine(target: &Target) {
    if target.runtime != Runtime::Docker {
        return;
    }
    let login = std::env::var("BOXSHELL_BENCH_SSH").unwrap_or_else(|_| "root@127.0.0.1".into());
    let host = format!("ssh://{login}");
    let reachable = Command::new("ssh").args(["-o", "BatchMode=yes", &login, "true"]).stdin(Stdio::null()).status();
    if !reachable.is_ok_and(|s| s.success()) {
        println!("| docker | over ssh: left out, `ssh {login}` does not let us in | | | | |");
        return;
    }
    let engine = boxshell::Engine::new(Runtime::Docker).env("DOCKER_HOST", &host);
    let mut far = Session::builder(&target.container).runtime(engine).open().expect("open over ssh");
    let mut near = target.session();
    let (mut over_ssh, mut local, mut fresh) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS * 30 {
        for (sh, times) in [(&mut far, &mut over_ssh), (&mut near, &mut local)] {
            let start = Instant::now();
            let out = sh.exec("echo hi").expect("exec");
            times.push(start.elapsed());
            assert_eq!(out.stdout, b"hi\n");
        }
        if round % 10 == 0 {
            let start = Instant::now();
            let out = target.command(false, &["sh", "-c", "echo hi"]).env("DOCKER_HOST", &host).output().expect("exec");
            fresh.push(start.elapsed());
            assert_eq!(out.stdout, b"hi\n");
        }
    }
    let ((s50, s99), (l50, l99), (f50, _)) = (stats(over_ssh), stats(local), stats(fresh));
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    let rt = "docker over ssh";
    println!(
        "| {rt} | round trip p50, against a session through the local socket | {} | {} | {:.2}× | |",
        us(s50),
        us(l50),
        ratio(s50, l50)
    );
    println!("| {rt} | round trip p99, the same | {} | {} | {:.2}× | |", us(s99), us(l99), ratio(s99, l99));
    println!(
        "| {rt} | `echo hi` vs one new exec over ssh each | {} | {} | {:.4}× | (a session avoids this) |",
        us(s50),
        ms(f50),
        ratio(s50, f50)
    );
    far.close().expect("close");
    near.close().expect("close");
}

fn throughput(target: &Target) {
    let command = format!("head -c {STREAM_BYTES} /dev/zero");
    let mut sh = target.session();
    let (mut ours, mut floor) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let start = Instant::now();
        let mut child = target.spawn_stdout(&["sh", "-c", &command]);
        let mut stdout = child.stdout.take().expect("stdout");
        let mut buf = vec![0u8; 65536];
        let mut total = 0u64;
        loop {
            let n = stdout.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        let _ = child.wait();
        assert_eq!(total, STREAM_BYTES);
        floor.push(start.elapsed());

        let start = Instant::now();
        let mut total = 0u64;
        let out = sh
            .cmd(command.as_str())
            .max_output(0)
            .on_chunk(|_, bytes| total += bytes.len() as u64)
            .timeout(Duration::from_secs(300))
            .run()
            .expect("stream");
        assert!(out.success());
        assert_eq!(total, STREAM_BYTES);
        ours.push(start.elapsed());
    }
    let rate = |d: Duration| STREAM_BYTES as f64 / d.as_secs_f64() / 1e6;
    let ((o, _), (f, _)) = (stats(ours), stats(floor));
    row(
        &target.runtime,
        "stdout throughput, 200 MB",
        format!("{:.0} MB/s", rate(o)),
        format!("{:.0} MB/s", rate(f)),
        rate(o) / rate(f),
        "≥ 0.90×",
    );
    sh.close().expect("close");
}

fn file_throughput(target: &Target) {
    const LEN: usize = 64 << 20;
    const FILE: &str = "/tmp/boxshell-bench-file";
    let data: Vec<u8> = (0..LEN).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let mut sh = target.session();
    let timed = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        f();
        start.elapsed()
    };
    let mut times: [Vec<Duration>; 6] = Default::default();
    for _ in 0..5 {
        // The floors: one exec that pipes into `cat`, one that `cat`s out.
        times[0].push(timed(&mut || {
            let mut child = target
                .command(true, &["sh", "-c", &format!("cat > {FILE}")])
                .stdin(Stdio::piped())
                .spawn()
                .expect("spawn");
            child.stdin.take().expect("stdin").write_all(&data).expect("write");
            assert!(child.wait().expect("wait").success());
        }));
        times[1].push(timed(&mut || sh.write_file(FILE, &data).expect("write_file")));
        // `Cmd::stdin` takes its bytes by value: the caller's copy is made before the clock starts.
        let mut owned = Some(data.clone());
        times[2].push(timed(&mut || {
            let cmd = format!("cat > {FILE}");
            let owned = owned.take().expect("one run");
            assert!(sh.cmd(cmd.as_str()).stdin(owned).run().expect("stdin").success());
        }));
        times[3].push(timed(&mut || {
            let cmd = format!("cat > {FILE}");
            let mut running = sh.cmd(cmd.as_str()).interactive().spawn().expect("spawn");
            running.write_stdin(&data).expect("write_stdin");
            assert!(running.wait().expect("wait").success());
        }));
        times[4].push(timed(&mut || {
            let out = target.command(false, &["cat", FILE]).stderr(Stdio::null()).output().expect("cat");
            assert_eq!(out.stdout.len(), LEN);
        }));
        times[5].push(timed(&mut || assert_eq!(sh.read_file(FILE).expect("read_file").len(), LEN)));
    }
    let [raw_in, write_file, stdin, write_stdin, raw_out, read_file] = times.map(|t| stats(t).0);
    let rate = |d: Duration| format!("{:.0} MB/s", LEN as f64 / d.as_secs_f64() / 1e6);
    let ratio = |ours: Duration, floor: Duration| floor.as_secs_f64() / ours.as_secs_f64();
    for (measure, ours) in [
        ("64 MiB in: write_file", write_file),
        ("64 MiB in: cmd().stdin()", stdin),
        ("64 MiB in: write_stdin", write_stdin),
    ] {
        row(&target.runtime, measure, rate(ours), rate(raw_in), ratio(ours, raw_in), "≥ 0.70×");
    }
    row(&target.runtime, "64 MiB out: read_file", rate(read_file), rate(raw_out), ratio(read_file, raw_out), "≥ 0.70×");
    sh.exec(&format!("rm -f {FILE}")).expect("rm");
    sh.close().expect("close");
}

/// Small input: under 4 KiB, inline in the command (beside the command without input); 8 KiB
/// and one byte, through a second exec (beside a bare `exec -i ... true`, what it starts).
fn small_input(target: &Target) {
    let mut sh = target.session();
    let (mut none, mut inline, mut bare, mut fed) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut timed = |input: Option<usize>| {
        let cmd = sh.cmd("cat >/dev/null");
        let cmd = match input {
            Some(len) => cmd.stdin(vec![b'x'; len]),
            None => cmd,
        };
        let start = Instant::now();
        assert!(cmd.run().expect("run").success());
        start.elapsed()
    };
    for round in 0..150 {
        none.push(timed(None));
        inline.push(timed(Some(4095)));
        if round % 10 == 0 {
            fed.push(timed(Some((8 << 10) + 1)));
            let start = Instant::now();
            let status = target.command(true, &["true"]).stdin(Stdio::piped()).status().expect("exec");
            bare.push(start.elapsed());
            assert!(status.success());
        }
    }
    let [(none, _), (inline, _), (bare, _), (fed, _)] = [none, inline, bare, fed].map(stats);
    let ratio = |ours: Duration, floor: Duration| ours.as_secs_f64() / floor.as_secs_f64();
    row(&target.runtime, "stdin 4095 B (inline), p50", us(inline), us(none), ratio(inline, none), "(floor: no stdin)");
    row(
        &target.runtime,
        "stdin 8 KiB + 1 (second exec), p50",
        ms(fed),
        ms(bare),
        ratio(fed, bare),
        "(floor: one exec)",
    );
    sh.close().expect("close");
}

fn fs_verbs(target: &Target) {
    let mut sh = target.session();
    let dir = format!("/tmp/boxshell-bench-dir-{}", std::process::id());
    let made =
        format!("mkdir -p {dir} && cd {dir} && i=0; while [ $i -lt 10000 ]; do : > \"file $i\"; i=$((i+1)); done");
    sh.exec(&made).expect("make the files").check().expect("make the files");
    let file = format!("{dir}/file 0");
    let raw = |argv: &[&str]| {
        let start = Instant::now();
        let out = target.command(false, argv).stdin(Stdio::null()).output().expect("exec");
        assert!(out.status.success(), "{argv:?}: {}", String::from_utf8_lossy(&out.stderr));
        start.elapsed()
    };
    let (mut listed, mut ls, mut stat, mut stat_raw) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..15 {
        let start = Instant::now();
        assert_eq!(sh.read_dir(&dir).expect("read_dir").len(), 10_000);
        listed.push(start.elapsed());
        ls.push(raw(&["ls", "-la", &dir]));
        let start = Instant::now();
        assert!(sh.metadata(&file).expect("metadata").is_file());
        stat.push(start.elapsed());
        stat_raw.push(raw(&["stat", &file]));
    }
    let [(listed, _), (ls, _), (stat, _), (stat_raw, _)] = [listed, ls, stat, stat_raw].map(stats);
    let ratio = |ours: Duration, floor: Duration| ours.as_secs_f64() / floor.as_secs_f64();
    row(
        &target.runtime,
        "read_dir, 10,000 entries, p50",
        ms(listed),
        ms(ls),
        ratio(listed, ls),
        "(floor: exec ls -la)",
    );
    row(&target.runtime, "metadata, p50", ms(stat), ms(stat_raw), ratio(stat, stat_raw), "(floor: exec stat)");
    sh.remove_dir_all(&dir).expect("remove");
    sh.close().expect("close");
}

fn background_start(target: &Target) {
    let mut sh = target.session();
    let (mut ours, mut bare) = (Vec::new(), Vec::new());
    for _ in 0..15 {
        let start = Instant::now();
        let p = sh.cmd("echo hi; sleep 60").background().expect("background");
        p.wait_for(boxshell::Stream::Stdout, b"hi\n", Duration::from_secs(30)).expect("its line");
        ours.push(start.elapsed());
        p.kill().expect("kill");
        let start = Instant::now();
        let out = target.command(false, &["echo", "hi"]).stdin(Stdio::null()).output().expect("exec");
        bare.push(start.elapsed());
        assert_eq!(out.stdout, b"hi\n");
    }
    let [(ours, _), (bare, _)] = [ours, bare].map(stats);
    let ratio = ours.as_secs_f64() / bare.as_secs_f64();
    row(&target.runtime, "background start to first line, p50", ms(ours), ms(bare), ratio, "(floor: one exec)");
    sh.close().expect("close");
}

fn snapshot(target: &Target) {
    let open = || {
        Session::builder(&target.container)
            .runtime(target.runtime.clone())
            .shell("/bin/bash")
            .open()
            .expect("open bash")
    };
    let mut sh = open();
    let mut setup = String::new();
    for i in 0..100 {
        setup.push_str(&format!("v{i}='value {i}'; "));
    }
    for i in 0..20 {
        setup.push_str(&format!("f{i}() {{ echo {i}; }}; "));
    }
    sh.exec(&setup).expect("setup");
    let mut fresh = open();
    let (mut snap, mut restore, mut plain) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..30 {
        let start = Instant::now();
        let state = sh.snapshot().expect("snapshot");
        snap.push(start.elapsed());
        let start = Instant::now();
        fresh.restore(&state).expect("restore");
        restore.push(start.elapsed());
        let start = Instant::now();
        sh.exec("echo hi").expect("echo");
        plain.push(start.elapsed());
    }
    let [(s, _), (r, _), (p, _)] = [snap, restore, plain].map(stats);
    row(
        &target.runtime,
        "snapshot (100 variables, 20 functions), p50",
        us(s),
        us(p),
        s.as_secs_f64() / p.as_secs_f64(),
        "(floor: `echo hi`)",
    );
    row(&target.runtime, "restore of it, p50", us(r), us(p), r.as_secs_f64() / p.as_secs_f64(), "(floor: `echo hi`)");
}

#[cfg(feature = "terminal")]
fn terminal(target: &Target) {
    use boxshell::Stream;
    let wait = Duration::from_secs(30);
    let mut sh = target.session();
    let mut r = sh.cmd("cat").terminal(80, 24).spawn().expect("terminal");
    let mut raw = HandTerminal::start(target, &["cat"]);
    let (mut ours, mut floor) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        for _ in 0..20 {
            let start = Instant::now();
            r.write_stdin(b"x").expect("key");
            r.expect(Stream::Stdout, b"x", wait).expect("echo");
            ours.push(start.elapsed());
            let start = Instant::now();
            raw.key_to_echo();
            floor.push(start.elapsed());
        }
    }
    r.write_stdin(b"\x04").expect("ctrl-d");
    r.write_stdin(b"\x04").expect("ctrl-d");
    r.wait().expect("cat ends");
    let [(o, _), (f, _)] = [ours, floor].map(stats);
    row(
        &target.runtime,
        "terminal: keystroke to echo, p50",
        us(o),
        us(f),
        o.as_secs_f64() / f.as_secs_f64(),
        "(floor: exec -it by hand)",
    );
    let (mut ours, mut floor) = (Vec::new(), Vec::new());
    for _ in 0..15 {
        let start = Instant::now();
        let out = sh.cmd("echo hi").terminal(80, 24).run().expect("terminal command");
        ours.push(start.elapsed());
        assert_eq!(out.stdout, b"hi\r\n");
        let start = Instant::now();
        HandTerminal::start(target, &["echo", "hi"]).read_to_end();
        floor.push(start.elapsed());
    }
    let [(o, _), (f, _)] = [ours, floor].map(stats);
    row(
        &target.runtime,
        "terminal command start to its end, p50",
        ms(o),
        ms(f),
        o.as_secs_f64() / f.as_secs_f64(),
        "(floor: exec -it by hand)",
    );
    sh.close().expect("close");
}

#[cfg(not(feature = "terminal"))]
fn terminal(_: &Target) {}

/// `exec -i -t` (or `setsid -c` on the host) driven by hand through a raw host PTY.
#[cfg(feature = "terminal")]
struct HandTerminal {
    master: std::fs::File,
    child: Child,
}

#[cfg(feature = "terminal")]
impl HandTerminal {
    fn start(target: &Target, argv: &[&str]) -> HandTerminal {
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        use rustix::termios;
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let name = ptsname(&master, Vec::new()).expect("ptsname");
        let flags = rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY;
        let slave = rustix::fs::open(name.as_c_str(), flags, rustix::fs::Mode::empty()).expect("slave");
        let size = termios::Winsize { ws_col: 80, ws_row: 24, ws_xpixel: 0, ws_ypixel: 0 };
        termios::tcsetwinsize(&master, size).expect("size");
        let mut cmd = if target.runtime.is_container() {
            let mut cmd = Command::new(target.runtime.name());
            cmd.args(["exec", "-i", "-t", &target.container]).args(argv);
            let mut modes = termios::tcgetattr(&slave).expect("modes");
            modes.make_raw();
            termios::tcsetattr(&slave, termios::OptionalActions::Now, &modes).expect("raw");
            cmd
        } else {
            let mut cmd = Command::new("setsid");
            cmd.arg("-c").args(argv);
            cmd
        };
        let stdio = || Stdio::from(slave.try_clone().expect("dup"));
        let child = cmd.stdin(stdio()).stdout(stdio()).stderr(stdio()).spawn().expect("spawn");
        HandTerminal { master: std::fs::File::from(master), child }
    }

    fn key_to_echo(&mut self) {
        self.master.write_all(b"x").expect("key");
        let mut byte = [0u8; 1];
        loop {
            self.master.read_exact(&mut byte).expect("echo");
            if byte[0] == b'x' {
                return;
            }
        }
    }

    /// Reads to the end of the terminal (EIO once the program has exited).
    fn read_to_end(mut self) {
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.master.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
        self.child.wait().expect("wait");
    }
}

#[cfg(feature = "terminal")]
impl Drop for HandTerminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `boxshell` command's start-up: a run of `ARGS` to its exit, beside `true`, the floor of
/// any program, and `docker --version`, a peer's.
fn cli_start(target: &Target) {
    if target.runtime != Runtime::Local {
        return;
    }
    let Some(tool) = option_env!("CARGO_BIN_EXE_boxshell") else {
        println!("| {} | cli start-up: left out (run with `--features cli`) | | | | |", target.runtime);
        return;
    };
    let time = |program: &str, args: &[&str]| {
        let start = Instant::now();
        let out = Command::new(program).args(args).output().expect("run");
        assert!(out.status.success(), "{program} {args:?}: {out:?}");
        start.elapsed()
    };
    let has_docker = Command::new("docker").arg("--version").output().is_ok_and(|o| o.status.success());
    for args in [&["--version"][..], &["exec", "--help"]] {
        let (mut ours, mut floor, mut docker) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..200 {
            ours.push(time(tool, args));
            floor.push(time("true", &[]));
            if has_docker {
                docker.push(time("docker", &["--version"]));
            }
        }
        let ((o, _), (f, _)) = (stats(ours), stats(floor));
        let measure = format!("`boxshell {}`", args.join(" "));
        row(&target.runtime, &measure, us(o), us(f), o.as_secs_f64() / f.as_secs_f64(), "< 10 ms");
        if has_docker {
            let (d, _) = stats(docker);
            row(
                &target.runtime,
                "`docker --version`, for reference",
                us(d),
                us(f),
                d.as_secs_f64() / f.as_secs_f64(),
                "",
            );
        }
    }
}

fn open_time(target: &Target) {
    let (mut ours, mut bare) = (Vec::new(), Vec::new());
    for _ in 0..15 {
        let start = Instant::now();
        let status = target.command(true, &["true"]).stdin(Stdio::piped()).status().expect("exec");
        bare.push(start.elapsed());
        assert!(status.success());

        let start = Instant::now();
        let sh = target.session();
        ours.push(start.elapsed());
        sh.close().expect("close");
    }
    let ((o, _), (f, _)) = (stats(ours), stats(bare));
    row(&target.runtime, "session open", ms(o), ms(f), o.as_secs_f64() / f.as_secs_f64(), "≤ 1.2×");
}

fn interrupt_cost(target: &Target) {
    const TIMEOUT: Duration = Duration::from_millis(200);
    let mut sh = target.session();
    let (mut ours, mut bare) = (Vec::new(), Vec::new());
    for _ in 0..15 {
        let start = Instant::now();
        let status = target.command(false, &["true"]).status().expect("exec");
        bare.push(start.elapsed());
        assert!(status.success());

        let start = Instant::now();
        let out = sh.cmd("echo start; sleep 30; echo never").timeout(TIMEOUT).run().expect("run");
        assert!(out.timed_out && out.exit_code == 130 && out.stdout == b"start\n", "{out:?}");
        let next = sh.exec("echo hi").expect("exec");
        assert_eq!(next.stdout, b"hi\n");
        ours.push(start.elapsed() - TIMEOUT);
    }
    let ((o, _), (f, _)) = (stats(ours), stats(bare));
    let ratio = o.as_secs_f64() / f.as_secs_f64();
    row(&target.runtime, "abort at the timeout, to the next answer", ms(o), ms(f), ratio, "(for reference)");
    sh.close().expect("close");
}
