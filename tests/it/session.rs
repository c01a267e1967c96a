//! The protocol rules of DESIGN.md and the `Session` surface, on every runtime.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use boxshell::{Error, Event, Runtime, Session, State, Stream, Via};
use libtest_mimic::Failed;

use crate::ensure;
use crate::harness::{Fixture, engine, tag};
use crate::{R, Test};

pub const TESTS: &[(&str, Test<Fixture>)] = &[
    ("stdout_is_byte_exact", stdout_is_byte_exact),
    ("stderr_is_separate_and_exact", stderr_is_separate_and_exact),
    ("both_streams_complete_when_exec_returns", both_streams_complete_when_exec_returns),
    ("state_carries_over", state_carries_over),
    ("nothing_unread_after_open", nothing_unread_after_open),
    ("sentinel_cannot_be_forged", sentinel_cannot_be_forged),
    ("stdin_is_eof_by_default", stdin_is_eof_by_default),
    ("stdin_bytes_arrive_exactly", stdin_bytes_arrive_exactly),
    ("syntax_error_gives_2_and_session_goes_on", syntax_error_gives_2_and_session_goes_on),
    ("a_shell_error_in_a_subshell_ends_only_the_subshell", a_shell_error_in_a_subshell_ends_only_the_subshell),
    ("heredocs_and_multiline_commands", heredocs_and_multiline_commands),
    ("timeout_interrupts_the_tree_and_recovers", timeout_interrupts_the_tree_and_recovers),
    ("timeout_spares_earlier_background_jobs", timeout_spares_earlier_background_jobs),
    ("timeout_escalates_to_kill", timeout_escalates_to_kill),
    ("exit_n_is_answered_with_code_and_output", exit_n_is_answered_with_code_and_output),
    ("a_users_exit_trap_runs_when_the_shell_exits", a_users_exit_trap_runs_when_the_shell_exits),
    ("set_e_failure_ends_the_shell_clearly", set_e_failure_ends_the_shell_clearly),
    ("exec_redirections_last_one_command", exec_redirections_last_one_command),
    ("close_ends_every_process", close_ends_every_process),
    ("drop_ends_every_process", drop_ends_every_process),
    ("close_while_busy_ends_every_process", close_while_busy_ends_every_process),
    ("spawn_streams_events_in_order", spawn_streams_events_in_order),
    ("wait_timeout_and_try_wait", wait_timeout_and_try_wait),
    ("running_interrupt_and_kill", running_interrupt_and_kill),
    ("send_then_read", send_then_read),
    ("background_output_goes_to_read_not_next_command", background_output_goes_to_read_not_next_command),
    ("dropped_running_is_settled_before_next_command", dropped_running_is_settled_before_next_command),
    ("on_output_sees_everything", on_output_sees_everything),
    ("output_cap_truncates_and_keeps_draining", output_cap_truncates_and_keeps_draining),
    ("chunk_callback_sees_every_byte_once", chunk_callback_sees_every_byte_once),
    ("metrics_and_pid", metrics_and_pid),
    ("files_round_trip", files_round_trip),
    ("temporary_files_go_with_the_session", temporary_files_go_with_the_session),
    ("builder_env_and_workdir_arrive_literally", builder_env_and_workdir_arrive_literally),
    ("bash_shell_with_aliases", bash_shell_with_aliases),
    ("user_option", user_option),
    ("bad_workdir_and_shell_fail_open_clearly", bad_workdir_and_shell_fail_open_clearly),
    ("missing_runtime_program_is_named", missing_runtime_program_is_named),
    ("invalid_input_is_rejected", invalid_input_is_rejected),
];

/// Tests that only make sense where there is a container.
pub const CONTAINER_TESTS: &[(&str, Test<Fixture>)] = &[
    ("missing_container_is_named", missing_container_is_named),
    ("stopped_container_is_named", stopped_container_is_named),
    ("engine_not_answering_is_named", engine_not_answering_is_named),
    ("container_killed_mid_command", container_killed_mid_command),
];

fn stdout_is_byte_exact(fx: &Fixture) -> R {
    let mut sh = fx.session();
    let cases: &[(&str, &[u8])] = &[
        ("printf abc", b"abc"),
        ("printf 'abc\\n'", b"abc\n"),
        ("printf 'a\\r\\nb\\r\\n'", b"a\r\nb\r\n"),
        ("printf 'x\\000y\\000'", b"x\0y\0"),
        ("printf '\\377\\376\\200ok'", b"\xff\xfe\x80ok"),
        ("printf '\\n\\n\\n'", b"\n\n\n"),
        ("true", b""),
        ("printf '\\037bx'", b"\x1fbx"),
    ];
    for &(cmd, want) in cases {
        let out = sh.exec(cmd)?;
        ensure!(out.stdout == want, "{cmd}: stdout {:?}, want {:?}", out.stdout, want);
        ensure!(out.stderr.is_empty() && out.exit_code == 0, "{cmd}: {out:?}");
    }
    sh.close()?;
    Ok(())
}

fn stderr_is_separate_and_exact(fx: &Fixture) -> R {
    let mut sh = fx.session();
    let out =
        sh.exec("printf out1; printf 'err1' >&2; printf 'out2\\n'; printf 'err2\\r\\n' >&2; exit_code=3; (exit 3)")?;
    assert_eq!(out.stdout, b"out1out2\n");
    assert_eq!(out.stderr, b"err1err2\r\n");
    assert_eq!(out.exit_code, 3);
    let out = sh.exec("echo err >&2")?;
    assert_eq!((out.stdout.as_slice(), out.stderr.as_slice()), (&b""[..], &b"err\n"[..]));
    Ok(())
}

