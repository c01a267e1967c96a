//! Interactive commands: input written while they run, `expect`, and what happens when they
//! end, time out or never read. Every test runs with every shell of the fixture (dash, bash and
//! busybox ash on the host; busybox ash and bash in containers).

use std::time::Duration;

use boxshell::{Error, Stream};

use crate::ensure;
use crate::harness::{Fixture, each_shell, tag};
use crate::sizes::data;
use crate::{R, Test};

pub const TESTS: &[(&str, Test<Fixture>)] = &[
    ("sh_s_driven_line_by_line", sh_s_driven_line_by_line),
    ("while_read_answers_each_line_before_the_next", while_read_answers_each_line_before_the_next),
    ("expect_on_stderr", expect_on_stderr),
    ("expect_timeout_then_driven_on", expect_timeout_then_driven_on),
    ("write_stdin_streams_64_mib_exact", write_stdin_streams_64_mib_exact),
    ("echoed_input_cannot_block_the_writer", echoed_input_cannot_block_the_writer),
    ("interactive_timeout_keeps_the_session", interactive_timeout_keeps_the_session),
    ("close_stdin_gives_eof", close_stdin_gives_eof),
    ("command_exiting_with_input_pending", command_exiting_with_input_pending),
    ("not_interactive_reads_eof_and_refuses_input", not_interactive_reads_eof_and_refuses_input),
];

/// Tests for a shell on this host.
pub const LOCAL_TESTS: &[(&str, Test<Fixture>)] =
    &[("python_repl_driven_by_its_prompt", python_repl_driven_by_its_prompt)];

const WAIT: Duration = Duration::from_secs(20);

fn sh_s_driven_line_by_line(fx: &Fixture) -> R {
    each_shell(fx, "in-", |sh, shell| {
        let mut r = sh.cmd("sh -s").interactive().spawn()?;
        r.write_stdin(b"echo one\n")?;
        ensure!(r.expect(Stream::Stdout, b"one\n", WAIT)? == b"one\n", "{shell}: first line");
        // State carries between lines of the inner shell.
        r.write_stdin(b"cd /tmp && X='a b'\n")?;
        r.write_stdin(b"printf '%s|%s\\n' \"$PWD\" \"$X\"\n")?;
        ensure!(r.expect(Stream::Stdout, b"\n", WAIT)? == b"/tmp|a b\n", "{shell}: state");
        r.write_stdin(b"printf 'no newline'\n")?;
        ensure!(r.expect(Stream::Stdout, b"newline", WAIT)? == b"no newline", "{shell}: partial line");
        r.write_stdin(b"exit 3\n")?;
        let out = r.wait()?;
        ensure!(out.exit_code == 3 && out.stdout.is_empty() && out.stderr.is_empty(), "{shell}: {out:?}");
        Ok(())
    })
}

fn while_read_answers_each_line_before_the_next(fx: &Fixture) -> R {
    each_shell(fx, "in-", |sh, shell| {
        let mut r = sh.cmd("while read -r l; do echo \"ack $l\"; done; echo bye").interactive().spawn()?;
        for i in 0..20 {
            r.write_stdin(format!("line {i}\n").as_bytes())?;
            let want = format!("ack line {i}\n");
            let got = r.expect(Stream::Stdout, want.as_bytes(), WAIT)?;
            ensure!(got == want.as_bytes(), "{shell}: {i}: {:?}", String::from_utf8_lossy(&got));
        }
        r.close_stdin()?;
        let out = r.wait()?;
        ensure!(out.stdout == b"bye\n" && out.exit_code == 0, "{shell}: {out:?}");
        Ok(())
    })
}

fn expect_on_stderr(fx: &Fixture) -> R {
    each_shell(fx, "in-", |sh, shell| {
        let mut r = sh
            .cmd("printf 'prompt> ' >&2; read -r x; printf 'out:%s\\n' \"$x\"; printf 'err:%s\\n' \"$x\" >&2")
            .interactive()
            .spawn()?;
        ensure!(r.expect(Stream::Stderr, b"> ", WAIT)? == b"prompt> ", "{shell}: prompt");
        r.write_stdin(b"\xff\x01 bytes\n")?;
        ensure!(r.expect(Stream::Stderr, b"\n", WAIT)? == b"err:\xff\x01 bytes\n", "{shell}: stderr");
        let out = r.wait()?;
        // The stdout line was not consumed by expect: wait has it, byte for byte.
        ensure!(
            out.stdout == b"out:\xff\x01 bytes\n" && out.stderr.is_empty() && out.exit_code == 0,
            "{shell}: {out:?}"
        );
        Ok(())
    })
}

