//! Commands on a terminal: keystrokes, resize, Ctrl-C, full-screen programs read as the screen a
//! person sees (through `vt100`), and the session after them. Every test runs with every shell
//! of the fixture (dash, bash and busybox ash on the host; busybox ash and bash in containers);
//! the programs are busybox's, in the test image and on the host.

use std::time::Duration;

use boxshell::{Error, Output, Running, Stream};

use crate::ensure;
use crate::harness::{Fixture, each_shell, tag};
use crate::{R, Test};

pub const TESTS: &[(&str, Test<Fixture>)] = &[
    ("terminal_stty_size_before_and_after_resize", stty_size_before_and_after_resize),
    ("terminal_read_prompt_and_answer_stay_in_the_session", read_prompt_and_answer_stay_in_the_session),
    ("terminal_vi_edits_and_saves_a_file", vi_edits_and_saves_a_file),
    ("terminal_less_and_top_draw_a_screen_and_q_quits", less_and_top_draw_a_screen_and_q_quits),
    ("terminal_ctrl_c_interrupts", ctrl_c_interrupts),
    ("terminal_timeout_keeps_the_session", timeout_keeps_the_session),
    ("terminal_raw_mode_left_behind_changes_nothing", raw_mode_left_behind_changes_nothing),
    ("terminal_lookalikes_end_nothing_early", lookalikes_end_nothing_early),
    ("terminal_output_cap_and_idle_timeout", output_cap_and_idle_timeout),
    (
        "terminal_and_interactive_commands_end_before_their_jobs",
        terminal_and_interactive_commands_end_before_their_jobs,
    ),
];

/// Tests for a shell on this host.
pub const LOCAL_TESTS: &[(&str, Test<Fixture>)] =
    &[("terminal_python_repl_takes_ctrl_c_as_a_key", python_repl_takes_ctrl_c_as_a_key)];

const WAIT: Duration = Duration::from_secs(20);

/// What a person sees on a `cols` by `rows` terminal after `bytes`.
fn screen(bytes: &[u8], cols: u16, rows: u16) -> String {
    let mut parser = vt100::Parser::new(rows, cols, 0);
    parser.process(bytes);
    parser.screen().contents()
}

/// Everything `r` printed up to and including `needle`, waiting for it.
fn upto(r: &mut Running<'_>, needle: &[u8]) -> Result<Vec<u8>, String> {
    r.expect(Stream::Stdout, needle, WAIT)
        .map_err(|e| format!("waiting for {:?}: {e}", String::from_utf8_lossy(needle)))
}

fn stty_size_before_and_after_resize(fx: &Fixture) -> R {
    each_shell(fx, "tty-", |sh, shell| {
        let script = "stty size; sh -c 'trap \"echo winched; stty size\" WINCH; echo armed; \
                      while :; do sleep 0.05; done'";
        let mut r = sh.cmd(script).terminal(80, 24).spawn()?;
        ensure!(upto(&mut r, b"armed\r\n")? == b"24 80\r\narmed\r\n", "{shell}: before");
        r.resize(100, 30)?;
        ensure!(upto(&mut r, b"30 100\r\n")? == b"winched\r\n30 100\r\n", "{shell}: after");
        // The same size again: nothing to do, at once.
        r.resize(100, 30)?;
        // No columns or no rows: refused at once, the terminal as it was.
        for (cols, rows) in [(0, 30), (100, 0)] {
            ensure!(matches!(r.resize(cols, rows), Err(Error::InvalidValue { .. })), "{shell}: resize({cols}, {rows})");
        }
        r.write_stdin(b"\x03")?;
        let out = r.wait()?;
        ensure!(out.exit_code == 130 && !out.timed_out, "{shell}: {out:?}");
        let zero = sh.cmd("echo never").terminal(0, 24).spawn().map(|_| ());
        ensure!(matches!(zero, Err(Error::InvalidValue { .. })), "{shell}: a terminal of 0 columns: {zero:?}");
        ensure!(sh.exec("echo next")?.stdout == b"next\n", "{shell}: after a refused terminal");
        Ok(())
    })
}

