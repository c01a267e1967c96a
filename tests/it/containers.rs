//! Container lifecycle on real engines; every operation is checked against the engine's own
//! view (`inspect`, `ps`) afterwards.

use std::io::Read;
use std::time::{Duration, Instant, SystemTime};

use boxshell::container::{ContainerSpec, Containers, Scope, Volumes};
use boxshell::{Error, State, Stop, Stream};

use crate::ensure;
use crate::harness::{
    Fixture, LABEL, Scratch, cmdline, contain, engine, eventually, image, remove_container, spawn_helper, tag, unique,
};
use crate::{R, Test};

pub const TESTS: &[(&str, Test<Fixture>)] = &[
    ("run_status_stop_remove", run_status_stop_remove),
    ("env_values_arrive_and_stay_off_argv", env_values_arrive_and_stay_off_argv),
    ("stop_honours_the_timeout_when_pid1_ignores_sigterm", stop_honours_the_timeout_when_pid1_ignores_sigterm),
    ("kill_and_restart", kill_and_restart),
    ("logs_tail_streams_and_ansi", logs_tail_streams_and_ansi),
    ("logs_keep_the_order_lines_were_written", logs_keep_the_order_lines_were_written),
    ("logs_join_a_line_read_in_pieces", logs_join_a_line_read_in_pieces),
    ("list_managed_or_all", list_managed_or_all),
    ("names_errors_and_exists", names_errors_and_exists),
    ("exec_once_is_exact_and_times_out_cleanly", exec_once_is_exact_and_times_out_cleanly),
    ("session_on_a_container", session_on_a_container),
    ("copy_in_and_out", copy_in_and_out),
    ("drop_guard_removes", drop_guard_removes),
    ("attach_replaces_the_process", attach_replaces_the_process),
    ("volumes_and_log_volume", volumes_and_log_volume),
];

fn containers(fx: &Fixture) -> Containers {
    Containers::new(fx.session_engine())
}

/// What the engine itself says about a field of a container.
fn inspect(fx: &Fixture, name: &str, format: &str) -> String {
    engine(&fx.runtime, &["inspect", "--type", "container", "--format", format, name])
}

/// A spec that runs until stopped and stops at once (`--init`), labelled for the tests.
fn sleeper(name: &str) -> ContainerSpec {
    ContainerSpec::new(image()).name(name).command(["sleep", "3600"]).init().label("boxshell-test", "1")
}

fn run_status_stop_remove(fx: &Fixture) -> R {
    let c = containers(fx);
    let name = unique("bx-life");
    let before = SystemTime::now() - Duration::from_secs(5);
    let web = c.run(&sleeper(&name).label("role", "web server"))?.remove_on_drop();
    assert_eq!(web.name(), name);
    assert_eq!(inspect(fx, &name, "{{.State.Status}}"), "running");
    assert_eq!(inspect(fx, &name, "{{index .Config.Labels \"role\"}}"), "web server");
    let s = c.status(web.name())?;
    assert_eq!((s.state, s.engine_state.as_str(), s.managed), (State::Running, "running", true));
    assert_eq!(s.name, name);
    assert_eq!(s.id, web.id());
    assert!(s.id.len() == 64 && s.id.bytes().all(|b| b.is_ascii_hexdigit()), "{}", s.id);
    assert_eq!(s.pid.map(|p| p.to_string()), Some(inspect(fx, &name, "{{.State.Pid}}")));
    let created = s.created.expect("created");
    assert!(created > before && created < SystemTime::now() + Duration::from_secs(5), "{created:?}");
    assert!(s.image.contains("boxshell-test"), "{}", s.image);
    assert_eq!(s.exit_code, None);
    assert!(c.exists(&name)?);

    let start = Instant::now();
    c.stop(web.name(), Stop::Graceful(Duration::from_secs(10)))?;
    assert!(start.elapsed() < Duration::from_secs(8), "--init makes stop prompt: {:?}", start.elapsed());
    assert_eq!(inspect(fx, &name, "{{.State.Status}}"), "exited");
    let s = c.status(&name)?;
    assert_eq!((s.state, s.pid), (State::Exited, None));
    assert_eq!(s.exit_code.map(|c| c.to_string()), Some(inspect(fx, &name, "{{.State.ExitCode}}")));
    // Stopping what is stopped is fine.
    c.stop(&name, Stop::Graceful(Duration::from_secs(1)))?;
    c.start(&name)?;
    assert_eq!(inspect(fx, &name, "{{.State.Status}}"), "running");
    web.remove()?;
    assert!(!c.exists(&name)?);
    let out = crate::harness::cli(&fx.runtime).args(["inspect", "--type", "container", &name]).output()?;
    assert!(!out.status.success());
    Ok(())
}

