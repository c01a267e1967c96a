//! tmux on a private socket; every operation is checked against tmux's own view afterwards.

use std::io::Read;
use std::time::{Duration, Instant, SystemTime};

use boxshell::tmux::{Keys, TmuxSpec};
use boxshell::{Error, State, Stop, Stream, Via};

use crate::ensure;
use crate::harness::{TmuxFixture, cmdline, eventually, helper, spawn_helper, unique};
use crate::{R, Test};

pub const TESTS: &[(&str, Test<TmuxFixture>)] = &[
    ("start_status_and_stop", start_status_and_stop),
    ("env_and_workdir_arrive", env_and_workdir_arrive),
    ("graceful_stop_sends_ctrl_c_and_honours_the_timeout", graceful_stop_sends_ctrl_c_and_honours_the_timeout),
    ("send_keys_with_and_without_enter", send_keys_with_and_without_enter),
    ("logs_keep_ansi_and_survive_the_command", logs_keep_ansi_and_survive_the_command),
    ("list_exists_and_exact_names", list_exists_and_exact_names),
    ("errors_name_the_session", errors_name_the_session),
    ("attach_replaces_the_process", attach_replaces_the_process),
    ("two_users_of_one_socket_whose_server_keeps_exiting", two_users_of_one_socket_whose_server_keeps_exiting),
    ("without_a_utf8_locale_status_and_logs_are_exact", without_a_utf8_locale_status_and_logs_are_exact),
];

fn name() -> String {
    unique("tx").replace('-', "_")
}

fn start_status_and_stop(fx: &TmuxFixture) -> R {
    let tmux = fx.tmux();
    let n = name();
    let before = SystemTime::now() - Duration::from_secs(2);
    let s = tmux.start(&TmuxSpec::new(&n).command("sleep 3600"))?;
    assert_eq!((s.name.as_str(), s.state, s.exit_code, s.windows), (n.as_str(), State::Running, None, 1));
    assert_eq!(s.socket.as_deref(), Some(fx.socket.as_str()));
    let pid = s.pid.expect("pid");
    // The pane's process may still be in the middle of its exec (an empty command line then).
    ensure!(eventually(|| cmdline(pid).contains("sleep 3600")), "pid {pid} is {}", cmdline(pid));
    assert!(s.created.expect("created") >= before);
    assert_eq!(fx.raw(&["display-message", "-p", "-t", &format!("={n}:"), "#{pane_pid}"])?.trim(), pid.to_string());
    tmux.stop(&n, Stop::Kill)?;
    ensure!(fx.raw(&["has-session", "-t", &format!("={n}")]).is_err(), "tmux still has {n}");
    ensure!(eventually(|| cmdline(pid).is_empty()), "the command outlived its session");
    Ok(())
}

fn env_and_workdir_arrive(fx: &TmuxFixture) -> R {
    let tmux = fx.tmux();
    let n = name();
    let value = "it's \"quoted\" $(id) and spaced";
    tmux.start(
        &TmuxSpec::new(&n).command("printf '%s|%s\\n' \"$PWD\" \"$TRICKY\"").workdir("/tmp").env("TRICKY", value),
    )?;
    ensure!(
        eventually(|| matches!(tmux.status(&n).map(|s| (s.state, s.exit_code)), Ok((State::Exited, Some(0))))),
        "did not finish"
    );
    let want = format!("/tmp|{value}\n");
    ensure!(eventually(|| tmux.logs(&n, None).is_ok_and(|l| l.stdout == want.as_bytes())), "{:?}", tmux.logs(&n, None));
    tmux.stop(&n, Stop::Kill)?;
    Ok(())
}

fn graceful_stop_sends_ctrl_c_and_honours_the_timeout(fx: &TmuxFixture) -> R {
    let tmux = fx.tmux();
    // A command that ends on C-c: stop returns as soon as it has, well before the timeout.
    let n = name();
    tmux.start(&TmuxSpec::new(&n).command("trap 'echo got-int; exit 5' INT; echo ready; while :; do sleep 0.1; done"))?;
    ensure!(eventually(|| tmux.logs(&n, None).is_ok_and(|l| l.stdout == b"ready\n")), "the command did not start");
    let start = Instant::now();
    tmux.stop(&n, Stop::Graceful(Duration::from_secs(10)))?;
    ensure!(start.elapsed() < Duration::from_secs(6), "took {:?}", start.elapsed());
    ensure!(!tmux.exists(&n)?, "still there");
    // A command that ignores C-c: stop waits the timeout, then kills the session.
    let n = name();
    let s = tmux.start(&TmuxSpec::new(&n).command("trap '' INT; echo ready; sleep 3600"))?;
    ensure!(eventually(|| tmux.logs(&n, None).is_ok_and(|l| l.stdout == b"ready\n")), "the command did not start");
    let start = Instant::now();
    tmux.stop(&n, Stop::Graceful(Duration::from_millis(1500)))?;
    let took = start.elapsed();
    ensure!(took >= Duration::from_millis(1400) && took < Duration::from_secs(5), "took {took:?}");
    ensure!(fx.raw(&["has-session", "-t", &format!("={n}")]).is_err(), "not killed");
    let pid = s.pid.expect("pid");
    ensure!(eventually(|| cmdline(pid).is_empty()), "the command outlived its session");
    Ok(())
}