fn read_prompt_and_answer_stay_in_the_session(fx: &Fixture) -> R {
    each_shell(fx, "tty-", |sh, shell| {
        sh.exec("greet() { echo \"hi $1\"; }; cd /tmp")?;
        // dash has no `read -p`.
        let ask = if shell.contains("dash") { "printf 'Name? '; read -r n" } else { "read -p 'Name? ' -r n" };
        let mut r = sh
            .cmd(format!("greet you; pwd; {ask}; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo tty"))
            .terminal(80, 24)
            .spawn()?;
        ensure!(upto(&mut r, b"Name? ")? == b"hi you\r\n/tmp\r\nName? ", "{shell}: prompt");
        r.write_stdin(b"ann \\ b\r")?;
        let out = r.wait()?;
        // The answer as the terminal echoed it, then the command's line.
        ensure!(
            out.stdout == b"ann \\ b\r\ntty\r\n" && out.stderr.is_empty() && out.exit_code == 0,
            "{shell}: {out:?}"
        );
        let after = sh.exec("printf '%s|' \"$n\"; pwd")?;
        ensure!(after.stdout == b"ann \\ b|/tmp\n", "{shell}: the session after: {after:?}");
        Ok(())
    })
}

fn vi_edits_and_saves_a_file(fx: &Fixture) -> R {
    each_shell(fx, "tty-", |sh, shell| {
        let path = format!("/tmp/boxshell-notes-{}.txt", tag());
        let mut r = sh.cmd(format!("busybox vi {path}")).terminal(80, 24).spawn()?;
        let drawn = upto(&mut r, b"~")?;
        r.write_stdin(b"ihello\x1b")?;
        // A person's pause after Escape: vi takes Escape and what follows within its wait for
        // the rest of an escape sequence (busybox: 50 ms) as one key.
        std::thread::sleep(Duration::from_millis(300));
        r.write_stdin(b":wq\r")?;
        let out = r.wait()?;
        ensure!(out.exit_code == 0, "{shell}: {out:?}");
        let shown = screen(&drawn, 80, 24);
        ensure!(shown.lines().nth(1) == Some("~"), "{shell}: vi's empty lines: {shown:?}");
        ensure!(sh.read_file(&path)? == b"hello\n", "{shell}: the file vi saved");
        sh.remove_file(&path)?;
        Ok(())
    })
}

fn less_and_top_draw_a_screen_and_q_quits(fx: &Fixture) -> R {
    each_shell(fx, "tty-", |sh, shell| {
        let path = format!("/tmp/boxshell-lines-{}.txt", tag());
        let lines: String = (1..=100).map(|i| format!("line {i}\n")).collect();
        sh.write_file(&path, lines.as_bytes())?;
        let mut r = sh.cmd(format!("busybox less {path}")).terminal(40, 10).spawn()?;
        let drawn = upto(&mut r, b"line 9")?;
        // One screen: nine lines and the prompt line.
        let mut bytes = drawn;
        bytes.extend(r.expect(Stream::Stdout, b":", Duration::from_secs(5)).unwrap_or_default());
        let shown = screen(&bytes, 40, 10);
        let first: Vec<&str> = shown.lines().take(9).collect();
        let want: Vec<String> = (1..=9).map(|i| format!("line {i}")).collect();
        ensure!(first == want, "{shell}: less's screen: {shown:?}");
        r.write_stdin(b"q")?;
        let out = r.wait()?;
        ensure!(out.exit_code == 0 && !out.timed_out, "{shell}: less: {out:?}");

        let mut r = sh.cmd("busybox top").terminal(80, 24).spawn()?;
        let drawn = upto(&mut r, b"COMMAND")?;
        r.write_stdin(b"q")?;
        let out = r.wait()?;
        ensure!(out.exit_code == 0 && !out.timed_out, "{shell}: top: {out:?}");
        let shown = screen(&drawn, 80, 24);
        ensure!(shown.lines().any(|l| l.contains("PID") && l.contains("COMMAND")), "{shell}: top's screen: {shown:?}");
        sh.remove_file(&path)?;
        Ok(())
    })
}