fn both_streams_complete_when_exec_returns(fx: &Fixture) -> R {
    let mut sh = fx.session();
    // 300 KB on each stream, written alternately, more than any pipe buffer.
    let out = sh.exec("i=0; while [ $i -lt 300 ]; do head -c 1000 /dev/zero | tr '\\0' o; head -c 1000 /dev/zero | tr '\\0' e >&2; i=$((i+1)); done")?;
    assert_eq!(out.stdout.len(), 300_000);
    assert_eq!(out.stderr.len(), 300_000);
    assert!(out.stdout.iter().all(|&b| b == b'o') && out.stderr.iter().all(|&b| b == b'e'));
    // The last bytes of a stream are written just before the command ends.
    for i in 0..20 {
        let out = sh.exec(&format!("echo out{i}; echo err{i} >&2"))?;
        assert_eq!(out.stdout, format!("out{i}\n").as_bytes());
        assert_eq!(out.stderr, format!("err{i}\n").as_bytes());
    }
    Ok(())
}

fn state_carries_over(fx: &Fixture) -> R {
    let mut sh = fx.session();
    sh.exec("cd /tmp && mkdir -p state && cd state")?.check()?;
    sh.exec("export EXPORTED='a b'; SHELLVAR=c; greet() { printf 'hi %s' \"$1\"; }; alias ll='printf aliased'")?
        .check()?;
    sh.exec("set -u")?.check()?;
    let out = sh.exec("printf '%s|%s|%s|' \"$PWD\" \"$EXPORTED\" \"$SHELLVAR\"; greet you")?;
    assert_eq!(out.stdout_str(), "/tmp/state|a b|c|hi you");
    assert_eq!(sh.exec("sh -c 'printf %s \"$EXPORTED\"'")?.stdout, b"a b");
    assert_eq!(sh.exec("ll")?.stdout, b"aliased");
    // Options persist.
    assert_eq!(sh.exec("case $- in *u*) echo nounset-on;; esac")?.stdout, b"nounset-on\n");
    Ok(())
}

fn sentinel_cannot_be_forged(fx: &Fixture) -> R {
    let mut sh = fx.session();
    let out = sh.exec("set -x; echo traced; set +x")?;
    assert_eq!(out.stdout, b"traced\n");
    assert_eq!(out.stderr_str().lines().filter(|l| l.starts_with('+')).count(), 2, "{out:?}");
    assert!(!out.stderr_str().contains("printf"), "the frame leaked into the trace: {out:?}");
    let out = sh.exec("set -v; echo verbose; set +v")?;
    assert_eq!(out.stdout, b"verbose\n");
    // Look-alikes of the sentinel: the prefix, with fake tokens and trailers.
    let fake = "printf '\\037bx%s 0 0\\n' 0123456789abcdef0123456789abcdef; printf '\\037bx\\n' >&2; echo after";
    let out = sh.exec(fake)?;
    assert_eq!(out.stdout, b"\x1fbx0123456789abcdef0123456789abcdef 0 0\nafter\n");
    assert_eq!(out.stderr, b"\x1fbx\n");
    // What the shell reads is not visible to it as a command line.
    let out = sh.exec("cat /proc/$$/cmdline | tr '\\0' ' '")?;
    assert!(!out.stdout_str().contains("printf"), "{out:?}");
    assert_eq!(sh.exec("echo still in step")?.stdout, b"still in step\n");
    Ok(())
}

fn stdin_is_eof_by_default(fx: &Fixture) -> R {
    let mut sh = fx.session();
    let start = Instant::now();
    let out = sh.exec("cat; echo done")?;
    assert_eq!(out.stdout, b"done\n");
    let out = sh.exec("read line; echo \"read=$? line=[$line]\"")?;
    assert_eq!(out.stdout, b"read=1 line=[]\n");
    let out = sh.exec("head -c 10; wc -c")?;
    assert_eq!(out.stdout_str().trim(), "0");
    assert!(start.elapsed() < fx.bound(5));
    assert_eq!(sh.exec("echo next")?.stdout, b"next\n");
    Ok(())
}

fn stdin_bytes_arrive_exactly(fx: &Fixture) -> R {
    let mut sh = fx.session();
    let mut data: Vec<u8> = (0..=255u8).collect();
    data.extend_from_slice(b"%s %% \\n '\"$(id)` \nno newline at end");
    let out = sh.cmd("cat").stdin(data.clone()).run()?;
    assert_eq!(out.stdout, data);
    let out = sh.cmd("wc -c").stdin(vec![0u8; 100_000]).run()?;
    assert_eq!(out.stdout_str().trim(), "100000");
    let out = sh.cmd("read a; read b; echo \"$b/$a\"").stdin("one\ntwo\n").run()?;
    assert_eq!(out.stdout, b"two/one\n");
    // Stdin does not leak into the next command.
    assert_eq!(sh.exec("cat; echo empty")?.stdout, b"empty\n");
    Ok(())
}

fn syntax_error_gives_2_and_session_goes_on(fx: &Fixture) -> R {
    let mut sh = fx.session();
    sh.exec("cd /tmp; export KEPT=yes")?.check()?;
    for bad in ["if", "echo 'unterminated", "fi", "( echo", "case x in"] {
        let out = sh.exec(bad)?;
        assert_eq!(out.exit_code, 2, "{bad}: {out:?}");
        // bash names an unterminated quote "unexpected EOF while looking for matching `''".
        let said = out.stderr_str().to_lowercase();
        assert!(said.contains("syntax error") || said.contains("unexpected eof"), "{bad}: {out:?}");
        assert!(out.stdout.is_empty());
    }
    assert_eq!(sh.exec("echo $PWD $KEPT")?.stdout, b"/tmp yes\n");
    Ok(())
}