fn expect_timeout_then_driven_on(fx: &Fixture) -> R {
    each_shell(fx, "in-", |sh, shell| {
        let mut r = sh.cmd("printf partial; read -r x; echo \" got $x\"").interactive().spawn()?;
        match r.expect(Stream::Stdout, b"got", Duration::from_millis(500)) {
            Err(Error::ExpectTimeout { seen, stream: Stream::Stdout, .. }) => {
                ensure!(seen == b"partial", "{shell}: seen {:?}", String::from_utf8_lossy(&seen))
            }
            other => return Err(format!("{shell}: expected ExpectTimeout, got {other:?}").into()),
        }
        // Nothing was consumed: the same bytes are there for the next expect.
        ensure!(r.expect(Stream::Stdout, b"partial", WAIT)? == b"partial", "{shell}: kept");
        r.write_stdin(b"it\n")?;
        ensure!(r.expect(Stream::Stdout, b"\n", WAIT)? == b" got it\n", "{shell}: driven on");
        let out = r.wait()?;
        ensure!(out.stdout.is_empty() && out.exit_code == 0 && !out.timed_out, "{shell}: {out:?}");
        Ok(())
    })
}

fn write_stdin_streams_64_mib_exact(fx: &Fixture) -> R {
    let _heavy = crate::harness::heavy();
    each_shell(fx, "in-", |sh, shell| {
        let input = data(64 << 20, 7);
        let path = format!("/tmp/boxshell-fed-{}", tag());
        let mut r = sh.cmd(format!("cat > {path} && wc -c < {path}")).interactive().spawn()?;
        // In uneven pieces, as a program streaming a file would.
        for piece in input.chunks(3 << 20 | 12345) {
            r.write_stdin(piece)?;
        }
        r.close_stdin()?;
        let out = r.wait()?;
        ensure!(out.exit_code == 0 && out.stdout_str().trim() == (64u32 << 20).to_string(), "{shell}: {out:?}");
        let back = sh.read_file(&path)?;
        ensure!(back == input, "{shell}: {} bytes came back, not the same", back.len());
        sh.exec(&format!("rm -f {path}"))?.check()?;
        Ok(())
    })
}

fn echoed_input_cannot_block_the_writer(fx: &Fixture) -> R {
    let _heavy = crate::harness::heavy();
    each_shell(fx, "in-", |sh, shell| {
        // `cat` echoes everything: 8 MiB written without reading the output in between.
        let input = data(8 << 20, 9);
        let mut r = sh.cmd("cat").interactive().spawn()?;
        r.write_stdin(&input)?;
        r.close_stdin()?;
        let out = r.wait()?;
        ensure!(
            out.exit_code == 0 && out.stdout == input && out.stderr.is_empty(),
            "{shell}: {} bytes back",
            out.stdout.len()
        );
        Ok(())
    })
}

fn interactive_timeout_keeps_the_session(fx: &Fixture) -> R {
    each_shell(fx, "in-", |sh, shell| {
        sh.exec("cd /tmp && export KEPT=yes")?.check()?;
        let t = tag();
        // Reads for ever, and does not read at all after its first line.
        let mut r = sh
            .cmd(format!("read -r x; echo \"got $x\"; sleep {t}"))
            .interactive()
            .timeout(Duration::from_secs(2))
            .spawn()?;
        r.write_stdin(b"a\n")?;
        r.expect(Stream::Stdout, b"got a\n", WAIT)?;
        // 8 MiB more than anything reads (more than pipes and an ssh channel's window of 2 MiB
        // hold): the write is held up to the timeout, no longer.
        let blocked = r.write_stdin(&vec![b'x'; 8 << 20]);
        ensure!(matches!(blocked, Err(Error::CommandEnded { .. })), "{shell}: {blocked:?}");
        let out = r.wait()?;
        ensure!(out.timed_out && out.exit_code != 0, "{shell}: {out:?}");
        ensure!(fx.wait_gone(&format!("sleep {t}")).is_empty(), "{shell}: sleep left");
        let state = sh.exec("printf '%s|%s' \"$PWD\" \"$KEPT\"")?;
        ensure!(state.stdout == b"/tmp|yes", "{shell}: {state:?}");
        Ok(())
    })
}