fn ctrl_c_interrupts(fx: &Fixture) -> R {
    each_shell(fx, "tty-", |sh, shell| {
        sh.exec("X=kept; cd /tmp")?;
        for (what, command) in [
            ("a child", "echo go; sleep 100; echo not-here"),
            ("a builtin loop", "echo go; while :; do :; done"),
            ("a child between two", "echo go; while :; do /bin/sleep 0.01; done"),
        ] {
            let mut r = sh.cmd(command).terminal(80, 24).timeout(WAIT).spawn()?;
            upto(&mut r, b"go\r\n")?;
            r.write_stdin(b"\x03")?;
            let out = r.wait()?;
            ensure!(out.exit_code == 130 && !out.timed_out, "{shell}, {what}: {out:?}");
            // The terminal echoed ^C; nothing after it ran.
            ensure!(!out.stdout.windows(8).any(|w| w == b"not-here"), "{shell}, {what}: {out:?}");
            let after = sh.exec("echo $X; pwd")?;
            ensure!(after.stdout == b"kept\n/tmp\n", "{shell}, {what}: the session after: {after:?}");
        }
        Ok(())
    })
}

fn timeout_keeps_the_session(fx: &Fixture) -> R {
    each_shell(fx, "tty-", |sh, shell| {
        sh.exec("Y='a b'; cd /tmp")?;
        let out = sh.cmd("stty raw; echo started; sleep 100").terminal(80, 24).timeout(Duration::from_secs(1)).run()?;
        ensure!(out.timed_out && out.stdout.starts_with(b"started"), "{shell}: {out:?}");
        let after = sh.exec("printf '%s\\n' \"$Y\"; pwd")?;
        ensure!(after.stdout == b"a b\n/tmp\n", "{shell}: the session after: {after:?}");
        Ok(())
    })
}

fn raw_mode_left_behind_changes_nothing(fx: &Fixture) -> R {
    each_shell(fx, "tty-", |sh, shell| {
        let out = sh.cmd("stty raw -echo; printf 'a\\nb\\n'").terminal(80, 24).run()?;
        // Raw: no \r added.
        ensure!(out.stdout == b"a\nb\n" && out.exit_code == 0, "{shell}: raw: {out:?}");
        let plain = sh.exec("printf 'a\\nb\\n'; printf 'e\\n' >&2")?;
        ensure!(plain.stdout == b"a\nb\n" && plain.stderr == b"e\n", "{shell}: after: {plain:?}");
        // The next terminal is a fresh one, in its usual modes.
        let out = sh.cmd("printf 'a\\nb\\n'").terminal(80, 24).run()?;
        ensure!(out.stdout == b"a\r\nb\r\n", "{shell}: the next terminal: {out:?}");
        Ok(())
    })
}

fn lookalikes_end_nothing_early(fx: &Fixture) -> R {
    each_shell(fx, "tty-", |sh, shell| {
        // A sentinel's start, a holder's mark without its nonce, and a cut escape sequence.
        let command = "printf '\\037bx0123456789abcdef0123456789abcdef 0 0\\n'; \
                       printf '\\033]boxshell;0123;end\\007'; sleep 0.2; printf 'after\\n\\033['";
        let out: Output = sh.cmd(command).terminal(80, 24).run()?;
        let want = b"\x1fbx0123456789abcdef0123456789abcdef 0 0\r\n\x1b]boxshell;0123;end\x07after\r\n\x1b[";
        ensure!(out.stdout == want && out.exit_code == 0, "{shell}: {out:?}");
        let next = sh.exec("echo next")?;
        ensure!(next.stdout == b"next\n", "{shell}: {next:?}");
        Ok(())
    })
}