/// busybox ash's forked subshell that met a shell error went on with the rest of the frame (it
/// printed the sentinel, and the shell's own rest came late, in the next command's output).
fn a_shell_error_in_a_subshell_ends_only_the_subshell(fx: &Fixture) -> R {
    for shell in fx.shells() {
        let mut sh = fx.builder().shell(&shell).open()?;
        sh.exec("set -u; readonly RO=1")?.check()?;
        let cases = [
            "( echo $UNSET ) || echo failed; echo after",
            "x=$(echo $UNSET) || echo failed; echo after",
            "echo a | { echo $UNSET; } || echo failed; echo after",
            "{ echo $UNSET; } & wait $! || echo failed; echo after",
            "f() { ( RO=2 ); }; f || echo failed; echo after",
        ];
        for command in cases {
            for live_stdin in [false, true] {
                let out = if live_stdin {
                    let mut running = sh.cmd(command).interactive().spawn()?;
                    running.close_stdin()?;
                    running.wait()?
                } else {
                    sh.exec(command)?
                };
                ensure!(
                    out.stdout == b"failed\nafter\n" && out.exit_code == 0 && !out.stderr.is_empty(),
                    "{shell}: `{command}` (live stdin: {live_stdin}): {out:?}"
                );
                let next = sh.exec("echo next")?;
                ensure!(next.stdout == b"next\n" && next.stderr.is_empty(), "{shell}: after `{command}`: {next:?}");
            }
        }
        // What `Cmd::env` cannot set is an error of that command alone.
        let out = sh.cmd("echo RO=$RO").env("RO", "2").run()?;
        ensure!(out.stdout.is_empty() && out.exit_code != 0 && !out.stderr.is_empty(), "{shell}: {out:?}");
        let out = sh.exec("echo $RO; ( exit 7 ); echo $?")?;
        ensure!(out.stdout == b"1\n7\n" && out.stderr.is_empty(), "{shell}: {out:?}");
        sh.close()?;
    }
    Ok(())
}

fn heredocs_and_multiline_commands(fx: &Fixture) -> R {
    let mut sh = fx.session();
    sh.exec("NAME=world")?;
    let out = sh.exec("cat <<EOF\nhello $NAME\n  'quoted' \"double\" \\$literal\nEOF")?;
    assert_eq!(out.stdout, b"hello world\n  'quoted' \"double\" $literal\n");
    let out = sh.exec("cat <<'EOF'\n$NAME `x` $(y)\nEOF\necho second")?;
    assert_eq!(out.stdout, b"$NAME `x` $(y)\nsecond\n");
    let out = sh.exec("for i in 1 2 3\ndo\n  printf '%s,' \"$i\"\ndone\nif true; then\n  echo\nfi")?;
    assert_eq!(out.stdout, b"1,2,3,\n");
    let out = sh.exec("f() {\n  echo \"in f: $1\"\n}\nf arg")?;
    assert_eq!(out.stdout, b"in f: arg\n");
    let out = sh.exec("echo 'line with\nnewline inside quotes'")?;
    assert_eq!(out.stdout, b"line with\nnewline inside quotes\n");
    Ok(())
}

fn timeout_interrupts_the_tree_and_recovers(fx: &Fixture) -> R {
    let mut sh = fx.session();
    sh.exec("cd /tmp; export KEPT=1")?.check()?;
    let t = tag();
    let start = Instant::now();
    let cmd =
        format!("echo partial; echo partial-err >&2; sh -c 'sleep {t} & sleep {t}; wait' | cat; echo unreachable");
    let out = sh.cmd(cmd).timeout(Duration::from_secs(1)).run()?;
    let took = start.elapsed();
    assert!(out.timed_out, "{out:?}");
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert!(out.stdout.starts_with(b"partial\n"), "{out:?}");
    assert_eq!(out.stderr, b"partial-err\n");
    assert!(!out.success());
    let left = fx.wait_gone(&format!("sleep {t}"));
    assert!(left.is_empty(), "left running: {left:?}");
    let out = sh.exec("echo $PWD $KEPT")?;
    assert_eq!(out.stdout, b"/tmp 1\n");
    assert!(!out.timed_out);
    sh.close()?;
    Ok(())
}

fn timeout_spares_earlier_background_jobs(fx: &Fixture) -> R {
    let mut sh = fx.session();
    let (bg, fg) = (tag(), tag());
    sh.exec(&format!("sleep {bg} &"))?.check()?;
    let out = sh.cmd(format!("sleep {fg}")).timeout(Duration::from_millis(500)).run()?;
    assert!(out.timed_out && out.exit_code == 130, "{out:?}");
    assert!(fx.wait_gone(&format!("sleep {fg}")).is_empty());
    assert_eq!(fx.processes(&format!("sleep {bg}")).len(), 1, "the background job was killed");
    sh.close()?;
    assert!(fx.wait_gone(&format!("sleep {bg}")).is_empty(), "close left the background job");
    Ok(())
}

