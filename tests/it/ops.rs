//! The facade over tmux and containers, with real tmux (on a private socket) and a real engine;
//! every operation is checked against the backend's own view afterwards.

use std::time::Duration;

use boxshell::ops::{Backend, Ops, SessionDef};
use boxshell::{Error, State, Stop, Stream, Via};

use crate::ensure;
#[cfg(feature = "config")]
use crate::harness::Scratch;
use crate::harness::{Fixture, LABEL, TmuxFixture, cli, contain, engine, eventually, image, remove_container, unique};
use crate::{R, Test};

/// A container runtime and tmux on a socket of its own.
pub struct OpsFixture {
    pub containers: std::sync::Arc<Fixture>,
    pub tmux: TmuxFixture,
}

impl OpsFixture {
    fn ops(&self) -> Ops {
        Ops::new().tmux(boxshell::tmux::Tmux::new().socket(&self.tmux.socket)).runtime(self.containers.session_engine())
    }

    pub fn container_status(&self, name: &str) -> Option<String> {
        let out = cli(&self.containers.runtime)
            .args(["inspect", "--type", "container", "--format", "{{.State.Status}}", name])
            .output()
            .ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    pub fn tmux_has(&self, name: &str) -> bool {
        self.tmux.raw(&["has-session", "-t", &format!("={name}")]).is_ok()
    }
}

pub const TESTS: &[(&str, Test<OpsFixture>)] = &[
    ("tmux_session_lifecycle", tmux_session_lifecycle),
    ("container_session_lifecycle", container_session_lifecycle),
    ("defined_sessions_are_listed_as_defined", defined_sessions_are_listed_as_defined),
    ("names_are_found_in_either_backend_or_are_ambiguous", names_are_found_in_either_backend_or_are_ambiguous),
    ("exited_sessions_report_their_code_and_are_replaced", exited_sessions_report_their_code_and_are_replaced),
    #[cfg(feature = "config")]
    ("sessions_from_a_config_file", sessions_from_a_config_file),
];

fn name(prefix: &str) -> String {
    unique(prefix).replace('-', "_")
}

fn tmux_session_lifecycle(fx: &OpsFixture) -> R {
    let n = name("ops-t");
    let ops = fx.ops().define(&n, SessionDef::tmux("echo started; sleep 3600").env("MODE", "test"));
    let info = ops.start(&n)?;
    assert_eq!((info.backend, info.state), (Backend::Tmux, State::Running));
    ensure!(fx.tmux_has(&n), "tmux does not have {n}");
    assert!(matches!(ops.start(&n), Err(Error::AlreadyExists { .. })));
    ensure!(eventually(|| ops.logs(&n, None).is_ok_and(|l| l.stdout == b"started\n")), "logs");
    assert_eq!(ops.backend_of(&n)?, Some(Backend::Tmux));
    let listed = ops.list()?;
    ensure!(listed.iter().any(|s| s.name == n && s.state == State::Running && s.pid == info.pid), "{listed:?}");
    ops.stop(&n, Stop::Graceful(Duration::from_secs(5)))?;
    ensure!(!fx.tmux_has(&n), "tmux still has {n}");
    assert_eq!(ops.status(&n)?.state, State::Defined);
    Ok(())
}

fn container_session_lifecycle(fx: &OpsFixture) -> R {
    let n = name("ops-c");
    let def =
        SessionDef::container(image()).argv(["sh", "-c", "echo up; echo $MODE >&2; sleep 3600"]).env("MODE", "test");
    let ops = fx.ops().define(&n, def);
    let result = contain(|| -> R {
        let info = ops.start(&n)?;
        assert_eq!((info.backend, info.state), (Backend::Container, State::Running));
        assert_eq!(fx.container_status(&n).as_deref(), Some("running"));
        let label =
            engine(&fx.containers.runtime, &["inspect", "--format", "{{index .Config.Labels \"boxshell.ops\"}}", &n]);
        assert_eq!(label, n);
        ensure!(matches!(ops.start(&n), Err(Error::AlreadyExists { .. })), "started twice");
        // No terminal: each line on its own stream (the engine orders lines of one instant
        // on the two streams as it read them).
        ensure!(
            eventually(|| ops.logs(&n, None).is_ok_and(|l| {
                let (up, test) = ((Stream::Stdout, b"up\n".to_vec()), (Stream::Stderr, b"test\n".to_vec()));
                (l.stdout.as_slice(), l.stderr.as_slice()) == (b"up\n", b"test\n")
                    && (l.lines == [up.clone(), test.clone()] || l.lines == [test, up])
            })),
            "logs: {:?}",
            ops.logs(&n, None)
        );
        assert_eq!(ops.backend_of(&n)?, Some(Backend::Container));
        ensure!(ops.list()?.iter().any(|s| s.name == n && s.state == State::Running), "not listed");
        // Stop removes what boxshell created, so the next start applies the definition afresh.
        ops.stop(&n, Stop::Graceful(Duration::from_secs(5)))?;
        assert_eq!(fx.container_status(&n), None);
        assert_eq!(ops.status(&n)?.state, State::Defined);
        // With a terminal: stderr joins stdout, with CR LF line ends.
        ops.start_with(&n, SessionDef::default().tty(true))?;
        assert_eq!(fx.container_status(&n).as_deref(), Some("running"));
        ensure!(
            eventually(|| ops.logs(&n, None).is_ok_and(|l| l.stdout == b"up\r\ntest\r\n" && l.stderr.is_empty())),
            "logs with a terminal: {:?}",
            ops.logs(&n, None)
        );
        ops.stop(&n, Stop::Kill)?;
        assert_eq!(fx.container_status(&n), None);
        Ok(())
    });
    remove_container(&fx.containers.runtime, &n);
    result
}

fn defined_sessions_are_listed_as_defined(fx: &OpsFixture) -> R {
    let (t, c) = (name("ops-dt"), name("ops-dc"));
    let ops = fx
        .ops()
        .default_backend(Backend::Container)
        .define(&t, SessionDef::tmux("sleep 1"))
        .define(&c, SessionDef::default().image(image()));
    let listed = ops.list()?;
    let find = |n: &str| listed.iter().find(|s| s.name == n).cloned();
    let (dt, dc) = (find(&t).expect("tmux def"), find(&c).expect("container def"));
    assert_eq!((dt.backend, dt.state), (Backend::Tmux, State::Defined));
    assert_eq!((dc.backend, dc.state), (Backend::Container, State::Defined), "the default backend applies");
    assert_eq!(dc.image, Some(image()));
    assert_eq!(ops.status(&c)?.state, State::Defined);
    assert!(!ops.exists(&c)?);
    ensure!(matches!(ops.stop(&c, Stop::Kill), Err(Error::NotFound { .. })), "stop of a defined session");
    ensure!(matches!(ops.status("ops-nowhere"), Err(Error::NotFound { via: Via::Ops, .. })), "undefined, missing");
    // A container definition without an image cannot start.
    let ops = fx.ops().define("noimage", SessionDef::default().backend(Backend::Container));
    ensure!(matches!(ops.start("noimage"), Err(Error::Config { .. })), "no image");
    Ok(())
}

fn names_are_found_in_either_backend_or_are_ambiguous(fx: &OpsFixture) -> R {
    let ops = fx.ops();
    let (in_tmux, in_container, in_both) = (name("ops-it"), name("ops-ic"), name("ops-ib"));
    let rt = &fx.containers.runtime;
    for n in [&in_tmux, &in_both] {
        fx.tmux.raw(&["new-session", "-d", "-s", n, "sleep 3600"])?;
    }
    for n in [&in_container, &in_both] {
        engine(rt, &["run", "-d", "--init", "--label", LABEL, "--name", n, &image(), "sleep", "3600"]);
    }
    let result = contain(|| -> R {
        assert_eq!(ops.backend_of(&in_tmux)?, Some(Backend::Tmux));
        assert_eq!(ops.backend_of(&in_container)?, Some(Backend::Container));
        assert_eq!(ops.status(&in_container)?.state, State::Running);
        for r in [ops.backend_of(&in_both).map(drop), ops.status(&in_both).map(drop), ops.stop(&in_both, Stop::Kill)] {
            match r {
                Err(e @ Error::Ambiguous { .. }) => ensure!(e.to_string().contains(&in_both), "{e}"),
                other => return Err(format!("expected Ambiguous, got {other:?}").into()),
            }
        }
        ensure!(fx.tmux_has(&in_both) && fx.container_status(&in_both).is_some(), "an ambiguous stop touched one");
        assert_eq!(ops.backend_of(&name("ops-none"))?, None);
        // The verbs work on what they did not start: stop leaves a foreign container in place.
        ops.stop(&in_tmux, Stop::Kill)?;
        ensure!(!fx.tmux_has(&in_tmux), "tmux stop");
        ops.stop(&in_container, Stop::Kill)?;
        let status = fx.container_status(&in_container);
        // (podman says `stopped` until it has cleaned up after the process)
        ensure!(matches!(status.as_deref(), Some("exited" | "stopped")), "container stop: {status:?}");
        Ok(())
    });
    let _ = fx.tmux.raw(&["kill-session", "-t", &format!("={in_both}")]);
    for n in [&in_container, &in_both] {
        remove_container(rt, n);
    }
    result
}

fn exited_sessions_report_their_code_and_are_replaced(fx: &OpsFixture) -> R {
    let (t, c) = (name("ops-et"), name("ops-ec"));
    let ops =
        fx.ops().define(&t, SessionDef::tmux("exit 3")).define(&c, SessionDef::container(image()).command("exit 4"));
    let result = contain(|| -> R {
        ops.start(&t)?;
        ops.start(&c)?;
        ensure!(eventually(|| ops.status(&t).is_ok_and(|s| s.state == State::Exited)), "tmux exit");
        ensure!(eventually(|| ops.status(&c).is_ok_and(|s| s.state == State::Exited)), "container exit");
        assert_eq!(ops.status(&t)?.exit_code, Some(3));
        assert_eq!(ops.status(&c)?.exit_code, Some(4));
        // podman passes through "stopped" on the way.
        ensure!(eventually(|| fx.container_status(&c).as_deref() == Some("exited")), "{:?}", fx.container_status(&c));
        // Starting again replaces what exited.
        assert_eq!(ops.start(&t)?.backend, Backend::Tmux);
        let again = ops.start(&c)?;
        assert!(matches!(again.state, State::Running | State::Exited), "{again:?}");
        Ok(())
    });
    let _ = ops.stop(&t, Stop::Kill);
    remove_container(&fx.containers.runtime, &c);
    result
}

#[cfg(feature = "config")]
fn sessions_from_a_config_file(fx: &OpsFixture) -> R {
    let (t, c) = (name("cfg-t"), name("cfg-c"));
    let scratch = Scratch::new("bx-config")?;
    let path = scratch.write(
        "boxshell.toml",
        format!(
            r#"
[ops]
default_backend = "container"
socket_name = "{socket}"
container_runtime = "{runtime}"

[ops.sessions.{t}]
backend = "tmux"
command = "echo from-config-$MODE; sleep 3600"
env = {{ MODE = "file" }}

[ops.sessions.{c}]
image = "{image}"
command = ["sleep", "3600"]
"#,
            socket = fx.tmux.socket,
            runtime = fx.containers.runtime,
            image = image(),
        ),
    )?;
    let ops = Ops::from_file(&path)?;
    let result = contain(|| -> R {
        let listed = ops.list()?;
        ensure!(
            listed.iter().any(|s| s.name == t && s.state == State::Defined && s.backend == Backend::Tmux),
            "{listed:?}"
        );
        ensure!(
            listed.iter().any(|s| s.name == c && s.state == State::Defined && s.backend == Backend::Container),
            "{listed:?}"
        );
        // Arguments win over the file.
        ops.start_with(&t, SessionDef::default().env("MODE", "args"))?;
        ensure!(eventually(|| ops.logs(&t, None).is_ok_and(|l| l.stdout == b"from-config-args\n")), "env override");
        ops.start(&c)?;
        ensure!(fx.container_status(&c).as_deref() == Some("running"), "container from config");
        Ok(())
    });
    let _ = ops.stop(&t, Stop::Kill);
    remove_container(&fx.containers.runtime, &c);
    result?;
    // A mistake in the file names the file and the key.
    scratch.write("boxshell.toml", "[ops.sessions.web]\nimgae = \"x\"\n")?;
    let err = Ops::from_file(&path).unwrap_err();
    let text = err.to_string();
    ensure!(text.contains("boxshell.toml") && text.contains("ops.sessions.web.imgae"), "{text}");
    Ok(())
}
