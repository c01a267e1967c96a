//! Interrupt means abort: a timeout, an idle timeout or an interrupt ends the whole command as
//! Ctrl-C ends a command line at a prompt, and the session goes on with its state. Every test
//! runs on every shell of the fixture (dash, bash and busybox ash on the host; busybox ash and
//! bash in containers), and checks afterwards that nothing of the aborted command is left
//! running and that a background job of an earlier command still is.

use std::time::{Duration, Instant};

use boxshell::{Error, Output, Session, Stream};

use crate::ensure;
use crate::harness::{Fixture, tag};
use crate::{R, Test};

pub const TESTS: &[(&str, Test<Fixture>)] = &[
    ("timeout_aborts_the_whole_command", timeout_aborts_the_whole_command),
    ("every_interrupt_handle_aborts", every_interrupt_handle_aborts),
    ("child_ignoring_sigint_is_killed_and_the_rest_aborted", child_ignoring_sigint_is_killed_and_the_rest_aborted),
    ("shell_ignoring_sigint_is_ended_and_reported", shell_ignoring_sigint_is_ended_and_reported),
    ("idle_timeout_aborts_a_silent_command", idle_timeout_aborts_a_silent_command),
    ("abort_races_the_end_of_the_command", abort_races_the_end_of_the_command),
    ("interactive_mode_leaves_no_trace", interactive_mode_leaves_no_trace),
];

/// On the host only: the local shell inherits this process's signal dispositions.
pub const LOCAL_TESTS: &[(&str, Test<Fixture>)] =
    &[("abort_in_a_process_that_ignores_sigint", abort_in_a_process_that_ignores_sigint)];

/// A session in `shell`, with state set up to be checked after each abort, and a background
/// job of its own (`sleep BG`).
struct Stateful {
    sh: Session,
    shell: String,
    background: u64,
}

impl Stateful {
    fn open(fx: &Fixture, shell: &str) -> Result<Stateful, libtest_mimic::Failed> {
        let mut sh = fx.builder().shell(shell).grace(Duration::from_secs(1)).open()?;
        let background = tag();
        let setup = format!(
            "cd /tmp && export EXPORTED='a b' && SHELLVAR=c && greet() {{ printf 'hi %s' \"$1\"; }} && alias ll='printf aliased' && set -u; sleep {background} &"
        );
        let out = sh.exec(&setup)?;
        ensure!(out.success(), "{shell}: setup failed: {out:?}");
        ensure!(!fx.wait_present(&format!("sleep {background}")).is_empty(), "{shell}: no background job");
        Ok(Stateful { sh, shell: shell.to_string(), background })
    }

    /// After an abort: the command's own processes (`sleep T` for each of `tags`) are gone,
    /// the background job runs, and the shell has kept its state.
    fn check_after(&mut self, fx: &Fixture, what: &str, tags: &[u64]) -> R {
        let shell = &self.shell;
        for t in tags {
            let left = fx.wait_gone(&format!("sleep {t}"));
            ensure!(left.is_empty(), "{shell}: `{what}` left running: {left:?}");
        }
        let bg = fx.processes(&format!("sleep {}", self.background));
        ensure!(bg.len() == 1, "{shell}: after `{what}` the earlier background job is {bg:?}");
        let out = self.sh.exec("printf '%s|%s|%s|' \"$PWD\" \"$EXPORTED\" \"$SHELLVAR\"; greet you; ll; case $- in *u*) echo '|nounset';; esac")?;
        ensure!(
            out.stdout == b"/tmp|a b|c|hi youaliased|nounset\n" && out.stderr.is_empty() && out.exit_code == 0,
            "{shell}: state after `{what}`: {out:?}"
        );
        Ok(())
    }

    fn close(self, fx: &Fixture) -> R {
        let (shell, background) = (self.shell.clone(), self.background);
        self.sh.close()?;
        ensure!(fx.wait_gone(&format!("sleep {background}")).is_empty(), "{shell}: close left the background job");
        Ok(())
    }
}

/// Checks the result of an aborted command: `stdout` exactly, exit code 130, `timed_out` as
/// given.
fn aborted(shell: &str, what: &str, out: &Output, stdout: &[u8], timed_out: bool) -> R {
    ensure!(
        out.stdout == stdout && out.exit_code == 130 && out.timed_out == timed_out,
        "{shell}: `{what}` gave {out:?}, want stdout {:?}, exit 130, timed_out {timed_out}",
        String::from_utf8_lossy(stdout)
    );
    Ok(())
}