fn timeout_escalates_to_kill(fx: &Fixture) -> R {
    let mut sh = fx.builder().grace(Duration::from_millis(1500)).open()?;
    let t = tag();
    let start = Instant::now();
    // Ignores SIGINT: the timeout must go on to SIGKILL.
    let out = sh.cmd(format!("trap '' INT; sleep {t}")).timeout(Duration::from_millis(500)).run()?;
    assert!(out.timed_out, "{out:?}");
    assert_eq!(out.exit_code, 137, "{out:?}");
    assert!(start.elapsed() < fx.bound(8), "took {:?}", start.elapsed());
    assert!(fx.wait_gone(&format!("sleep {t}")).is_empty());
    assert_eq!(sh.exec("trap - INT; echo ok")?.stdout, b"ok\n");
    Ok(())
}

fn exit_n_is_answered_with_code_and_output(fx: &Fixture) -> R {
    let mut sh = fx.session();
    let (t, u) = (tag(), tag());
    // Jobs of this command and of an earlier one hold the shell's output (over ssh, sshd keeps
    // the connection while they do): the shell ends them as it exits.
    sh.exec(&format!("sleep {t} &"))?;
    let start = Instant::now();
    let out = sh.exec(&format!("sleep {u} & echo before; echo err >&2; exit 7"))?;
    assert!(start.elapsed() < fx.bound(5), "{:?}", start.elapsed());
    assert_eq!((out.exit_code, out.stdout.as_slice(), out.stderr.as_slice()), (7, &b"before\n"[..], &b"err\n"[..]));
    assert!(!sh.is_alive());
    match sh.exec("echo again") {
        Err(e @ Error::ShellExited { code: Some(7), .. }) => {
            let text = e.to_string();
            assert!(text.contains(fx.runtime.name()) && text.contains(sh.target()) && text.contains('7'), "{text}");
        }
        other => return Err(format!("expected ShellExited(7), got {other:?}").into()),
    }
    // The background jobs did not outlive the shell.
    assert!(fx.wait_gone(&format!("sleep {t}")).is_empty());
    assert!(fx.wait_gone(&format!("sleep {u}")).is_empty());
    sh.close()?;
    Ok(())
}

fn a_users_exit_trap_runs_when_the_shell_exits(fx: &Fixture) -> R {
    let mut sh = fx.session();
    let start = Instant::now();
    let out = sh.exec("trap 'echo bye' EXIT; f() { exit 4; }; f; echo not-reached")?;
    assert!(start.elapsed() < fx.bound(5), "{:?}", start.elapsed());
    assert_eq!((out.exit_code, out.stdout.as_slice()), (4, &b"bye\n"[..]));
    assert!(matches!(sh.exec("true"), Err(Error::ShellExited { code: Some(4), .. })));
    Ok(())
}

fn set_e_failure_ends_the_shell_clearly(fx: &Fixture) -> R {
    let mut sh = fx.session();
    let t = tag();
    sh.exec("set -e")?.check()?;
    assert_eq!(sh.exec("echo fine")?.stdout, b"fine\n");
    let start = Instant::now();
    let out = sh.exec(&format!("sleep {t} & echo partial; false; echo not-reached"))?;
    assert!(start.elapsed() < fx.bound(5), "{:?}", start.elapsed());
    assert_eq!((out.exit_code, out.stdout.as_slice()), (1, &b"partial\n"[..]));
    assert!(matches!(sh.exec("true"), Err(Error::ShellExited { code: Some(1), .. })));
    assert!(fx.wait_gone(&format!("sleep {t}")).is_empty());
    Ok(())
}

fn exec_redirections_last_one_command(fx: &Fixture) -> R {
    let mut sh = fx.session();
    let out = sh.exec("echo seen; exec >/dev/null; echo hidden")?;
    assert_eq!(out.stdout, b"seen\n");
    assert_eq!(sh.exec("echo back")?.stdout, b"back\n");
    let out = sh.exec("exec 2>&-; echo out; echo err >&2")?;
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(sh.exec("echo err2 >&2")?.stderr, b"err2\n");
    let out = sh.exec("exec 7>&- 8>&-; echo fds-closed")?;
    assert_eq!(out.stdout, b"fds-closed\n");
    let out = sh.exec("exec 7>/dev/null 8>/dev/null 1>&7 2>&8; echo into-the-void")?;
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
    assert_eq!(sh.exec("echo out-again; echo err-again >&2")?.stdout, b"out-again\n");
    // The session's own fds are not visible to commands. (On the host, a local shell also
    // inherits whatever fds this process inherited, so only 7 and 8 are checked there.)
    let out = sh.exec("ls /proc/self/fd/ | sort -n | tr '\\n' ' '")?;
    if fx.in_container() {
        assert_eq!(out.stdout, b"0 1 2 3 ", "{out:?}");
    } else {
        let fds = out.stdout_str();
        assert!(fds.starts_with("0 1 2 3 ") && !fds.contains(" 7 ") && !fds.contains(" 8 "), "{fds}");
    }
    Ok(())
}

/// Starts background jobs of every kind: plain, orphaned, immune to SIGHUP, and a grandchild.
fn start_background_jobs(fx: &Fixture, sh: &mut Session) -> Result<[u64; 4], Failed> {
    let t = [tag(), tag(), tag(), tag()];
    sh.exec(&format!(
        "sleep {} & (sleep {} &); (trap '' HUP; exec sleep {} >/dev/null 2>&1) & sh -c 'sleep {} & wait' &",
        t[0], t[1], t[2], t[3]
    ))?
    .check()?;
    for t in t {
        ensure!(fx.wait_present(&format!("sleep {t}")).len() == 1, "sleep {t} did not start");
    }
    Ok(t)
}