fn env_values_arrive_and_stay_off_argv(fx: &Fixture) -> R {
    let c = containers(fx);
    let value = "it's \"quoted\" $(id) `id` with spaces\tand\ttabs";
    let name = unique("bx-env");
    let box_ = c.run(&sleeper(&name).env("SECRET", value).env("EMPTY", "")).map(|b| b.remove_on_drop())?;
    let out = c.exec(box_.name(), &["sh", "-c", "printf '%s|%s' \"$SECRET\" \"${EMPTY-unset}\""])?;
    assert_eq!(out.stdout_str(), format!("{value}|"));
    assert!(inspect(fx, &name, "{{json .Config.Env}}").contains("SECRET="));
    Ok(())
}

fn stop_honours_the_timeout_when_pid1_ignores_sigterm(fx: &Fixture) -> R {
    let c = containers(fx);
    let name = unique("bx-stubborn");
    // No --init: PID 1 is sleep, which the kernel does not let SIGTERM kill.
    let spec = ContainerSpec::new(image()).name(&name).command(["sleep", "3600"]).label("boxshell-test", "1");
    let stubborn = c.run(&spec)?.remove_on_drop();
    let start = Instant::now();
    c.stop(stubborn.name(), Stop::Graceful(Duration::from_millis(1500)))?;
    let took = start.elapsed();
    assert!(took >= Duration::from_secs(2) - Duration::from_millis(300), "stopped after {took:?}, before the timeout");
    assert!(took < Duration::from_secs(8), "took {took:?}: the default 10 s was used");
    assert_eq!(inspect(fx, &name, "{{.State.Status}}"), "exited");
    assert_eq!(inspect(fx, &name, "{{.State.ExitCode}}"), "137");
    Ok(())
}

fn kill_and_restart(fx: &Fixture) -> R {
    let c = containers(fx);
    let name = unique("bx-kill");
    let k = c.run(&sleeper(&name))?.remove_on_drop();
    let pid = c.status(k.name())?.pid;
    c.restart(&name, Stop::Graceful(Duration::from_secs(5)))?;
    assert_eq!(inspect(fx, &name, "{{.State.Status}}"), "running");
    assert_ne!(c.status(k.name())?.pid, pid, "restart made a new main process");
    c.kill(&name)?;
    // Podman passes through "stopped" while its clean-up process records the exit.
    ensure!(
        eventually(|| inspect(fx, &name, "{{.State.Status}}") == "exited"),
        "{}",
        inspect(fx, &name, "{{.State.Status}}")
    );
    assert_eq!(c.status(k.name())?.exit_code, Some(137));
    // Killing a stopped container is an error from the engine; stopping it is not.
    assert!(matches!(c.kill(&name), Err(Error::Failed { operation: "kill", .. })));
    c.stop(&name, Stop::Kill)?;
    Ok(())
}