fn timeout_aborts_the_whole_command(fx: &Fixture) -> R {
    for shell in fx.shells() {
        let mut s = Stateful::open(fx, &shell)?;
        let (t1, t2) = (tag(), tag());
        // (command, what it prints before it is aborted, the tags of its sleeps)
        let cases: Vec<(String, &[u8], Vec<u64>)> = vec![
            (format!("echo a; sleep {t1}; echo after"), b"a\n", vec![t1]),
            (format!("true && sleep {t1} && echo and || echo or; echo after"), b"", vec![t1]),
            (format!("for i in 1 2 3 4 5 6; do echo $i; sleep {t1}; done; echo after"), b"1\n", vec![t1]),
            ("i=0; while :; do i=$((i+1)); done; echo after".into(), b"", vec![]),
            (format!("f() {{ echo in-f; sleep {t1}; echo still-in-f; }}; f; echo after"), b"in-f\n", vec![t1]),
            (format!("(echo sub; sleep {t1}; echo still-sub); echo after"), b"sub\n", vec![t1]),
            (format!("sleep {t1} | cat; echo after"), b"", vec![t1]),
            (format!("sleep {t1} & sleep {t2} & wait; echo after"), b"", vec![t1, t2]),
            (format!("echo multi\nsleep {t1}\necho line-3"), b"multi\n", vec![t1]),
        ];
        for (command, printed, tags) in cases {
            let start = Instant::now();
            let out = s.sh.cmd(&command).timeout(Duration::from_millis(500)).run()?;
            ensure!(start.elapsed() < fx.bound(8), "{shell}: `{command}` took {:?}", start.elapsed());
            aborted(&shell, &command, &out, printed, true)?;
            s.check_after(fx, &command, &tags)?;
        }
        s.close(fx)?;
    }
    Ok(())
}

fn every_interrupt_handle_aborts(fx: &Fixture) -> R {
    for shell in fx.shells() {
        let mut s = Stateful::open(fx, &shell)?;
        // An interrupter from another thread, while `exec` waits.
        for kill in [false, true] {
            let t = tag();
            let stop = s.sh.interrupter();
            let thread = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(500));
                if kill { stop.kill() } else { stop.interrupt() }
            });
            let command = format!("echo go; sleep {t}; echo never");
            let out = s.sh.exec(&command)?;
            thread.join().expect("interrupter thread")?;
            aborted(&shell, &command, &out, b"go\n", false)?;
            s.check_after(fx, &command, &[t])?;
        }
        // A running command's own handle.
        for kill in [false, true] {
            let t = tag();
            let command = format!("echo go; for i in 1 2; do sleep {t}; done; echo never");
            let running = s.sh.spawn(&command)?;
            std::thread::sleep(Duration::from_millis(500));
            if kill {
                running.kill()?
            } else {
                running.interrupt()?
            }
            let out = running.wait()?;
            aborted(&shell, &command, &out, b"go\n", false)?;
            s.check_after(fx, &command, &[t])?;
        }
        // A loop of built-ins has no process to kill: the shell's SIGINT alone ends it.
        let mut running = s.sh.spawn("echo go; while :; do :; done; echo never")?;
        // Once the loop runs (on a loaded machine the shell may not have read the command
        // after a fixed pause), consuming nothing of what it printed.
        running.expect_with(Stream::Stdout, Duration::from_secs(20), |seen| seen.starts_with(b"go\n").then_some(0))?;
        std::thread::sleep(Duration::from_millis(100));
        running.kill()?;
        let out = running.wait()?;
        aborted(&shell, "a killed loop of built-ins", &out, b"go\n", false)?;
        s.check_after(fx, "a killed loop of built-ins", &[])?;
        // A command started with `send`.
        let t = tag();
        let command = format!("echo go; sleep {t}; echo never");
        s.sh.send(&command)?;
        std::thread::sleep(Duration::from_millis(500));
        s.sh.interrupt()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut stdout = Vec::new();
        loop {
            let unread = s.sh.read()?;
            stdout.extend(unread.stdout);
            if !unread.busy || Instant::now() > deadline {
                ensure!(!unread.busy, "{shell}: the sent command did not end");
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        ensure!(stdout == b"go\n", "{shell}: sent command printed {:?}", String::from_utf8_lossy(&stdout));
        s.check_after(fx, &command, &[t])?;
        // Interrupting when nothing runs does nothing.
        s.sh.interrupter().interrupt()?;
        s.check_after(fx, "an interrupt with nothing running", &[])?;
        s.close(fx)?;
    }
    Ok(())
}

