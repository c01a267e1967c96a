//! A real ssh connection under a session (the `ssh` runtime: `ssh -T root@127.0.0.1` to this
//! host's test sshd; the `docker-ssh` runtime: docker's own ssh transport): what only a network
//! transport does.

use std::time::{Duration, Instant};

use boxshell::{Custom, Error, Runtime, Session, Stream};

use crate::ensure;
use crate::harness::{Fixture, cmdline, eventually, processes_in, tag};
use crate::{R, Test};

/// Tests of sessions over ssh to this host.
pub const SSH_TESTS: &[(&str, Test<Fixture>)] = &[
    ("a_dropped_connection_is_an_error_and_leaves_nothing", a_dropped_connection_is_an_error_and_leaves_nothing),
    ("a_noisy_login_changes_no_output", a_noisy_login_changes_no_output),
];

/// Tests of sessions through docker's ssh transport (`DOCKER_HOST=ssh://`).
pub const DOCKER_SSH_TESTS: &[(&str, Test<Fixture>)] = &[(
    "a_dropped_docker_connection_is_an_error_and_leaves_nothing",
    a_dropped_docker_connection_is_an_error_and_leaves_nothing,
)];

/// The parent PID and the name of host process `pid`.
fn parent_and_name(pid: u32) -> Option<(u32, String)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, tail) = stat.rsplit_once(") ")?;
    let name = head.split_once(" (")?.1.to_string();
    Some((tail.split_whitespace().nth(1)?.parse().ok()?, name))
}

/// The sshd process serving the connection `pid` runs under: its nearest sshd ancestor.
fn serving_sshd(pid: u32) -> Option<u32> {
    let mut at = pid;
    while at > 1 {
        let (parent, name) = parent_and_name(at)?;
        if name == "sshd" && at != pid {
            return Some(at);
        }
        at = parent;
    }
    None
}

/// Runs `echo started; sleep T; echo never` in `sh` and, once it has started, drops its
/// connection with `drop` (given T): the command must end within seconds with
/// `Error::Disconnected`, whose runtime, target, message and output come back. T names the
/// command's `sleep`, to look for what is left of it.
fn dropped_mid_command(
    sh: &mut Session,
    drop: impl FnOnce(u64) -> R,
) -> Result<(u64, String, String, String, boxshell::Output), libtest_mimic::Failed> {
    let t = tag();
    let mut running = sh.cmd(format!("echo started; sleep {t}; echo never")).spawn()?;
    running.expect(Stream::Stdout, b"started\n", Duration::from_secs(10))?;
    drop(t)?;
    let dropped = Instant::now();
    match running.wait() {
        Err(Error::Disconnected { via, container, message, output }) => {
            ensure!(dropped.elapsed() < Duration::from_secs(10), "told after {:?}", dropped.elapsed());
            Ok((t, via.to_string(), container, message, *output))
        }
        other => Err(format!("want Disconnected, got {other:?}").into()),
    }
}

/// Sends `signal` to host process `pid`.
fn kill(signal: &str, pid: u32) -> R {
    let killed = std::process::Command::new("kill").args([signal, &pid.to_string()]).status()?;
    ensure!(killed.success(), "kill {signal} {pid}");
    Ok(())
}

/// sshd's process for this session killed mid-command: the command ends within seconds with
/// `Error::Disconnected`, holding what it printed and the client's words, and what it started on
/// the remote host is ended (through a new connection) by the time the session is closed.
fn a_dropped_connection_is_an_error_and_leaves_nothing(fx: &Fixture) -> R {
    let mut sh = fx.session();
    let (t, via, container, message, output) = dropped_mid_command(&mut sh, |t| {
        let sleeper = fx.wait_present(&format!("sleep {t}"));
        let pid: u32 = sleeper.first().and_then(|l| l.split_whitespace().next()?.parse().ok()).ok_or("no sleep")?;
        kill("-KILL", serving_sshd(pid).ok_or(format!("no sshd above the command's process {pid}"))?)
    })?;
    ensure!(via.contains("ssh") && container == fx.container, "{via} {container}");
    ensure!(message.contains("closed"), "the client's words: {message:?}");
    // Nothing came after what expect took; stderr holds only the client's words.
    let said = String::from_utf8_lossy(&output.stderr);
    ensure!(output.stdout.is_empty() && said.trim() == message, "{output:?}");
    ensure!(!sh.is_alive(), "the session outlived its connection");
    sh.close()?;
    let left = fx.wait_gone(&format!("sleep {t}"));
    ensure!(left.is_empty(), "left running on the remote host: {left:?}");
    Ok(())
}