fn assert_all_gone(fx: &Fixture, tags: &[u64]) -> R {
    for t in tags {
        let left = fx.wait_gone(&format!("sleep {t}"));
        ensure!(left.is_empty(), "left running: {left:?}");
    }
    Ok(())
}

fn close_ends_every_process(fx: &Fixture) -> R {
    let mut sh = fx.session();
    let tags = start_background_jobs(fx, &mut sh)?;
    let pid = sh.pid();
    sh.close()?;
    assert_all_gone(fx, &tags)?;
    ensure!(!crate::harness::pid_exists(&fx.runtime, &fx.container, pid), "shell {pid} still runs");
    Ok(())
}

fn drop_ends_every_process(fx: &Fixture) -> R {
    let mut sh = fx.session();
    let tags = start_background_jobs(fx, &mut sh)?;
    drop(sh);
    assert_all_gone(fx, &tags)
}

fn close_while_busy_ends_every_process(fx: &Fixture) -> R {
    let mut sh = fx.session();
    let mut tags = start_background_jobs(fx, &mut sh)?.to_vec();
    let t = tag();
    tags.push(t);
    sh.send(&format!("sleep {t}"))?;
    let start = Instant::now();
    sh.close()?;
    ensure!(start.elapsed() < fx.bound(10), "close took {:?}", start.elapsed());
    assert_all_gone(fx, &tags)
}

fn spawn_streams_events_in_order(fx: &Fixture) -> R {
    let mut sh = fx.session();
    let running = sh.spawn("for i in 1 2 3; do echo $i; echo e$i >&2; sleep 0.1; done; exit_status=4; (exit 4)")?;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut pieces = 0;
    for ev in running.events() {
        pieces += 1;
        match ev {
            Event::Stdout(b) => out.extend(b),
            Event::Stderr(b) => err.extend(b),
            _ => unreachable!(),
        }
    }
    assert_eq!(out, b"1\n2\n3\n");
    assert_eq!(err, b"e1\ne2\ne3\n");
    assert!(pieces >= 4, "output should arrive as it is written, got {pieces} pieces");
    let done = running.wait()?;
    assert_eq!(done.exit_code, 4);
    assert!(done.stdout.is_empty(), "events already taken are not in wait's output");
    Ok(())
}

fn wait_timeout_and_try_wait(fx: &Fixture) -> R {
    let mut sh = fx.session();
    let mut running = sh.spawn("echo start; sleep 1; echo end")?;
    assert!(running.try_wait()?.is_none());
    assert!(running.wait_timeout(Duration::from_millis(200))?.is_none());
    let out = running.wait_timeout(Duration::from_secs(10))?.expect("finished");
    assert_eq!(out.stdout, b"start\nend\n");
    assert_eq!(running.try_wait()?.map(|o| o.stdout), Some(b"start\nend\n".to_vec()));
    drop(running);
    assert_eq!(sh.exec("echo next")?.stdout, b"next\n");
    Ok(())
}

fn running_interrupt_and_kill(fx: &Fixture) -> R {
    let mut sh = fx.session();
    let running = sh.spawn(&format!("sleep {}", tag()))?;
    std::thread::sleep(Duration::from_millis(300));
    running.interrupt()?;
    let out = running.wait()?;
    assert_eq!(out.exit_code, 130);
    assert!(!out.timed_out);
    let running = sh.spawn(&format!("trap '' INT; sleep {}", tag()))?;
    std::thread::sleep(Duration::from_millis(300));
    running.kill()?;
    assert_eq!(running.wait()?.exit_code, 137);
    assert_eq!(sh.exec("echo alive")?.stdout, b"alive\n");
    Ok(())
}

fn send_then_read(fx: &Fixture) -> R {
    let mut sh = fx.session();
    sh.send("echo a; echo e >&2; sleep 0.5; echo b")?;
    let first = sh.read()?;
    assert!(first.busy);
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut out, mut err) = (first.stdout, first.stderr);
    loop {
        let more = sh.read()?;
        out.extend(more.stdout);
        err.extend(more.stderr);
        if !more.busy || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(out, b"a\nb\n");
    assert_eq!(err, b"e\n");
    assert_eq!(sh.exec("echo next")?.stdout, b"next\n");
    Ok(())
}

fn background_output_goes_to_read_not_next_command(fx: &Fixture) -> R {
    let mut sh = fx.session();
    sh.exec("(sleep 0.3; echo from-background) &")?.check()?;
    std::thread::sleep(Duration::from_millis(1500));
    let out = sh.exec("echo mine")?;
    assert_eq!(out.stdout, b"mine\n");
    let unread = sh.read()?;
    assert_eq!(unread.stdout, b"from-background\n");
    assert_eq!(unread.dropped, 0);
    assert!(sh.read()?.stdout.is_empty());
    Ok(())
}

/// Start-up noise (busybox's banner) is no command's output, however fast the shell starts.
fn nothing_unread_after_open(fx: &Fixture) -> R {
    for _ in 0..10 {
        let mut sh = fx.session();
        let unread = sh.read()?;
        assert_eq!((unread.stdout, unread.stderr), (Vec::new(), Vec::new()));
        sh.close()?;
    }
    Ok(())
}

fn dropped_running_is_settled_before_next_command(fx: &Fixture) -> R {
    let mut sh = fx.session();
    drop(sh.spawn("sleep 0.3; echo late")?);
    let out = sh.exec("echo next")?;
    assert_eq!(out.stdout, b"next\n");
    assert_eq!(sh.read()?.stdout, b"late\n");
    Ok(())
}