fn child_ignoring_sigint_is_killed_and_the_rest_aborted(fx: &Fixture) -> R {
    for shell in fx.shells() {
        let mut s = Stateful::open(fx, &shell)?;
        let t = tag();
        // bash takes a child killed by SIGKILL to have handled the interrupt and would go on.
        let command = format!("echo go; sh -c 'trap \"\" INT; sleep {t}'; echo after");
        let start = Instant::now();
        let out = s.sh.cmd(&command).timeout(Duration::from_millis(500)).run()?;
        ensure!(start.elapsed() < fx.bound(8), "{shell}: took {:?}", start.elapsed());
        ensure!(!out.stdout_str().contains("after"), "{shell}: the rest ran: {out:?}");
        aborted(&shell, &command, &out, b"go\n", true)?;
        s.check_after(fx, &command, &[t])?;
        s.close(fx)?;
    }
    Ok(())
}

fn shell_ignoring_sigint_is_ended_and_reported(fx: &Fixture) -> R {
    for shell in fx.shells() {
        let mut sh = fx.builder().shell(&shell).grace(Duration::from_millis(300)).open()?;
        let pid = sh.pid();
        let start = Instant::now();
        // The shell itself ignores SIGINT and loops in built-ins: it cannot be recovered.
        let out = sh.cmd("trap '' INT; echo looping; while :; do :; done").timeout(Duration::from_millis(500)).run()?;
        ensure!(start.elapsed() < fx.bound(10), "{shell}: took {:?}", start.elapsed());
        ensure!(out.timed_out && out.stdout == b"looping\n", "{shell}: {out:?}");
        ensure!(!sh.is_alive(), "{shell}: alive");
        match sh.exec("echo again") {
            Err(Error::ShellExited { .. }) => {}
            other => return Err(format!("{shell}: expected ShellExited, got {other:?}").into()),
        }
        ensure!(!crate::harness::pid_exists(&fx.engine, &fx.container, pid), "{shell}: shell {pid} still runs");
    }
    Ok(())
}

fn idle_timeout_aborts_a_silent_command(fx: &Fixture) -> R {
    for shell in fx.shells() {
        let mut s = Stateful::open(fx, &shell)?;
        let t = tag();
        let command = format!("for i in 1 2 3; do echo $i; sleep 0.3; done; echo quiet >&2; sleep {t}; echo never");
        let start = Instant::now();
        let out = s.sh.cmd(&command).idle_timeout(Duration::from_secs(2)).run()?;
        let took = start.elapsed();
        ensure!(out.stderr == b"quiet\n", "{shell}: {out:?}");
        aborted(&shell, &command, &out, b"1\n2\n3\n", true)?;
        // Printing for ~0.9 s, then silent: aborted 2 s after the last output.
        ensure!(took >= Duration::from_millis(2500) && took < fx.bound(10), "{shell}: took {took:?}");
        s.check_after(fx, &command, &[t])?;
        // Output on either stream keeps a command going past its idle timeout.
        let out =
            s.sh.cmd("i=0; while [ $i -lt 10 ]; do echo $i >&2; sleep 0.3; i=$((i+1)); done; echo done")
                .idle_timeout(Duration::from_secs(2))
                .run()?;
        ensure!(out.success() && out.stdout == b"done\n", "{shell}: a busy command was aborted: {out:?}");
        s.close(fx)?;
        // The session's default.
        let mut sh = fx.builder().shell(&shell).idle_timeout(Duration::from_secs(1)).open()?;
        let t = tag();
        let out = sh.exec(&format!("echo start; sleep {t}; echo never"))?;
        aborted(&shell, "a silent command under the session's idle timeout", &out, b"start\n", true)?;
        ensure!(fx.wait_gone(&format!("sleep {t}")).is_empty(), "{shell}: left running");
        ensure!(sh.exec("echo next")?.stdout == b"next\n", "{shell}: not in step");
        sh.close()?;
    }
    Ok(())
}