/// The host processes whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    let out = std::process::Command::new("pgrep").args(["-P", &pid.to_string()]).output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// The ssh transport under a session's docker client ended mid-command (as a dropped network
/// ends it: ssh exits 255): the command ends within seconds with `Error::Disconnected`, and
/// what it started in the container is ended (through a new connection) by the time the
/// session is closed.
fn a_dropped_docker_connection_is_an_error_and_leaves_nothing(fx: &Fixture) -> R {
    let fresh = fx.fresh();
    let mut sh = fx.builder_for(&fresh.name).open()?;
    let (t, via, container, message, output) = dropped_mid_command(&mut sh, |_| {
        // The session's client is this process's child (`docker exec -i NAME ...`); its ssh
        // transport, the client's child.
        let clients: Vec<u32> = children(std::process::id())
            .into_iter()
            .filter(|&p| cmdline(p).split(' ').any(|word| word == fresh.name) && cmdline(p).contains(" exec "))
            .collect();
        let transports: Vec<u32> =
            clients.iter().flat_map(|&c| children(c)).filter(|&p| cmdline(p).starts_with("ssh ")).collect();
        ensure!(!transports.is_empty(), "no ssh under the session's client {clients:?}");
        transports.into_iter().try_for_each(|pid| kill("-TERM", pid))
    })?;
    ensure!(via.contains("docker") && container == fresh.name, "{via} {container}");
    ensure!(message.contains("exit status 255"), "the client's words: {message:?}");
    ensure!(output.stdout.is_empty() && output.exit_code == 1, "{output:?}");
    ensure!(!sh.is_alive(), "the session outlived its connection");
    ensure!(matches!(sh.exec("true"), Err(Error::ShellExited { .. })), "a later command");
    sh.close()?;
    let needle = format!("sleep {t}");
    ensure!(
        eventually(|| processes_in(&fx.engine, &fresh.name, &needle).is_empty()),
        "left running in the container: {:?}",
        processes_in(&fx.engine, &fresh.name, &needle)
    );
    Ok(())
}

/// A login that prints on both streams before every command it runs (a banner, an rc file's
/// complaints, as pyenv's rehash racing itself printed): the session's output, stdin fed by a
/// second exec, a background process's output and a terminal's stay exact.
fn a_noisy_login_changes_no_output(fx: &Fixture) -> R {
    let noise = ["echo Welcome;", "echo ready;", "echo 'rc: complaint' >&2;"];
    let plain = ["-T", "{target}"].into_iter().chain(noise);
    let terminal = ["-q", "-tt", "{target}"].into_iter().chain(noise);
    let noisy = Runtime::Custom(Custom::new("ssh", plain).terminal(terminal).remote_shell());
    let mut sh = Session::builder(&fx.container).runtime(noisy).timeout(Duration::from_secs(30)).open()?;
    let out = sh.exec("echo out; echo err >&2")?;
    ensure!((out.stdout.as_slice(), out.stderr.as_slice()) == (b"out\n", b"err\n"), "{out:?}");
    // More than fits in the command line: through a feeder.
    let input = vec![b'x'; 100_000];
    let out = sh.cmd("wc -c").stdin(input).run()?;
    ensure!(out.stdout_str().trim() == "100000" && out.stderr.is_empty(), "stdin: {out:?}");
    let mut running = sh.cmd("cat").interactive().spawn()?;
    running.write_stdin(b"typed\n")?;
    running.expect(Stream::Stdout, b"typed\n", Duration::from_secs(10))?;
    running.close_stdin()?;
    let out = running.wait()?;
    ensure!(out.stderr.is_empty() && out.exit_code == 0, "interactive: {out:?}");
    let p = sh.cmd("echo bg-out; echo bg-err >&2").background()?;
    ensure!(p.wait(Duration::from_secs(20)) == Some(0), "background: {:?}", p.wait(Duration::ZERO));
    let logs = p.logs(None);
    ensure!((logs.stdout.as_slice(), logs.stderr.as_slice()) == (b"bg-out\n", b"bg-err\n"), "background: {logs:?}");
    let out = sh.cmd("echo on-tty").terminal(80, 24).run()?;
    ensure!(out.stdout == b"on-tty\r\n" && out.exit_code == 0, "terminal: {out:?}");
    // Aborts signal through a second exec, whose answer follows the login's lines.
    let out = sh.cmd("echo started; sleep 100").timeout(Duration::from_secs(1)).run()?;
    ensure!(out.timed_out && out.stdout == b"started\n" && out.stderr.is_empty(), "timeout: {out:?}");
    ensure!(sh.exec("echo next")?.stdout == b"next\n", "after the timeout");
    sh.close()?;
    Ok(())
}