fn on_output_sees_everything(fx: &Fixture) -> R {
    let seen = Arc::new(Mutex::new((Vec::new(), Vec::new())));
    let tap = Arc::clone(&seen);
    let mut sh = fx
        .builder()
        .on_output(move |stream, bytes| {
            let mut s = tap.lock().unwrap();
            match stream {
                Stream::Stdout => s.0.extend_from_slice(bytes),
                Stream::Stderr => s.1.extend_from_slice(bytes),
            }
        })
        .open()?;
    sh.exec("echo one; echo two >&2")?;
    sh.exec("printf three")?;
    let s = seen.lock().unwrap().clone();
    assert_eq!(s.0, b"one\nthree");
    assert_eq!(s.1, b"two\n");
    Ok(())
}

fn output_cap_truncates_and_keeps_draining(fx: &Fixture) -> R {
    let mut sh = fx.session();
    let out = sh.cmd("head -c 3000000 /dev/zero; echo err >&2").max_output(1000).run()?;
    assert!(out.truncated);
    assert_eq!(out.stdout, vec![0u8; 1000]);
    assert_eq!(out.stderr, b"err\n");
    assert_eq!(out.exit_code, 0);
    let out = sh.exec("echo in-step")?;
    assert_eq!(out.stdout, b"in-step\n");
    assert!(!out.truncated);
    Ok(())
}

fn chunk_callback_sees_every_byte_once(fx: &Fixture) -> R {
    let mut sh = fx.session();
    let mut got = Vec::new();
    let mut pieces = 0usize;
    let out = sh
        .cmd("i=0; while [ $i -lt 20000 ]; do echo line-$i; i=$((i+1)); done")
        .max_output(0)
        .on_chunk(|stream, bytes| {
            assert_eq!(stream, Stream::Stdout);
            got.extend_from_slice(bytes);
            pieces += 1;
        })
        .run()?;
    let want: String = (0..20000).map(|i| format!("line-{i}\n")).collect();
    assert_eq!(got, want.as_bytes());
    assert!(out.stdout.is_empty() && out.truncated);
    assert!(pieces >= 1);
    Ok(())
}

fn metrics_and_pid(fx: &Fixture) -> R {
    let mut sh = fx.session();
    let m = sh.metrics();
    assert_eq!(m.commands, 0);
    let out = sh.exec("echo $$")?;
    assert_eq!(out.stdout_str().trim(), sh.pid().to_string());
    sh.exec("sleep 0.2")?;
    let m = sh.metrics();
    assert_eq!(m.commands, 2);
    assert!(m.busy >= Duration::from_millis(200) && m.busy < m.uptime(), "{m:?}");
    assert!(m.idle() < Duration::from_secs(2));
    Ok(())
}

fn files_round_trip(fx: &Fixture) -> R {
    let mut sh = fx.session();
    let data: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let path = format!("/tmp/boxshell file {}", tag());
    sh.write_file(&path, &data)?;
    assert_eq!(sh.read_file(&path)?, data);
    let size = sh.exec(&format!("wc -c < {}", boxshell::quote(&path)))?;
    assert_eq!(size.stdout_str().trim(), "50000");
    match sh.read_file("/nonexistent/file") {
        Err(e @ Error::Fs { kind: std::io::ErrorKind::NotFound, .. }) => {
            ensure!(e.to_string().contains("/nonexistent/file"), "{e}")
        }
        other => return Err(format!("expected Error::Fs NotFound, got {other:?}").into()),
    }
    // Larger than the cap: its own error, naming the file and the cap.
    let mut capped = fx.builder().max_output(49_999).open()?;
    match capped.read_file(&path) {
        Err(e @ Error::FileTooLarge { max_output: 49_999, .. }) => {
            ensure!(e.to_string().contains(&path) && e.to_string().contains("49999"), "{e}")
        }
        other => return Err(format!("expected FileTooLarge, got {other:?}").into()),
    }
    ensure!(capped.read_file(&path).is_err() && capped.exec("true")?.exit_code == 0, "the session goes on");
    sh.exec(&format!("rm -f {}", boxshell::quote(&path)))?.check()?;
    // A file that cannot be written, with input small enough to go inline and large enough to
    // go through a second exec: an error naming the path and why, and nothing left blocked.
    let cases = [
        (100, "/etc/passwd/file", std::io::ErrorKind::NotADirectory),
        (3 << 20, "/etc/passwd/dir/file", std::io::ErrorKind::NotADirectory),
        (100, "/tmp", std::io::ErrorKind::IsADirectory),
        (3 << 20, "/tmp", std::io::ErrorKind::IsADirectory),
    ];
    for (len, target, want) in cases {
        let started = Instant::now();
        match sh.write_file(target, &data.repeat(len / data.len() + 1)[..len]) {
            Err(e @ Error::Fs { kind, .. }) if kind == want => {
                ensure!(e.to_string().contains(target), "{len} bytes to {target}: {e}")
            }
            other => return Err(format!("{len} bytes to {target}: expected {want:?}, got {other:?}").into()),
        }
        ensure!(started.elapsed() < Duration::from_secs(30), "{len} bytes to {target}: {:?}", started.elapsed());
        ensure!(sh.exec("echo still here")?.stdout == b"still here\n", "the session goes on after {target}");
    }
    Ok(())
}