fn abort_races_the_end_of_the_command(fx: &Fixture) -> R {
    // Interrupts that land as the command ends, or after: the next commands must see only
    // their own output, never a sentinel line of the interrupted one.
    for shell in fx.shells() {
        let mut sh = fx.builder().shell(&shell).open()?;
        let stop = sh.interrupter();
        for i in 0..20u32 {
            let delay = Duration::from_millis(u64::from(i % 10) * 15);
            let stop = stop.clone();
            let thread = std::thread::spawn(move || {
                std::thread::sleep(delay);
                stop.interrupt()
            });
            let out = sh.exec("echo out; echo err >&2; sleep 0.07")?;
            thread.join().expect("interrupter thread")?;
            let clean = (out.stdout == b"out\n" && out.stderr == b"err\n" && [0, 130].contains(&out.exit_code))
                || (out.exit_code == 130 && b"out\n".starts_with(&out.stdout) && b"err\n".starts_with(&out.stderr));
            ensure!(clean, "{shell}: round {i}: {out:?}");
            let next = sh.exec("echo next; echo next-err >&2")?;
            ensure!(
                next.stdout == b"next\n" && next.stderr == b"next-err\n" && next.exit_code == 0,
                "{shell}: round {i}, the next command: {next:?}"
            );
        }
        let unread = sh.read()?;
        ensure!(unread.stdout.is_empty() && unread.stderr.is_empty(), "{shell}: stray output {unread:?}");
        sh.close()?;
    }
    Ok(())
}

fn interactive_mode_leaves_no_trace(fx: &Fixture) -> R {
    for shell in fx.shells() {
        let mut sh = fx.builder().shell(&shell).open()?;
        // No job notices, no history expansion, no prompt, no history file.
        let out = sh.exec("sleep 0.1 & wait; echo 'it!s' hi!there; echo \"[$PS1][${HISTFILE-unset}]\"")?;
        ensure!(out.stdout == b"it!s hi!there\n[][unset]\n" && out.stderr.is_empty(), "{shell}: {out:?}");
        // A child killed by a signal other than SIGINT: the shell's own word, no tty noise.
        let out = sh.exec("sh -c 'kill -TERM $$'; echo $?")?;
        ensure!(out.stdout == b"143\n", "{shell}: {out:?}");
        ensure!(!out.stderr_str().contains("tty") && !out.stderr_str().contains("tcsetattr"), "{shell}: {out:?}");
        // A command reading its stdin gets EOF.
        let out = sh.exec("cat; echo eof")?;
        ensure!(out.stdout == b"eof\n", "{shell}: {out:?}");
        sh.close()?;
        // ssh hands the client's environment to no remote shell.
        if fx.runtime.manages_containers() || !(fx.in_container() || fx.ssh_to_host()) {
            // An interactive shell sources $ENV: not in a session, and $ENV keeps its value.
            let flag = format!("/tmp/boxshell-env-sourced-{}", tag());
            let script = format!("/tmp/boxshell-env-{}", tag());
            let mut writer = fx.builder().open()?;
            writer.write_file(&script, format!("touch {flag}\n").as_bytes())?;
            let builder = if fx.in_container() {
                fx.builder().exec_args(["-e", &format!("ENV={script}")])
            } else {
                fx.builder().runtime(fx.session_engine().env("ENV", &script))
            };
            let mut sh = builder.shell(&shell).open()?;
            let out = sh.exec(&format!("echo \"$ENV\"; [ -e {flag} ] && echo sourced"))?;
            ensure!(out.stdout == format!("{script}\n").as_bytes(), "{shell}: {out:?}");
            sh.close()?;
            writer.exec(&format!("rm -f {script} {flag}"))?.check()?;
        }
    }
    Ok(())
}

/// Tests that need a container of their own, on docker and podman.
pub const ENGINE_TESTS: &[(&str, Test<Fixture>)] =
    &[("abort_finds_the_command_after_pids_wrap", abort_finds_the_command_after_pids_wrap)];