fn logs_keep_the_order_lines_were_written(fx: &Fixture) -> R {
    let c = containers(fx);
    let name = unique("bx-logs-order");
    // The engine stamps each line as it reads it from its stream's pipe: pauses keep lines
    // of the two streams from being read in the same instant.
    let script =
        "echo o1; sleep 0.2; echo e1 >&2; sleep 0.2; echo o2; sleep 0.2; echo e2 >&2; sleep 0.2; echo o3; sleep 3600";
    let l = c.run(&ContainerSpec::new(image()).name(&name).command(["sh", "-c", script]).init())?.remove_on_drop();
    let line = |stream, text: &str| (stream, text.as_bytes().to_vec());
    let (out, err) = (Stream::Stdout, Stream::Stderr);
    let all = vec![line(out, "o1\n"), line(err, "e1\n"), line(out, "o2\n"), line(err, "e2\n"), line(out, "o3\n")];
    ensure!(
        eventually(|| c.logs(l.name(), None).is_ok_and(|logs| logs.lines.len() == 5)),
        "{:?}",
        c.logs(l.name(), None)
    );
    let logs = c.logs(l.name(), None)?;
    ensure!(logs.lines == all && logs.stdout == b"o1\no2\no3\n" && logs.stderr == b"e1\ne2\n", "{logs:?}");
    let tail = c.logs(l.name(), Some(3))?;
    ensure!(tail.lines == all[2..] && tail.stdout == b"o2\no3\n" && tail.stderr == b"e2\n", "{tail:?}");
    let tail = c.logs(l.name(), Some(1))?;
    ensure!(tail.lines == all[4..], "{tail:?}");
    Ok(())
}

fn logs_join_a_line_read_in_pieces(fx: &Fixture) -> R {
    let c = containers(fx);
    let name = unique("bx-logs-pieces");
    // A write without a newline (podman stamps it as a piece), a line of 1 MiB (docker cuts
    // it every 16 KiB), and times the container printed itself.
    let script = "printf a; sleep 0.3; printf 'b\\n'; head -c 1048577 /dev/zero | tr '\\0' x; echo; \
                  echo 'ts=2026-01-01T00:00:00Z ok'; echo '2026-01-01T00:00:00.5Z at the start'; echo end; sleep 3600";
    let l = c.run(&ContainerSpec::new(image()).name(&name).command(["sh", "-c", script]).init())?.remove_on_drop();
    let mut want = b"ab\n".to_vec();
    want.extend(std::iter::repeat_n(b'x', 1048577));
    want.extend_from_slice(b"\nts=2026-01-01T00:00:00Z ok\n2026-01-01T00:00:00.5Z at the start\nend\n");
    ensure!(
        eventually(|| c.logs(l.name(), None).is_ok_and(|logs| logs.stdout.ends_with(b"end\n"))),
        "{:?}",
        c.logs(l.name(), Some(1))
    );
    let logs = c.logs(l.name(), None)?;
    ensure!(logs.stdout == want, "{} bytes, not {}: {:?}", logs.stdout.len(), want.len(), logs.stdout.get(..200));
    assert_eq!(logs.lines.len(), 5);
    let tail = c.logs(l.name(), Some(2))?;
    assert_eq!(tail.stdout, b"2026-01-01T00:00:00.5Z at the start\nend\n");
    Ok(())
}