/// The session's directory (stdin files, FIFOs) is in `/dev/shm` where the container has it
/// writable, and is removed when the session closes.
fn temporary_files_go_with_the_session(fx: &Fixture) -> R {
    let mut looker = fx.session();
    let mut sh = fx.session();
    let id = sh.id().simple().to_string();
    let find = format!("ls -d /dev/shm/.boxshell-{id} /tmp/.boxshell-{id} 2>/dev/null; true");
    ensure!(looker.exec(&find)?.stdout.is_empty(), "a directory before any input");
    for len in [100, 100_000] {
        let out = sh.cmd("wc -c").stdin(vec![b'x'; len]).run()?;
        ensure!(out.stdout_str().trim() == len.to_string(), "{len}: {out:?}");
    }
    let shm = looker.exec("[ -d /dev/shm ] && [ -w /dev/shm ] && echo yes")?.stdout == b"yes\n";
    let want = format!("{}/.boxshell-{id}\n", if shm { "/dev/shm" } else { "/tmp" });
    let seen = looker.exec(&find)?;
    ensure!(seen.stdout_str() == want, "while open: {:?}, want {want:?}", seen.stdout_str());
    sh.close()?;
    let seen = looker.exec(&find)?;
    ensure!(seen.stdout.is_empty(), "after close: {:?}", seen.stdout_str());
    // `$TMPDIR` decides where it is set.
    let mut sh = fx.builder().env("TMPDIR", "/tmp").open()?;
    let id = sh.id().simple();
    sh.cmd("cat").stdin(vec![b'y'; 10]).run()?.check()?;
    let seen = looker.exec(&format!("ls -d /dev/shm/.boxshell-{id} /tmp/.boxshell-{id} 2>/dev/null; true"))?;
    ensure!(seen.stdout_str() == format!("/tmp/.boxshell-{id}\n"), "with TMPDIR=/tmp: {:?}", seen.stdout_str());
    Ok(())
}

fn builder_env_and_workdir_arrive_literally(fx: &Fixture) -> R {
    let tricky = "it's \"quoted\" $(id) `id` $HOME \\ \n second line; rm -rf /";
    let mut sh = fx.builder().env("TRICKY", tricky).env("EMPTY", "").workdir("/tmp").open()?;
    let out = sh.exec("printf '%s|%s|%s' \"$TRICKY\" \"${EMPTY-unset}\" \"$PWD\"")?;
    assert_eq!(out.stdout_str(), format!("{tricky}||/tmp"));
    // Exported: children see it too.
    assert_eq!(sh.exec("sh -c 'printf %s \"$TRICKY\"'")?.stdout_str(), tricky);
    Ok(())
}

fn bash_shell_with_aliases(fx: &Fixture) -> R {
    let shell = if fx.in_container() { "/bin/bash" } else { "bash" };
    let mut sh = fx.builder().shell(shell).open()?;
    assert!(!sh.exec("echo $BASH_VERSION")?.stdout.is_empty());
    sh.exec("alias hi='echo hello from alias'")?.check()?;
    assert_eq!(sh.exec("hi")?.stdout, b"hello from alias\n");
    let out = sh.exec("if")?;
    assert_eq!(out.exit_code, 2);
    assert_eq!(sh.exec("printf 'a\\0b'")?.stdout, b"a\0b");
    sh.close()?;
    Ok(())
}

fn user_option(fx: &Fixture) -> R {
    if fx.runtime.manages_containers() {
        let mut sh = fx.builder().user("65534").open()?;
        assert_eq!(sh.exec("id -u")?.stdout, b"65534\n");
        let t = tag();
        sh.exec(&format!("sleep {t} &"))?;
        sh.close()?;
        ensure!(fx.wait_gone(&format!("sleep {t}")).is_empty(), "a session as another user left a job");
    } else {
        let err = fx.builder().user("nobody").open().unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    }
    Ok(())
}

fn bad_workdir_and_shell_fail_open_clearly(fx: &Fixture) -> R {
    let err = fx.builder().workdir("/does/not/exist").open().unwrap_err();
    match &err {
        Error::Open { message, .. } => assert!(message.contains("/does/not/exist"), "{err}"),
        other => return Err(format!("expected Open, got {other:?}").into()),
    }
    let err = fx.builder().shell("/bin/no-such-shell").open().unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Open { .. } | Error::RuntimeNotFound { .. }), "{err:?}");
    assert!(text.contains("no-such-shell"), "{text}");
    // Why, in the engine's words (docker says it on stdout), not only the command line.
    if let Error::Open { message, .. } = &err {
        assert!(message.contains("no-such-shell"), "{err}");
    }
    if fx.runtime.manages_containers() {
        let err = fx.builder().user("no-such-user-x").open().unwrap_err();
        match &err {
            Error::Open { message, .. } => assert!(message.contains("no-such-user-x"), "{err}"),
            other => return Err(format!("expected Open, got {other:?}").into()),
        }
    }
    Ok(())
}

fn missing_container_is_named(fx: &Fixture) -> R {
    let name = format!("boxshell-missing-{}", tag());
    let err = fx.builder_for(&name).open().unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::ContainerNotFound { .. }), "{err:?}");
    assert!(text.contains(&name) && text.contains(fx.runtime.name()), "{text}");
    let said = ["no such container", "no container with name", "(notfound)"];
    assert!(said.iter().any(|s| text.to_lowercase().contains(s)), "{text}");
    Ok(())
}