fn abort_finds_the_command_after_pids_wrap(fx: &Fixture) -> R {
    // With CAP_SYS_ADMIN and /proc/sys writable, a container may set the next PID of its own
    // PID namespace: a background job gets a high PID and the command after it low ones, as
    // after PIDs wrapped at pid_max.
    let name = crate::harness::unique("boxshell-it-wrap");
    let image = crate::harness::image();
    let label = crate::harness::LABEL;
    let unmasked = ["--cap-add", "SYS_ADMIN", "--security-opt", "systempaths=unconfined"];
    let mut args = vec!["run", "-d", "--rm", "--init", "--label", label, "--name", &name];
    args.extend(unmasked);
    args.extend([image.as_str(), "sleep", "3600"]);
    crate::harness::engine(&fx.engine, &args);
    let _guard = crate::harness::Fresh { engine: fx.engine.clone(), name: name.clone() };
    for shell in fx.shells() {
        let mut sh = fx.builder_for(&name).shell(&shell).grace(Duration::from_millis(500)).open()?;
        let bg = tag();
        let out = sh.exec(&format!("echo 30000 >/proc/sys/kernel/ns_last_pid; sleep {bg} & echo $!"))?;
        let bg_pid: u32 = out.stdout_str().trim().parse().map_err(|e| format!("{shell}: {out:?}: {e}"))?;
        ensure!(bg_pid > 30000, "{shell}: background job got PID {bg_pid}");
        // As if PIDs wrapped at once: the next command's processes get low PIDs, and may start
        // in the clock tick in which the command before ended.
        sh.exec("echo 200 >/proc/sys/kernel/ns_last_pid")?.check()?;
        let t = tag();
        let command = format!("echo a; sleep {t}; echo after");
        let running = sh.spawn(&command)?;
        let fg = crate::harness::processes_in(&fx.engine, &name, &format!("sleep {t}"));
        let mut running = running;
        let out = match running.wait_timeout(Duration::from_millis(500))? {
            Some(out) => return Err(format!("{shell}: ended by itself: {out:?}").into()),
            None => {
                running.interrupt()?;
                running.wait()?
            }
        };
        ensure!(
            fg.iter().all(|l| l
                .split_whitespace()
                .next()
                .and_then(|p| p.parse::<u32>().ok())
                .is_some_and(|p| p < bg_pid)),
            "{shell}: the command's PIDs did not wrap below the background job's: {fg:?} vs {bg_pid}"
        );
        aborted(&shell, &command, &out, b"a\n", false)?;
        let left = crate::harness::processes_in(&fx.engine, &name, &format!("sleep {t}"));
        ensure!(left.is_empty(), "{shell}: left running: {left:?}");
        let bg_left = crate::harness::processes_in(&fx.engine, &name, &format!("sleep {bg}"));
        ensure!(bg_left.len() == 1, "{shell}: the background job: {bg_left:?}");
        ensure!(sh.exec("echo next")?.stdout == b"next\n", "{shell}: not in step");
        sh.close()?;
    }
    Ok(())
}

/// A program started in the background by a script ignores SIGINT; its local sessions still
/// abort whole commands. The helper (this binary, as `sh -c 'helper & wait'` starts it) checks
/// that it ignores SIGINT, then runs the command with a timeout in each shell.
fn abort_in_a_process_that_ignores_sigint(fx: &Fixture) -> R {
    for shell in fx.shells() {
        let t = tag();
        let helper = std::env::current_exe()?;
        let out = std::process::Command::new("sh")
            .args(["-c", "\"$0\" & wait $!"])
            .arg(&helper)
            .env("BOXSHELL_IT_HELPER", format!("abort-ignoring-sigint:{shell}:{t}"))
            .stdin(std::process::Stdio::null())
            .output()?;
        let said = String::from_utf8_lossy(&out.stdout);
        let want = "ignores SIGINT: true\nstdout \"a\\n\", exit 130, timed out true\n";
        ensure!(
            out.status.success() && said == want,
            "{shell}: the helper said {said:?} (want {want:?}), stderr {:?}",
            String::from_utf8_lossy(&out.stderr)
        );
        ensure!(fx.wait_gone(&format!("sleep {t}")).is_empty(), "{shell}: the aborted command left its sleep");
    }
    Ok(())
}

/// The helper of [`abort_in_a_process_that_ignores_sigint`]: `shell:tag`.
pub fn run_helper(args: &str) {
    let (shell, t) = args.split_once(':').expect("shell:tag");
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let mask = status.lines().find_map(|l| l.strip_prefix("SigIgn:")).expect("SigIgn");
    let ignored = u64::from_str_radix(mask.trim(), 16).expect("mask") & 2 != 0;
    println!("ignores SIGINT: {ignored}");
    let mut sh = Session::builder("-").runtime(boxshell::Runtime::Local).shell(shell).open().expect("open");
    let command = format!("echo a; sleep {t}; echo after");
    let out = sh.cmd(&command).timeout(Duration::from_millis(500)).run().expect("run");
    println!("stdout {:?}, exit {}, timed out {}", out.stdout_str(), out.exit_code, out.timed_out);
    sh.close().expect("close");
}