fn close_stdin_gives_eof(fx: &Fixture) -> R {
    each_shell(fx, "in-", |sh, shell| {
        let mut r = sh.cmd("wc -l; echo done").interactive().spawn()?;
        r.write_stdin(b"1\n2\n3")?;
        r.close_stdin()?;
        r.close_stdin()?;
        ensure!(matches!(r.write_stdin(b"late"), Err(Error::StdinClosed { .. })), "{shell}: write after close");
        let out = r.wait()?;
        ensure!(out.stdout_str().split_whitespace().collect::<Vec<_>>() == ["2", "done"], "{shell}: {out:?}");
        // wait closes it too: a command reading to EOF ends.
        let out = sh.cmd("cat; echo end").interactive().spawn()?.wait()?;
        ensure!(out.stdout == b"end\n" && out.exit_code == 0, "{shell}: {out:?}");
        Ok(())
    })
}

fn command_exiting_with_input_pending(fx: &Fixture) -> R {
    each_shell(fx, "in-", |sh, shell| {
        let mut r = sh.cmd("(read -r x; echo \"first $x\"; exit 4)").interactive().spawn()?;
        r.write_stdin(b"a\nb\nc\n")?;
        match r.expect(Stream::Stdout, b"never", WAIT) {
            Err(Error::CommandEnded { output }) => {
                ensure!(output.exit_code == 4 && output.stdout == b"first a\n", "{shell}: {output:?}")
            }
            other => return Err(format!("{shell}: expected CommandEnded, got {other:?}").into()),
        }
        match r.write_stdin(b"more\n") {
            Err(Error::CommandEnded { output }) => ensure!(output.exit_code == 4, "{shell}: {output:?}"),
            other => return Err(format!("{shell}: expected CommandEnded, got {other:?}").into()),
        }
        let out = r.wait()?;
        ensure!(out.exit_code == 4 && out.stdout == b"first a\n", "{shell}: {out:?}");
        Ok(())
    })
}

fn not_interactive_reads_eof_and_refuses_input(fx: &Fixture) -> R {
    each_shell(fx, "in-", |sh, shell| {
        let mut r = sh.cmd("cat; echo eof").spawn()?;
        ensure!(matches!(r.write_stdin(b"x"), Err(Error::StdinClosed { .. })), "{shell}: write");
        ensure!(matches!(r.close_stdin(), Err(Error::StdinClosed { .. })), "{shell}: close");
        let out = r.wait()?;
        ensure!(out.stdout == b"eof\n", "{shell}: {out:?}");
        // Bytes given up front come first, then what is written.
        let mut r = sh.cmd("cat").stdin("first,").interactive().spawn()?;
        r.write_stdin(b"then")?;
        let out = r.wait()?;
        ensure!(out.stdout == b"first,then", "{shell}: {out:?}");
        Ok(())
    })
}

/// A real REPL: python3 -i prints its prompt on stderr and answers on stdout.
fn python_repl_driven_by_its_prompt(fx: &Fixture) -> R {
    let mut sh = fx.session();
    let mut r = sh.cmd("python3 -i -q").interactive().spawn()?;
    ensure!(r.expect(Stream::Stderr, b">>> ", WAIT)? == b">>> ", "first prompt");
    r.write_stdin(b"x = 6 * 7\n")?;
    ensure!(r.expect(Stream::Stderr, b">>> ", WAIT)? == b">>> ", "second prompt");
    r.write_stdin(b"print(x)\n")?;
    ensure!(r.expect(Stream::Stdout, b"\n", WAIT)? == b"42\n", "answer");
    r.expect(Stream::Stderr, b">>> ", WAIT)?;
    // A block: the continuation prompt, then the answer.
    r.write_stdin(b"for i in range(3):\n")?;
    ensure!(r.expect(Stream::Stderr, b"... ", WAIT)? == b"... ", "continuation prompt");
    r.write_stdin(b"    print(i, end=',')\n\n")?;
    ensure!(r.expect(Stream::Stdout, b"2,", WAIT)? == b"0,1,2,", "loop");
    r.write_stdin(b"raise SystemExit(5)\n")?;
    let out = r.wait()?;
    ensure!(out.exit_code == 5 && out.stdout.is_empty(), "{out:?}");
    ensure!(fx.wait_gone("python3 -i").is_empty(), "python3 left running");
    Ok(())
}