fn stopped_container_is_named(fx: &Fixture) -> R {
    let name = format!("boxshell-stopped-{}", tag());
    let image = crate::harness::image();
    // A container that was created but never started, then one that ran and exited.
    // (kubectl calls them pending and failed)
    let states = if fx.runtime.manages_containers() { ["created", "exited"] } else { ["pending", "failed"] };
    for (verb, state) in [("create", states[0]), ("run", states[1])] {
        engine(&fx.engine, &[verb, "--label", crate::harness::LABEL, "--name", &name, &image, "true"]);
        let err = fx.builder_for(&name).open().unwrap_err();
        crate::harness::remove_container(&fx.engine, &name);
        let text = err.to_string();
        let Error::ContainerNotRunning { via, container, state: typed, engine_state, .. } = &err else {
            return Err(format!("expected ContainerNotRunning, got {err:?}").into());
        };
        let expected = if verb == "create" { State::Stopped } else { State::Exited };
        ensure!(
            (via, container.as_str(), *typed, engine_state.as_str())
                == (&Via::Runtime(fx.runtime.clone()), name.as_str(), expected, state),
            "{err:?}"
        );
        ensure!(text.contains(&name) && text.contains(state) && text.contains(fx.runtime.name()), "{text}");
    }
    Ok(())
}

fn missing_runtime_program_is_named(fx: &Fixture) -> R {
    let program = "/nonexistent/bin/engine";
    let result = match fx.runtime {
        Runtime::Local => Session::builder("-").runtime(Runtime::Local).shell(program).open(),
        _ => fx.builder().runtime(fx.session_engine().program(program)).open(),
    };
    let err = result.unwrap_err();
    assert!(matches!(err, Error::RuntimeNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains(program), "{err}");
    Ok(())
}

fn engine_not_answering_is_named(fx: &Fixture) -> R {
    let args: &[&str] = match fx.runtime {
        Runtime::Docker => &["-H", "unix:///nonexistent/docker.sock"],
        Runtime::Podman => &["--remote", "--url", "unix:///nonexistent/podman.sock"],
        _ => &["--context", "unreachable", "--server", "https://nonexistent:6443"],
    };
    let start = Instant::now();
    let err = fx.builder().runtime(fx.session_engine().global_args(args.iter().copied())).open().unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(20));
    assert!(matches!(err, Error::RuntimeUnavailable { .. }), "{err:?}");
    let said = if fx.runtime.manages_containers() { "nonexistent" } else { "Unable to connect to the server" };
    assert!(err.to_string().contains(said), "{err}");
    // The same through the CLI's own environment variable.
    let builder = match fx.runtime {
        Runtime::Docker => fx.session_engine().env("DOCKER_HOST", "unix:///nonexistent/by-env.sock"),
        Runtime::Podman => {
            fx.session_engine().global_args(["--remote"]).env("CONTAINER_HOST", "unix:///nonexistent/by-env.sock")
        }
        _ => return Ok(()),
    };
    let err = fx.builder().runtime(builder).open().unwrap_err();
    assert!(matches!(err, Error::RuntimeUnavailable { .. }), "{err:?}");
    assert!(err.to_string().contains("by-env.sock"), "{err}");
    Ok(())
}

fn container_killed_mid_command(fx: &Fixture) -> R {
    let c = fx.fresh();
    let mut sh = fx.builder_for(&c.name).open()?;
    sh.exec("echo warm")?;
    let runtime = c.engine.clone();
    let name = c.name.clone();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        engine(&runtime, &["kill", &name]);
    });
    let start = Instant::now();
    let out = sh.exec("echo partial; sleep 60");
    killer.join().unwrap();
    assert!(start.elapsed() < fx.bound(10), "{:?}", start.elapsed());
    let out = out?;
    assert_eq!(out.stdout, b"partial\n");
    assert!(!out.success());
    assert!(!sh.is_alive());
    assert!(matches!(sh.exec("true"), Err(Error::ShellExited { .. })));
    let start = Instant::now();
    sh.close()?;
    assert!(start.elapsed() < fx.bound(10));
    Ok(())
}

fn invalid_input_is_rejected(fx: &Fixture) -> R {
    if fx.in_container() {
        for bad in ["", "-rm", "--privileged", "a b"] {
            let err = fx.builder_for(bad).open().unwrap_err();
            assert!(matches!(err, Error::InvalidName { .. }), "{bad:?}: {err:?}");
        }
        // Shell syntax is rejected where the runtime's names cannot hold it, or a remote shell
        // may read it; a custom CLI gets it as one argument, literally: no host shell runs it.
        let remote = matches!(&fx.runtime, Runtime::Custom(c) if c.is_remote_shell());
        for bad in ["x;id", "$(id)"] {
            match fx.builder_for(bad).open() {
                Err(Error::InvalidName { .. }) if remote || !matches!(fx.runtime, Runtime::Custom(_)) => {}
                Err(Error::Open { message, .. }) if matches!(fx.runtime, Runtime::Custom(_)) => {
                    ensure!(message.contains(&format!("No such container: {bad}")), "{bad:?}: {message}")
                }
                other => return Err(format!("{bad:?}: {other:?}").into()),
            }
        }
    }
    let err = fx.builder().env("BAD-NAME", "x").open().unwrap_err();
    assert!(matches!(err, Error::InvalidName { .. }), "{err:?}");
    let mut sh = fx.session();
    let err = sh.exec("echo a\0b").unwrap_err();
    assert!(matches!(err, Error::InvalidValue { .. }), "{err:?}");
    assert_eq!(sh.exec("echo fine")?.stdout, b"fine\n");
    Ok(())
}
