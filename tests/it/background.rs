//! Background processes (`Cmd::background`): followed by their handle while the session runs
//! other commands, their output kept apart and bounded, interrupted with their whole tree,
//! twenty at once, and ended with the session. Every test runs with every shell of the fixture.

use std::time::{Duration, Instant};

use boxshell::{Error, Process, Session, Stream};

use crate::ensure;
use crate::harness::{Fixture, tag, unique};
use crate::{R, Test};

pub const TESTS: &[(&str, Test<Fixture>)] = &[
    ("a_server_like_process_is_followed_by_its_handle", a_server_like_process_is_followed_by_its_handle),
    ("interrupt_and_kill_end_the_whole_tree", interrupt_and_kill_end_the_whole_tree),
    ("twenty_at_once_and_their_exit_codes", twenty_at_once_and_their_exit_codes),
    ("output_of_100_mb_stays_within_the_cap", output_of_100_mb_stays_within_the_cap),
    ("closing_the_session_ends_them", closing_the_session_ends_them),
    ("refusals_and_waits_say_what_happened", refusals_and_waits_say_what_happened),
];

const WAIT: Duration = Duration::from_secs(30);

/// Waits until `count` processes whose command line holds `needle` run (up to 30 s).
fn wait_running(fx: &Fixture, needle: &str, count: usize) -> bool {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if fx.processes("").iter().filter(|l| l.contains(needle)).count() >= count {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn each_shell(fx: &Fixture, mut test: impl FnMut(&mut Session, &str) -> R) -> R {
    for shell in fx.shells() {
        let mut sh = fx.builder().shell(&shell).grace(Duration::from_secs(1)).open()?;
        test(&mut sh, &shell)?;
        let out = sh.exec("echo still")?;
        ensure!(out.stdout == b"still\n" && out.stderr.is_empty(), "{shell}: after: {out:?}");
        sh.close()?;
    }
    Ok(())
}

/// A command that prints, waits, prints: what a dev server does. `sleep` runs as its child,
/// found by the unique number it sleeps.
fn server(secs: &str) -> String {
    format!(
        "echo starting >&2; sleep 0.3; for i in 1 2 3; do echo \"line $i $A\"; done; sleep 0.3; \
         echo 'Serving HTTP' >&2; sleep 0.3; pwd; sleep {secs}; echo never"
    )
}

fn a_server_like_process_is_followed_by_its_handle(fx: &Fixture) -> R {
    each_shell(fx, |sh, shell| {
        let secs = format!("1000.{}", tag());
        let web = sh.cmd(server(&secs)).env("A", "a'b").workdir("/tmp").background()?;
        ensure!(web.is_running(), "{shell}: not running");
        let seen = web.wait_for(Stream::Stderr, b"Serving HTTP", WAIT)?;
        ensure!(seen == b"starting\nServing HTTP", "{shell}: {:?}", String::from_utf8_lossy(&seen));
        // The session goes on, and its commands see nothing of the background process.
        for _ in 0..3 {
            let out = sh.exec("echo other; echo err >&2")?;
            ensure!((out.stdout.as_slice(), out.stderr.as_slice()) == (b"other\n", b"err\n"), "{shell}: {out:?}");
        }
        ensure!(web.wait_for(Stream::Stdout, b"/tmp\n", WAIT)?.ends_with(b"line 3 a'b\n/tmp\n"), "{shell}: pwd");
        let logs = web.logs(None);
        let lines: Vec<(Stream, &[u8])> = logs.lines.iter().map(|(s, l)| (*s, l.as_slice())).collect();
        let want: [(Stream, &[u8]); 6] = [
            (Stream::Stderr, b"starting\n"),
            (Stream::Stdout, b"line 1 a'b\n"),
            (Stream::Stdout, b"line 2 a'b\n"),
            (Stream::Stdout, b"line 3 a'b\n"),
            (Stream::Stderr, b"Serving HTTP\n"),
            (Stream::Stdout, b"/tmp\n"),
        ];
        ensure!(lines == want, "{shell}: {lines:?}");
        ensure!(
            web.logs(Some(2)).lines.len() == 2 && logs.stdout == b"line 1 a'b\nline 2 a'b\nline 3 a'b\n/tmp\n",
            "{shell}"
        );
        let listed = sh.processes();
        ensure!(
            listed.len() == 1 && listed[0].pid == web.pid() && listed[0].running && listed[0].exit_code.is_none(),
            "{shell}: {listed:?}"
        );
        web.interrupt()?;
        ensure!(!web.is_running() && matches!(web.wait(WAIT), Some(130 | 137)), "{shell}: {:?}", web.wait(WAIT));
        ensure!(fx.wait_gone_containing(&secs).is_empty(), "{shell}: its sleep is still running");
        ensure!(!web.logs(None).stdout.ends_with(b"never\n"), "{shell}: it went on");
        Ok(())
    })
}

fn interrupt_and_kill_end_the_whole_tree(fx: &Fixture) -> R {
    each_shell(fx, |sh, shell| {
        let secs = format!("1000.{}", tag());
        // Children, grandchildren, a subshell loop, and one that ignores SIGINT.
        let tree = format!(
            "sleep {secs} & (sleep {secs} & sleep {secs}) & (trap '' INT; sleep {secs}) & \
             while :; do sleep {secs}; done & echo up; wait"
        );
        let p = sh.cmd(&tree).background()?;
        p.wait_for(Stream::Stdout, b"up\n", WAIT)?;
        ensure!(wait_running(fx, &secs, 5), "{shell}: not all up");
        let started = Instant::now();
        p.interrupt()?;
        ensure!(started.elapsed() < WAIT, "{shell}: interrupt took {:?}", started.elapsed());
        let left = fx.wait_gone_containing(&secs);
        ensure!(left.is_empty(), "{shell}: left: {left:?}");
        ensure!(matches!(p.wait(WAIT), Some(130 | 137)), "{shell}: {:?}", p.wait(WAIT));
        // kill: at once, and a second call is harmless.
        let secs = format!("1000.{}", tag());
        let q = sh.cmd(format!("sleep {secs}")).background()?;
        ensure!(wait_running(fx, &secs, 1), "{shell}: not up");
        q.kill()?;
        q.kill()?;
        ensure!(q.wait(WAIT) == Some(137), "{shell}: {:?}", q.wait(WAIT));
        ensure!(fx.wait_gone_containing(&secs).is_empty(), "{shell}: kill left it");
        // A PID that names another process now is not signalled: the session's own next
        // command runs on.
        let out = sh.exec("echo fine")?;
        ensure!(out.stdout == b"fine\n", "{shell}: {out:?}");
        Ok(())
    })
}

fn twenty_at_once_and_their_exit_codes(fx: &Fixture) -> R {
    each_shell(fx, |sh, shell| {
        let procs: Vec<Process> = (0..20)
            .map(|i| sh.cmd(format!("echo out {i}; echo err {i} >&2; sleep 0.5; exit {i}")).background())
            .collect::<boxshell::Result<_>>()?;
        for (i, p) in procs.iter().enumerate() {
            ensure!(p.wait(WAIT) == Some(i as i32), "{shell}: {i}: {:?}", p.wait(WAIT));
            let logs = p.logs(None);
            ensure!(logs.stdout == format!("out {i}\n").as_bytes(), "{shell}: {i}: {logs:?}");
            ensure!(logs.stderr == format!("err {i}\n").as_bytes(), "{shell}: {i}: {logs:?}");
        }
        // Under the session's `set -e` too, a failure is an exit code, not a process that
        // never ends.
        sh.exec("set -e")?;
        let p = sh.cmd("echo starting; exit 3").background()?;
        ensure!(p.wait(WAIT) == Some(3) && !p.is_running(), "{shell}: under set -e: {:?}", p.wait(WAIT));
        sh.exec("set +e")?;
        // Without handles the session keeps how they ended, not their output.
        drop(procs);
        let listed = sh.processes();
        ensure!(listed.len() == 21, "{shell}: {} listed", listed.len());
        for (i, p) in listed.iter().enumerate() {
            let want = if i == 20 { 3 } else { i as i32 };
            ensure!(!p.running && p.exit_code == Some(want), "{shell}: {p:?}");
        }
        Ok(())
    })
}

fn output_of_100_mb_stays_within_the_cap(fx: &Fixture) -> R {
    each_shell(fx, |sh, shell| {
        let cap = 1 << 20;
        let p = sh.cmd("head -c 100000000 /dev/zero | tr '\\0' x; echo; echo end").max_output(cap).background()?;
        ensure!(p.wait(Duration::from_secs(120)) == Some(0), "{shell}: {:?}", p.wait(WAIT));
        let logs = p.logs(None);
        ensure!(
            logs.stdout.len() == cap && logs.stdout.ends_with(b"xxx\nend\n"),
            "{shell}: {} bytes",
            logs.stdout.len()
        );
        let tail = p.logs(Some(1));
        ensure!(tail.lines == [(Stream::Stdout, b"end\n".to_vec())], "{shell}: {:?}", tail.lines.len());
        // Nothing of it on the container's disk: the session's directory holds no log.
        let dirs = sh.exec(&format!(
            "du -sk /dev/shm/.boxshell-{0} /tmp/.boxshell-{0} 2>/dev/null | cut -f1",
            sh.id().simple()
        ))?;
        let kib: u64 = dirs.stdout_str().split_whitespace().filter_map(|k| k.parse::<u64>().ok()).sum();
        ensure!(kib < 1024, "{shell}: {kib} KiB on disk");
        Ok(())
    })
}

fn closing_the_session_ends_them(fx: &Fixture) -> R {
    for shell in fx.shells() {
        let secs = format!("1000.{}", tag());
        let mut sh = fx.builder().shell(&shell).open()?;
        let p = sh.cmd(format!("sleep {secs} & sleep {secs}")).background()?;
        ensure!(wait_running(fx, &secs, 2), "{shell}: not up");
        sh.close()?;
        ensure!(fx.wait_gone_containing(&secs).is_empty(), "{shell}: left after close");
        ensure!(p.wait(WAIT).is_some() && !p.is_running(), "{shell}: still running after close");
        // Dropped, not closed: the same.
        let secs = format!("1000.{}", tag());
        let mut sh = fx.builder().shell(&shell).open()?;
        let _p = sh.cmd(format!("sleep {secs}")).background()?;
        drop(sh);
        ensure!(fx.wait_gone_containing(&secs).is_empty(), "{shell}: left after drop");
    }
    Ok(())
}

fn refusals_and_waits_say_what_happened(fx: &Fixture) -> R {
    each_shell(fx, |sh, shell| {
        let dir = format!("/tmp/{}", unique("bx-bg-missing"));
        let err = sh.cmd("echo ran").workdir(&dir).background().unwrap_err();
        ensure!(
            matches!(&err, Error::Fs { kind: std::io::ErrorKind::NotFound, path, .. } if *path == dir),
            "{shell}: {err:?}"
        );
        let with_stdin = sh.cmd("cat").stdin("x").background();
        ensure!(matches!(with_stdin, Err(Error::InvalidValue { .. })), "{shell}: {with_stdin:?}");
        ensure!(sh.processes().is_empty(), "{shell}: a refused one is listed");
        let p = sh.cmd("echo a; sleep 0.3; echo b").background()?;
        let timeout = p.wait_for(Stream::Stdout, b"never", Duration::from_millis(100));
        ensure!(matches!(&timeout, Err(Error::ExpectTimeout { seen, .. }) if seen == b"a\n"), "{shell}: {timeout:?}");
        ensure!(p.wait(Duration::from_millis(10)).is_none() || !p.is_running(), "{shell}");
        let ended = p.wait_for(Stream::Stdout, b"never", WAIT);
        match ended {
            Err(Error::CommandEnded { output }) => {
                ensure!(output.stdout == b"a\nb\n" && output.exit_code == 0, "{shell}: {output:?}")
            }
            other => return Err(format!("{shell}: expected CommandEnded, got {other:?}").into()),
        }
        ensure!(p.wait(WAIT) == Some(0) && p.wait_for(Stream::Stdout, b"", WAIT)?.is_empty(), "{shell}");
        Ok(())
    })
}