fn send_keys_with_and_without_enter(fx: &TmuxFixture) -> R {
    let tmux = fx.tmux();
    let n = name();
    tmux.start(&TmuxSpec::new(&n).command("cat"))?;
    tmux.send_keys(&n, "typed", Keys::Only)?;
    tmux.send_keys(&n, " more", Keys::Enter)?;
    ensure!(
        eventually(|| tmux.logs(&n, None).is_ok_and(|l| l.stdout == b"typed more\ntyped more\n")),
        "{:?}",
        String::from_utf8_lossy(&tmux.logs(&n, None)?.stdout)
    );
    tmux.send_keys(&n, "C-d", Keys::Only)?;
    ensure!(
        eventually(|| matches!(tmux.status(&n).map(|s| (s.state, s.exit_code)), Ok((State::Exited, Some(0))))),
        "C-d did not end cat"
    );
    tmux.stop(&n, Stop::Kill)?;
    Ok(())
}

fn logs_keep_ansi_and_survive_the_command(fx: &TmuxFixture) -> R {
    let tmux = fx.tmux();
    let n = name();
    let script = "printf '\\033[31mred\\033[0m\\n'; for i in 1 2 3 4 5; do echo line$i; done; exit 3";
    tmux.start(&TmuxSpec::new(&n).command(script))?;
    ensure!(
        eventually(|| matches!(tmux.status(&n).map(|s| (s.state, s.exit_code)), Ok((State::Exited, Some(3))))),
        "no exit 3"
    );
    // capture-pane renders the screen's colours again: red, then back to the default colour.
    let want = b"\x1b[31mred\n\x1b[39mline1\nline2\nline3\nline4\nline5\n";
    // tmux may see the command exit a moment before it has drawn the last of its output.
    ensure!(
        eventually(|| tmux.logs(&n, None).is_ok_and(|l| l.stdout == want)),
        "{:?}",
        String::from_utf8_lossy(&tmux.logs(&n, None)?.stdout)
    );
    let last = tmux.logs(&n, Some(2))?;
    assert_eq!(last.stdout, b"line4\nline5\n");
    assert_eq!(last.lines, [(Stream::Stdout, b"line4\n".to_vec()), (Stream::Stdout, b"line5\n".to_vec())]);
    assert!(last.stderr.is_empty());
    assert_eq!(tmux.status(&n)?.pid, None);
    tmux.stop(&n, Stop::Graceful(Duration::from_secs(5)))?;
    ensure!(!tmux.exists(&n)?, "exited session not removed by stop");
    Ok(())
}

fn list_exists_and_exact_names(_: &TmuxFixture) -> R {
    // A socket of its own: other tests start sessions while this one compares lists.
    let own = TmuxFixture::new()?;
    let (fx, tmux) = (&own, own.tmux());
    let long = name();
    let short = &long[..long.len() - 1];
    tmux.start(&TmuxSpec::new(&long).command("sleep 3600"))?;
    // `tx_..._1` exists; its prefix must not be taken for it.
    ensure!(!tmux.exists(short)?, "prefix {short} matched {long}");
    ensure!(matches!(tmux.send_keys(short, "x", Keys::Only), Err(Error::NotFound { .. })), "send-keys by prefix");
    ensure!(matches!(tmux.stop(short, Stop::Kill), Err(Error::NotFound { .. })), "stop by prefix");
    ensure!(tmux.exists(&long)?, "{long}");
    let listed = tmux.list()?;
    let raw = fx.raw(&["list-sessions", "-F", "#{session_name}"])?;
    let mut names: Vec<&str> = listed.iter().map(|s| s.name.as_str()).collect();
    let mut want: Vec<&str> = raw.lines().collect();
    names.sort();
    want.sort();
    assert_eq!(names, want);
    tmux.stop(&long, Stop::Kill)?;
    // A socket with no server lists nothing.
    assert!(boxshell::tmux::Tmux::new().socket(unique("bx-empty")).list()?.is_empty());
    Ok(())
}