fn logs_tail_streams_and_ansi(fx: &Fixture) -> R {
    let c = containers(fx);
    let name = unique("bx-logs");
    // The two streams reach the log through separate pipes: a pause keeps their order.
    let script = "printf '\\033[31mred\\033[0m\\n'; echo err >&2; sleep 0.5; for i in 1 2 3 4 5; do echo line$i; done; sleep 3600";
    let l = c.run(&ContainerSpec::new(image()).name(&name).command(["sh", "-c", script]).init())?.remove_on_drop();
    let deadline = Instant::now() + Duration::from_secs(10);
    let logs = loop {
        let logs = c.logs(l.name(), None)?;
        if logs.stdout.ends_with(b"line5\n") || Instant::now() > deadline {
            break logs;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(logs.stdout, b"\x1b[31mred\x1b[0m\nline1\nline2\nline3\nline4\nline5\n");
    assert_eq!(logs.stderr, b"err\n");
    // The last two lines of the log over both streams, on every engine.
    let tail = c.logs(l.name(), Some(2))?;
    assert_eq!((tail.stdout.as_slice(), tail.stderr.as_slice()), (&b"line4\nline5\n"[..], &b""[..]));
    assert!(matches!(c.logs(&unique("bx-nope"), None), Err(Error::ContainerNotFound { .. })));
    Ok(())
}

fn list_managed_or_all(fx: &Fixture) -> R {
    let c = containers(fx);
    let managed = unique("bx-managed");
    let foreign = unique("bx-foreign");
    let _m = c.run(&sleeper(&managed))?.remove_on_drop();
    engine(&fx.runtime, &["run", "-d", "--init", "--label", LABEL, "--name", &foreign, &image(), "sleep", "3600"]);
    let result = contain(|| -> R {
        let mine = c.list(Scope::Managed)?;
        ensure!(mine.iter().any(|s| s.name == managed && s.managed), "managed one missing: {mine:?}");
        ensure!(!mine.iter().any(|s| s.name == foreign), "foreign one listed as managed");
        // Other tests create and remove containers meanwhile: every container the engine shows
        // both before and after the listing must be in it.
        let ids = || -> Vec<String> {
            engine(&fx.runtime, &["ps", "-a", "-q", "--no-trunc"]).lines().map(String::from).collect()
        };
        let before = ids();
        let all = c.list(Scope::All)?;
        let after = ids();
        ensure!(all.iter().any(|s| s.name == foreign && !s.managed && s.state == State::Running), "{all:?}");
        ensure!(all.iter().any(|s| s.name == managed), "{all:?}");
        let missing: Vec<_> =
            before.iter().filter(|id| after.contains(id) && !all.iter().any(|s| &s.id == *id)).collect();
        ensure!(missing.is_empty(), "the engine shows {missing:?}, the list does not: {all:?}");
        Ok(())
    });
    remove_container(&fx.runtime, &foreign);
    result
}

fn names_errors_and_exists(fx: &Fixture) -> R {
    let c = containers(fx);
    let missing = unique("bx-missing");
    assert!(!c.exists(&missing)?);
    match c.status(&missing) {
        Err(e @ Error::ContainerNotFound { .. }) => {
            let text = e.to_string();
            ensure!(text.contains(&missing) && text.contains(fx.runtime.name()), "{text}");
        }
        other => return Err(format!("expected ContainerNotFound, got {other:?}").into()),
    }
    for op in [c.start(&missing), c.stop(&missing, Stop::Kill), c.remove(&missing, Volumes::Keep)] {
        ensure!(matches!(op, Err(Error::ContainerNotFound { .. })), "{op:?}");
    }
    for bad in ["", "-rm", "--privileged", "a b", "x;id", "$(id)"] {
        ensure!(matches!(c.status(bad), Err(Error::InvalidName { .. })), "{bad:?}");
        ensure!(matches!(c.exists(bad), Err(Error::InvalidName { .. })), "{bad:?}");
    }
    let name = unique("bx-twice");
    let _first = c.run(&sleeper(&name))?.remove_on_drop();
    match c.run(&sleeper(&name)) {
        Err(Error::AlreadyExists { name: n, state, .. }) => {
            ensure!(n == name && state == State::Running, "{n} {state}")
        }
        other => return Err(format!("expected AlreadyExists, got {other:?}").into()),
    }
    let err = c.run(&ContainerSpec::new("boxshell-no-such-image:never").name(unique("bx-noimg"))).unwrap_err();
    ensure!(matches!(err, Error::Failed { operation: "run", .. }), "{err:?}");
    ensure!(err.to_string().contains("boxshell-no-such-image"), "{err}");
    Ok(())
}

fn exec_once_is_exact_and_times_out_cleanly(fx: &Fixture) -> R {
    let c = containers(fx);
    let out = c.exec(&fx.container, &["sh", "-c", "printf 'a\\000b\\377'; printf err >&2; exit 3"])?;
    assert_eq!((out.stdout.as_slice(), out.stderr.as_slice(), out.exit_code), (&b"a\0b\xff"[..], &b"err"[..], 3));
    assert!(!out.timed_out);
    // Arguments arrive literally: no shell in between.
    let out = c.exec(&fx.container, &["printf", "%s|", "a b", "$(id)", "'q'"])?;
    assert_eq!(out.stdout, b"a b|$(id)|'q'|");
    // A timeout kills what the exec started inside the container. (Long enough for the exec
    // to start on a loaded engine: podman serves the execs into one container one at a time,
    // and over docker's ssh transport each exec opens a connection.)
    let t = tag();
    let start = Instant::now();
    let quick = c.clone().timeout(fx.bound(5));
    let out = quick.exec(&fx.container, &["sh", "-c", &format!("echo started; sleep {t}; echo never")])?;
    assert!(out.timed_out && start.elapsed() < fx.bound(20), "{out:?}");
    assert_eq!(out.stdout, b"started\n");
    ensure!(fx.wait_gone(&format!("sleep {t}")).is_empty(), "sleep {t} outlived the exec timeout");
    // A program that does not exist is the command failing, not an error of the container.
    let out = c.exec(&fx.container, &["/no/such/program"])?;
    assert!(out.exit_code == 126 || out.exit_code == 127, "{out:?}");
    // A container that is not there, or not running.
    let missing = unique("bx-gone");
    ensure!(matches!(c.exec(&missing, &["true"]), Err(Error::ContainerNotFound { .. })), "missing");
    let stopped = unique("bx-stopped");
    engine(&fx.runtime, &["create", "--label", LABEL, "--name", &stopped, &image(), "true"]);
    let r = c.exec(&stopped, &["true"]);
    remove_container(&fx.runtime, &stopped);
    ensure!(matches!(r, Err(Error::ContainerNotRunning { .. })), "{r:?}");
    Ok(())
}

fn session_on_a_container(fx: &Fixture) -> R {
    let c = containers(fx);
    let name = unique("bx-sess");
    let b = c.run(&sleeper(&name).workdir("/tmp"))?.remove_on_drop();
    let mut sh = c.session(b.name()).open()?;
    assert_eq!(sh.exec("pwd; cd /; export A=1")?.stdout, b"/tmp\n");
    assert_eq!(sh.exec("echo $PWD$A")?.stdout, b"/1\n");
    assert_eq!(sh.runtime(), &fx.runtime);
    sh.close()?;
    Ok(())
}

fn copy_in_and_out(fx: &Fixture) -> R {
    let c = containers(fx);
    let name = unique("bx-cp");
    let _b = c.run(&sleeper(&name))?.remove_on_drop();
    let dir = Scratch::new("bx-cp-host")?;
    let data: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    dir.write("file.bin", &data)?;
    dir.write("tree/sub/leaf.txt", "leaf\n")?;
    contain(|| -> R {
        c.copy_in(&name, &dir.path("file.bin"), "/tmp/in.bin")?;
        c.copy_in(&name, &dir.path("tree"), "/tmp/tree")?;
        let out = c.exec(&name, &["cat", "/tmp/in.bin"])?;
        ensure!(out.stdout == data, "copied file differs ({} bytes)", out.stdout.len());
        let out = c.exec(&name, &["cat", "/tmp/tree/sub/leaf.txt"])?;
        ensure!(out.stdout == b"leaf\n", "{out:?}");
        c.copy_out(&name, "/tmp/tree", &dir.path("back"))?;
        ensure!(std::fs::read(dir.path("back/sub/leaf.txt"))? == b"leaf\n", "copied out");
        c.copy_out(&name, "/tmp/in.bin", &dir.path("back.bin"))?;
        ensure!(std::fs::read(dir.path("back.bin"))? == data, "copied out file differs");
        let err = c.copy_out(&name, "/no/such/path", &dir.path("x")).unwrap_err();
        ensure!(matches!(err, Error::Failed { operation: "copy", .. }), "{err:?}");
        Ok(())
    })
}

fn drop_guard_removes(fx: &Fixture) -> R {
    let c = containers(fx);
    let (guarded, kept) = (unique("bx-guarded"), unique("bx-kept"));
    drop(c.run(&sleeper(&guarded))?.remove_on_drop());
    drop(c.run(&sleeper(&kept))?);
    let result = contain(|| -> R {
        ensure!(!c.exists(&guarded)?, "the guarded container is still there");
        ensure!(inspect(fx, &kept, "{{.State.Status}}") == "running", "dropping a plain handle removed it");
        Ok(())
    });
    remove_container(&fx.runtime, &kept);
    result
}

fn attach_replaces_the_process(fx: &Fixture) -> R {
    let c = containers(fx);
    let name = unique("bx-attach");
    let script = "while :; do echo tick; sleep 0.2; done";
    let _t = c.run(&ContainerSpec::new(image()).name(&name).command(["sh", "-c", script]).init())?.remove_on_drop();
    let mut helper = spawn_helper(&format!("attach-container:{}:{name}", fx.runtime));
    let pid = helper.id();
    let mut stdout = helper.stdout.take().expect("stdout");
    let mut got = [0u8; 5];
    let read = stdout.read_exact(&mut got);
    let line = cmdline(pid);
    let _ = helper.kill();
    let _ = helper.wait();
    read?;
    assert_eq!(&got, b"tick\n");
    ensure!(line.contains(&format!("attach --sig-proxy=false -- {name}")), "the process is not the attach: {line}");
    // Attaching to what is not running is an error, and leaves the process alone.
    let stopped = unique("bx-attach-stopped");
    engine(&fx.runtime, &["create", "--label", LABEL, "--name", &stopped, &image(), "true"]);
    let err = c.attach(&stopped);
    remove_container(&fx.runtime, &stopped);
    ensure!(matches!(err, Error::ContainerNotRunning { .. }), "{err:?}");
    ensure!(matches!(c.attach(&unique("bx-none")), Error::ContainerNotFound { .. }), "missing");
    Ok(())
}

fn volumes_and_log_volume(fx: &Fixture) -> R {
    let c = containers(fx);
    let dir = Scratch::new("bx-vol")?;
    let logs = dir.path("logs");
    dir.write("data/in.txt", "from host\n")?;
    let name = unique("bx-vol");
    let spec = ContainerSpec::new(image())
        .name(&name)
        .command(["sh", "-c", "cat /data/in.txt > /logs/app.log; sleep 3600"])
        .volume(format!("{}:/data:ro", dir.path("data").display()))
        .log_volume(format!("{}:/logs", logs.display()))
        .init();
    let v = c.run(&spec)?.remove_on_drop();
    let result = contain(|| -> R {
        // The shell creates the file before `cat` fills it: wait for the content, not the name.
        let log = || std::fs::read(logs.join("app.log")).unwrap_or_default();
        ensure!(eventually(|| log() == b"from host\n"), "log volume: {:?}", String::from_utf8_lossy(&log()));
        let out = c.exec(v.name(), &["sh", "-c", "echo x > /data/new 2>/dev/null || echo read-only"])?;
        ensure!(out.stdout == b"read-only\n", "{out:?}");
        Ok(())
    });
    v.remove()?;
    // The logs outlive the container.
    let kept = std::fs::read(logs.join("app.log"));
    result?;
    ensure!(kept? == b"from host\n", "log volume gone with the container");
    Ok(())
}