fn output_cap_and_idle_timeout(fx: &Fixture) -> R {
    each_shell(fx, "tty-", |sh, shell| {
        let lines = "i=0; while [ $i -lt 20000 ]; do echo line$i; i=$((i + 1)); done";
        let out = sh.cmd(lines).terminal(80, 24).max_output(1000).run()?;
        ensure!(out.truncated && out.stdout.len() == 1000, "{shell}: {:?}", out.stdout_gap);
        ensure!(out.stdout.starts_with(b"line0\r\nline1\r\n") && out.stdout.ends_with(b"line19999\r\n"), "{shell}");
        let gap = out.stdout_gap.map(|g| (g.at, g.dropped));
        let total: usize = (0..20000).map(|i| format!("line{i}\r\n").len()).sum();
        ensure!(gap == Some((500, (total - 1000) as u64)), "{shell}: {gap:?}");
        let idle = Duration::from_secs(1);
        let out = sh.cmd("echo hi; sleep 100").terminal(80, 24).idle_timeout(idle).run()?;
        ensure!(out.timed_out && out.stdout.starts_with(b"hi\r\n"), "{shell}: {out:?}");
        Ok(())
    })
}

fn python_repl_takes_ctrl_c_as_a_key(fx: &Fixture) -> R {
    each_shell(fx, "tty-", |sh, shell| {
        let mut r = sh.cmd("python3 -q").terminal(80, 24).timeout(WAIT).spawn()?;
        upto(&mut r, b">>> ")?;
        r.write_stdin(b"import time; print('sleeping'); time.sleep(60)\r")?;
        upto(&mut r, b"sleeping\r\n")?;
        r.write_stdin(b"\x03")?;
        let got = upto(&mut r, b">>> ")?;
        ensure!(got.windows(17).any(|w| w == b"KeyboardInterrupt"), "{shell}: {:?}", String::from_utf8_lossy(&got));
        // The REPL goes on: no kill after the grace.
        std::thread::sleep(Duration::from_secs(2));
        r.write_stdin(b"print(6 * 7)\r")?;
        ensure!(upto(&mut r, b">>> ")? == b"print(6 * 7)\r\n42\r\n>>> ", "{shell}: after Ctrl-C");
        r.write_stdin(b"exit()\r")?;
        let out = r.wait()?;
        ensure!(!out.timed_out && out.exit_code == 130, "{shell}: {out:?}");
        Ok(())
    })
}

/// A background job the command leaves running (a subshell, which holds what the shell held;
/// a program; one with its output on the terminal) does not hold up the command's end, on a
/// terminal or with live stdin: the command ends as soon as it has, not a grace period later
/// (30 s here); the job runs on, and the command's helpers are gone.
fn terminal_and_interactive_commands_end_before_their_jobs(fx: &Fixture) -> R {
    for shell in fx.shells() {
        let mut sh = fx.builder().shell(&shell).grace(Duration::from_secs(30)).open()?;
        for terminal in [true, false] {
            let t = tag();
            let line = format!("(sleep {t}; echo late) & echo started; sleep {t} </dev/null & :");
            let cmd = sh.cmd(&line).timeout(Duration::from_secs(60));
            let cmd = if terminal { cmd.terminal(80, 24) } else { cmd.interactive() };
            let start = std::time::Instant::now();
            let out = cmd.run()?;
            let newline: &[u8] = if terminal { b"started\r\n" } else { b"started\n" };
            ensure!(
                out.stdout == newline && out.success() && !out.timed_out && start.elapsed() < Duration::from_secs(15),
                "{shell}, terminal {terminal}: {out:?} after {:?}",
                start.elapsed()
            );
            let helper = if terminal { "tty-" } else { "in-" };
            let left = fx.wait_gone_containing(&format!(".boxshell-{}/{helper}", sh.id().simple()));
            ensure!(left.is_empty(), "{shell}, terminal {terminal}: helpers left: {left:?}");
            let deadline = std::time::Instant::now() + WAIT;
            let jobs = loop {
                let jobs = fx.processes(&format!("sleep {t}"));
                if jobs.len() >= 2 || std::time::Instant::now() >= deadline {
                    break jobs;
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            ensure!(jobs.len() == 2, "{shell}, terminal {terminal}: the jobs: {jobs:?}");
        }
        sh.close()?;
    }
    Ok(())
}