fn errors_name_the_session(fx: &TmuxFixture) -> R {
    let tmux = fx.tmux();
    let n = name();
    match tmux.status(&n) {
        Err(e @ Error::NotFound { .. }) => {
            ensure!(matches!(&e, Error::NotFound { via: Via::Tmux(Some(s)), .. } if *s == fx.socket), "{e:?}");
            ensure!(e.to_string().contains(&n) && e.to_string().contains(&fx.socket), "{e}")
        }
        other => return Err(format!("expected NotFound, got {other:?}").into()),
    }
    tmux.start(&TmuxSpec::new(&n).command("sleep 3600"))?;
    match tmux.start(&TmuxSpec::new(&n).command("sleep 1")) {
        Err(Error::AlreadyExists { state, .. }) => ensure!(state == State::Running, "{state}"),
        other => return Err(format!("expected AlreadyExists, got {other:?}").into()),
    }
    for bad in ["", "-t", "a:b", "a.b", "a b"] {
        ensure!(matches!(tmux.start(&TmuxSpec::new(bad)), Err(Error::InvalidName { .. })), "{bad:?}");
    }
    ensure!(matches!(tmux.start(&TmuxSpec::new("nul").env("K", "a\0b")), Err(Error::InvalidValue { .. })), "NUL");
    // A NUL in the command cannot reach tmux; that is not tmux missing.
    match tmux.start(&TmuxSpec::new("nul").command("a\0b")) {
        Err(Error::Io { .. }) => {}
        other => return Err(format!("expected Io, got {other:?}").into()),
    }
    let missing = boxshell::tmux::Tmux::new().program("/nonexistent/tmux").socket(&fx.socket);
    ensure!(matches!(missing.status(&n), Err(Error::RuntimeNotFound { .. })), "missing binary");
    tmux.stop(&n, Stop::Kill)?;
    Ok(())
}

fn attach_replaces_the_process(fx: &TmuxFixture) -> R {
    let tmux = fx.tmux();
    let n = name();
    tmux.start(&TmuxSpec::new(&n).command("sleep 3600"))?;
    // Without a terminal tmux refuses to attach, but only after it has replaced the helper.
    let mut helper = spawn_helper(&format!("attach-tmux:{}:{n}", fx.socket));
    let mut stderr = String::new();
    let read = helper.stderr.take().expect("stderr").read_to_string(&mut stderr);
    let status = helper.wait()?;
    read?;
    ensure!(!stderr.contains("helper:"), "attach returned to the caller: {stderr}");
    ensure!(stderr.contains("not a terminal"), "{stderr}");
    ensure!(status.code() != Some(3), "{status:?}");
    ensure!(matches!(tmux.attach(&name()), Error::NotFound { .. }), "missing session");
    tmux.stop(&n, Stop::Kill)?;
    Ok(())
}

fn two_users_of_one_socket_whose_server_keeps_exiting(_fx: &TmuxFixture) -> R {
    // Each thread starts and kills its only session: the server exits after every kill that
    // leaves it empty, also while the other thread's call is reaching it.
    let fx = TmuxFixture::new()?;
    let socket = fx.socket.clone();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let socket = socket.clone();
            std::thread::spawn(move || -> Result<(), String> {
                let tmux = boxshell::tmux::Tmux::new().socket(&socket);
                for _ in 0..25 {
                    let n = name();
                    tmux.start(&TmuxSpec::new(&n).command("sleep 30")).map_err(|e| format!("start: {e}"))?;
                    tmux.status(&n).map_err(|e| format!("status: {e}"))?;
                    tmux.stop(&n, Stop::Kill).map_err(|e| format!("stop: {e}"))?;
                    tmux.list().map_err(|e| format!("list: {e}"))?;
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread")?;
    }
    Ok(())
}

/// In a process without a UTF-8 locale (cron, a service, CI), tmux prints `_` for control and
/// non-ASCII bytes unless told otherwise: start, status and logs still work, and the logs keep
/// every byte. Run by a helper whose locale variables are removed.
fn without_a_utf8_locale_status_and_logs_are_exact(fx: &TmuxFixture) -> R {
    let n = name();
    let out = helper(&format!("tmux-c-locale:{}:{n}", fx.socket))
        .env_remove("LANG")
        .env_remove("LC_ALL")
        .env_remove("LC_CTYPE")
        .output()?;
    let (status, said) = (out.status, String::from_utf8_lossy(&out.stderr));
    let _ = fx.raw(&["kill-session", "-t", &format!("={n}")]);
    ensure!(status.success(), "helper: {status:?}: {said}");
    Ok(())
}

/// The helper's side of [`without_a_utf8_locale_status_and_logs_are_exact`].
pub fn run_c_locale_helper(socket: &str, n: &str) -> R {
    let tmux = boxshell::tmux::Tmux::new().socket(socket);
    tmux.start(&TmuxSpec::new(n).command(r"printf 'h\303\251 \342\234\223\n'; exec sleep 3600"))?;
    ensure!(tmux.status(n)?.state == State::Running, "not running");
    let want = "hé ✓\n".as_bytes();
    ensure!(eventually(|| tmux.logs(n, None).is_ok_and(|l| l.stdout == want)), "{:?}", tmux.logs(n, None)?.stdout);
    tmux.stop(n, Stop::Kill)?;
    Ok(())
}
