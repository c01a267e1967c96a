//! The `boxshell` command (feature `cli`), run as a built binary against real tmux, docker
//! and podman: what it prints, on which stream, and its exit codes.

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::ensure;
use boxshell::Runtime;

use crate::harness::{
    Scratch, cli, contain, engine, eventually, image, remove_container, run_container, unique, wait_child,
};
use crate::ops::OpsFixture;
use crate::{R, Test};

pub const TESTS: &[(&str, Test<OpsFixture>)] = &[
    ("cli_ops_lifecycle_from_a_config_file", cli_ops_lifecycle_from_a_config_file),
    ("cli_ops_errors_and_usage", cli_ops_errors_and_usage),
    ("cli_ops_flags_override_the_definition_for_every_verb", cli_ops_flags_override_the_definition_for_every_verb),
    ("cli_exec_passes_bytes_and_exit_codes", cli_exec_passes_bytes_and_exit_codes),
    ("cli_exec_i_feeds_stdin", cli_exec_i_feeds_stdin),
    ("cli_shell_keeps_state_and_survives_ctrl_c", cli_shell_keeps_state_and_survives_ctrl_c),
    ("cli_version_and_help_per_command", cli_version_and_help_per_command),
    ("cli_completions_for_bash_zsh_and_fish", cli_completions_for_bash_zsh_and_fish),
    ("cli_shell_reads_a_pipe_as_sh_s_does", cli_shell_reads_a_pipe_as_sh_s_does),
    ("cli_shell_prompts_on_a_terminal", cli_shell_prompts_on_a_terminal),
    ("cli_a_target_on_two_engines_needs_runtime", cli_a_target_on_two_engines_needs_runtime),
    ("cli_exec_and_shell_take_docker_exec_options", cli_exec_and_shell_take_docker_exec_options),
];

fn boxshell<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_boxshell"));
    cmd.args(args).env_remove("BOXSHELL_CONFIG").stdin(Stdio::null());
    cmd
}

fn run<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Result<Output, libtest_mimic::Failed> {
    Ok(boxshell(args).output()?)
}

/// Runs the tool with `input` on its stdin (written whole, then closed).
fn fed(cmd: &mut Command, input: &[u8]) -> Result<Output, libtest_mimic::Failed> {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let mut stdin = child.stdin.take().ok_or("stdin")?;
    let input = input.to_vec();
    // A command that stops reading breaks this pipe: not an error here.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output()?;
    writer.join().map_err(|_| "writer panicked")?;
    Ok(out)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// An exit code and stderr of exactly one line that names `name`.
fn failed(out: &Output, code: i32, name: &str) -> R {
    let err = text(&out.stderr);
    ensure!(
        out.status.code() == Some(code) && err.lines().count() == 1 && err.contains(name) && out.stdout.is_empty(),
        "want exit {code} and one line naming {name}: {:?}, stdout {:?}, stderr {err:?}",
        out.status.code(),
        text(&out.stdout)
    );
    Ok(())
}

fn json(out: &Output) -> Result<Value, libtest_mimic::Failed> {
    ensure!(out.status.success(), "exit {:?}: {}", out.status.code(), text(&out.stderr));
    Ok(serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {:?}", text(&out.stdout)))?)
}

/// The state `status --json` gives for `name`.
fn state(config: &str, name: &str) -> Result<String, libtest_mimic::Failed> {
    let v = json(&run(&["--config", config, "ops", "status", name, "--json"])?)?;
    Ok(v[0]["state"].as_str().unwrap_or_default().to_string())
}

fn cli_ops_lifecycle_from_a_config_file(fx: &OpsFixture) -> R {
    let (t, c) = (unique("cli_t").replace('-', "_"), unique("cli_c").replace('-', "_"));
    let scratch = Scratch::new("bx-cli")?;
    let config = lifecycle_config(fx, &scratch, &t, &c)?;
    let result = contain(|| -> R {
        listed_as_defined(&config, &t, &c)?;
        tmux_lifecycle(fx, &config, &t)?;
        container_lifecycle(fx, &config, &c)
    });
    let _ = fx.tmux.raw(&["kill-session", "-t", &format!("={t}")]);
    remove_container(&fx.containers.runtime, &c);
    result
}

/// A config file (its path) defining the tmux session `t` and the container session `c`, on
/// the fixture's socket and runtime, each printing lines for its logs.
fn lifecycle_config(fx: &OpsFixture, scratch: &Scratch, t: &str, c: &str) -> Result<String, libtest_mimic::Failed> {
    let config = scratch.write(
        "boxshell.toml",
        format!(
            r#"
[ops]
socket = "{socket}"

[ops.sessions.{t}]
command = "echo one; echo two; echo three-$MODE; sleep 3600"
env = {{ MODE = "file" }}

[ops.sessions.{c}]
backend = "container"
runtime = "{runtime}"
image = "{image}"
# Apart in time: the engine orders the two streams by when it read them.
command = "echo out-1; sleep 0.3; echo err-1 >&2; sleep 0.3; echo out-2; sleep 3600"
"#,
            socket = fx.tmux.socket,
            runtime = fx.containers.runtime,
            image = image(),
        ),
    )?;
    Ok(config.to_string_lossy().into_owned())
}

/// Defined before they start, in a table and as JSON.
fn listed_as_defined(config: &str, t: &str, c: &str) -> R {
    let out = run(&["ops", "list", "--config", config])?;
    let table = text(&out.stdout);
    ensure!(out.status.success() && table.starts_with("NAME"), "{out:?}");
    for name in [t, c] {
        ensure!(table.lines().any(|l| l.starts_with(name) && l.contains("defined")), "{table}");
    }
    let listed = json(&run(&["--json", "--config", config, "ops", "list"])?)?;
    let defined =
        |name: &str| listed.as_array().is_some_and(|a| a.iter().any(|s| s["name"] == name && s["state"] == "defined"));
    ensure!(defined(t) && defined(c), "{listed}");
    Ok(())
}

/// The tmux session `t`: start with an override, status, logs in order, stop.
fn tmux_lifecycle(fx: &OpsFixture, config: &str, t: &str) -> R {
    let out = run(&["--config", config, "ops", "start", t, "-e", "MODE=args"])?;
    ensure!(out.status.success() && text(&out.stdout).contains("running"), "{out:?}");
    ensure!(fx.tmux_has(t), "tmux does not have {t}");
    ensure!(state(config, t)? == "running", "status of {t}");
    let mut last = None;
    ensure!(
        eventually(|| {
            let out = run(&["--config", config, "ops", "logs", t, "-n", "2"]).ok();
            let done = out.as_ref().is_some_and(|o| o.stdout == b"two\nthree-args\n");
            last = out;
            done
        }),
        "logs -n 2 of {t}: {last:?}"
    );
    let out = run(&["--config", config, "ops", "exists", t])?;
    ensure!(out.status.success() && text(&out.stdout).contains("tmux"), "{out:?}");
    let out = run(&["--config", config, "ops", "stop", t, "--timeout", "5"])?;
    ensure!(out.status.success(), "{out:?}");
    ensure!(eventually(|| !fx.tmux_has(t)), "{t} still in tmux");
    ensure!(state(config, t)? == "defined", "after stop");
    Ok(())
}

/// The container session `c`: start, status from the engine, logs in the order written, stop.
fn container_lifecycle(fx: &OpsFixture, config: &str, c: &str) -> R {
    let out = run(&["--config", config, "--json", "ops", "start", c])?;
    ensure!(json(&out)?[0]["state"] == "running", "{out:?}");
    ensure!(fx.container_status(c).as_deref() == Some("running"), "engine says {:?}", fx.container_status(c));
    // Listed from the runtime its definition names, whatever the facade detects.
    let out = run(&["--config", config, "ops", "list"])?;
    ensure!(text(&out.stdout).lines().any(|l| l.starts_with(c) && l.contains("running")), "{out:?}");
    let mut last = None;
    ensure!(
        eventually(|| {
            let out = run(&["--config", config, "ops", "logs", c, "-n", "2", "--json"]).ok();
            // Each line from its own stream, as written, newline kept.
            let lines = out.as_ref().map(json_log_lines).unwrap_or_default();
            last = out;
            lines == [("stderr".into(), "err-1\n".into()), ("stdout".into(), "out-2\n".into())]
        }),
        "logs -n 2 --json of {c}: {last:?}"
    );
    // Without --json: each line on its own stream.
    let out = run(&["--config", config, "ops", "logs", c, "-n", "3"])?;
    ensure!(out.stdout == b"out-1\nout-2\n" && out.stderr == b"err-1\n" && out.status.success(), "{out:?}");
    let out = run(&["--config", config, "ops", "stop", c, "--kill"])?;
    ensure!(out.status.success(), "{out:?}");
    ensure!(eventually(|| fx.container_status(c).is_none()), "{c} is left: {:?}", fx.container_status(c));
    let out = run(&["--config", config, "ops", "exists", c])?;
    ensure!(out.status.code() == Some(1) && text(&out.stdout).contains("does not exist"), "{out:?}");
    Ok(())
}

/// The lines `logs --json` printed, as (stream, line); none if it printed no JSON array.
fn json_log_lines(out: &Output) -> Vec<(String, String)> {
    serde_json::from_slice::<Value>(&out.stdout)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|l| (l["stream"].as_str().unwrap_or_default().into(), l["line"].as_str().unwrap_or_default().into()))
        .collect()
}

/// `--runtime` and `--socket` win over the definition for every verb, not only `start`: a
/// session started with them is found, shown, logged and stopped with them.
fn cli_ops_flags_override_the_definition_for_every_verb(fx: &OpsFixture) -> R {
    let (t, c) = (unique("cli_ot").replace('-', "_"), unique("cli_oc").replace('-', "_"));
    let runtime = fx.containers.runtime.to_string();
    // The definitions name another runtime and another socket than the ones used.
    let other = if runtime == "docker" { "podman" } else { "docker" };
    let scratch = Scratch::new("bx-cli-over")?;
    let config = scratch.write(
        "boxshell.toml",
        format!(
            r#"
[ops.sessions.{t}]
command = "echo tmux-up; sleep 3600"
socket = "{t}-elsewhere"

[ops.sessions.{c}]
backend = "container"
runtime = "{other}"
image = "{image}"
command = "echo container-up; sleep 3600"
"#,
            image = image(),
        ),
    )?;
    let config = config.to_string_lossy().into_owned();
    let socket = fx.tmux.socket.clone();
    let result = contain(|| -> R {
        for (name, flag, value) in [(&t, "--socket", &socket), (&c, "--runtime", &runtime)] {
            let with = |args: &[&str]| -> Result<Output, libtest_mimic::Failed> {
                let mut all = vec!["--config", config.as_str(), flag, value.as_str()];
                all.extend_from_slice(args);
                run(&all)
            };
            let out = with(&["ops", "start", name])?;
            ensure!(out.status.success(), "start {name} {flag} {value}: {out:?}");
            let status = json(&with(&["ops", "status", name, "--json"])?)?;
            ensure!(status[0]["state"] == "running", "status {name} {flag} {value}: {status}");
            let out = with(&["ops", "exists", name])?;
            ensure!(out.status.success(), "exists {name} {flag} {value}: {out:?}");
            let up = if flag == "--socket" { "tmux-up\n" } else { "container-up\n" };
            let mut last = None;
            ensure!(
                eventually(|| {
                    let out = with(&["ops", "logs", name, "-n", "1"]).ok();
                    let done = out.as_ref().is_some_and(|o| o.stdout == up.as_bytes());
                    last = out;
                    done
                }),
                "logs {name} {flag} {value}: {last:?}"
            );
            let out = with(&["ops", "stop", name, "--kill"])?;
            ensure!(out.status.success(), "stop {name} {flag} {value}: {out:?}");
        }
        ensure!(eventually(|| !fx.tmux_has(&t)), "{t} still in tmux");
        ensure!(eventually(|| fx.container_status(&c).is_none()), "{c} is left: {:?}", fx.container_status(&c));
        Ok(())
    });
    let _ = fx.tmux.raw(&["kill-session", "-t", &format!("={t}")]);
    remove_container(&fx.containers.runtime, &c);
    result
}

fn cli_ops_errors_and_usage(fx: &OpsFixture) -> R {
    let runtime = fx.containers.runtime.to_string();
    let socket = fx.tmux.socket.clone();
    let missing = unique("cli_none").replace('-', "_");
    let base = ["--runtime", runtime.as_str(), "--socket", socket.as_str()];
    let with = |more: &[&str]| -> Vec<String> { base.iter().chain(more).map(|s| s.to_string()).collect() };
    // Unknown names: exit 1, one line naming the session.
    for verb in ["status", "stop", "logs", "attach"] {
        let v = with(&["ops", verb, &missing]);
        failed(&run(&v)?, 1, &missing)?;
    }
    // A container session without an image.
    let v = with(&["ops", "start", &missing, "--backend", "container"]);
    failed(&run(&v)?, 1, &missing)?;
    // Already running: exit 1, the container named, and the backend.
    let name = unique("cli_dup").replace('-', "_");
    let v = with(&["ops", "start", &name, "--backend", "container", "--image", &image(), "--command", "sleep 3600"]);
    let result = contain(|| -> R {
        ensure!(run(&v)?.status.success(), "first start");
        let again = run(&v)?;
        failed(&again, 1, &name)?;
        ensure!(text(&again.stderr).contains(&runtime), "{again:?}");
        Ok(())
    });
    remove_container(&fx.containers.runtime, &name);
    result?;
    // A config file that is wrong names the file and the key.
    let scratch = Scratch::new("bx-cli-bad")?;
    let bad = scratch.write("bad.toml", "[ops]\nbogus = 1\n")?;
    let out = boxshell(&["ops", "list"]).env("BOXSHELL_CONFIG", &bad).output()?;
    failed(&out, 1, "ops.bogus")?;
    // A runtime named wrongly in the environment: that error, not "no runtime answers".
    for verb in [&["status", &missing][..], &["start", &missing, "--backend", "container", "--image", "x"]] {
        let out = boxshell(&[&["ops"], verb].concat()).env("BOXSHELL_RUNTIME", "nerd").output()?;
        failed(&out, 1, "invalid runtime \"nerd\"")?;
    }
    // A TOML syntax error: one line, with where it is.
    let bad = scratch.write("syntax.toml", "[ops]\nsocket = \n")?;
    let out = run(&["--config", &bad.to_string_lossy(), "ops", "list"])?;
    failed(&out, 1, "line 2, column 10")?;
    // Usage errors: exit 2, one line naming what is wrong and whose help to see, nothing run.
    let usages: &[(&[&str], &str, &str)] = &[
        (&["ops", "frob", "x"], "frob", "ops"),
        (&["ops", "stop"], "NAME", "ops stop"),
        (&["ops"], "no command given; one of list, start, stop", "ops"),
        (&["ops", "list", "--nope"], "--nope", "ops list"),
        (&["ops", "list", "extra"], "extra", "ops list"),
        (&["ops", "list", "--kill"], "--kill", "ops list"),
        (&["ops", "stop", "x", "--kill", "--timeout", "1"], "--kill", "ops stop"),
        (&["ops", "status", "x", "-n", "3"], "-n", "ops status"),
        (&["ops", "start", "x", "--lines", "3"], "--lines", "ops start"),
        (&["ops", "start", "x", "-e", "=v"], "=v", "ops start"),
        (&["ops", "list", "--backend", "vm"], "vm", "ops list"),
        (&["exec", "--json", "-", "--", "true"], "--json", "exec"),
        (&["--json", "exec", "-", "--", "true"], "exec does not take --json", "exec"),
        (&["exec", "-", "true"], "--", "exec"),
        (&["exec", "-", "--"], "WORDS", "exec"),
        (&["exec", "--runtime", "nerd", "-", "--", "true"], "nerd", "exec"),
        (&["exec", "--timeout", "soon", "-", "--", "true"], "soon", "exec"),
        (&["exec", "-e", "=v", "-", "--", "true"], "=v", "exec"),
        (&["shell", "--timeout", "1", "-"], "--timeout", "shell"),
        (&["shell", "-", "--", "true"], "'true'", "shell"),
        (&["completions", "tcsh"], "tcsh", "completions"),
        (&["help", "frob"], "frob", ""),
        (&[], "no command given", ""),
    ];
    for &(usage, names, command) in usages {
        let out = run(usage)?;
        let err = text(&out.stderr);
        let help = if command.is_empty() {
            "(see boxshell --help)\n".to_string()
        } else {
            format!("(see boxshell {command} --help)\n")
        };
        ensure!(
            out.status.code() == Some(2)
                && err.lines().count() == 1
                && err.starts_with("boxshell: ")
                && err.contains(names)
                && err.ends_with(&help)
                && out.stdout.is_empty(),
            "{usage:?}: {out:?}"
        );
    }
    // A reader that goes away early ends nothing badly: no panic, exit 0.
    for args in [&["--help"][..], &["exec", "--help"], &["completions", "bash"], &["--socket", &socket, "ops", "list"]]
    {
        let mut child = boxshell(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
        drop(child.stdout.take());
        let out = child.wait_with_output()?;
        ensure!(out.status.success() && out.stderr.is_empty(), "{args:?} into a closed pipe: {out:?}");
    }
    Ok(())
}

fn cli_exec_passes_bytes_and_exit_codes(fx: &OpsFixture) -> R {
    let runtime = fx.containers.runtime.to_string();
    let container = fx.containers.container.clone();
    for (target, rt) in [(container.as_str(), runtime.as_str()), ("-", "local")] {
        // The words after `--` make one line; output byte for byte, each on its stream.
        let out =
            run(&["exec", "--runtime", rt, target, "--", "printf", "'a\\000b\\r\\n'; cd /tmp && pwd >&2; (exit 3)"])?;
        ensure!(
            out.stdout == b"a\0b\r\n" && out.stderr == b"/tmp\n" && out.status.code() == Some(3),
            "{target}: {out:?}"
        );
        // `exit` ends the shell: its code is the tool's.
        let out = run(&["exec", "--runtime", rt, target, "--", "echo bye; exit 4"])?;
        ensure!(out.stdout == b"bye\n" && out.status.code() == Some(4), "{target}: {out:?}");
        // A timeout: 124, as timeout(1) gives, with the output so far.
        let start = Instant::now();
        let out =
            run(&["exec", "--timeout", "1", "--runtime", rt, target, "--", "echo started; sleep 30; echo never"])?;
        ensure!(
            out.stdout == b"started\n" && out.status.code() == Some(124) && start.elapsed() < Duration::from_secs(20),
            "{target}: {out:?} after {:?}",
            start.elapsed()
        );
    }
    let missing = unique("cli-missing");
    failed(&run(&["exec", "--runtime", &runtime, &missing, "--", "true"])?, 1, &missing)?;
    Ok(())
}

/// `exec -i`: the command reads this program's stdin, exact at 5 MiB of every byte value;
/// without `-i` it reads EOF; a command that stops reading ends the tool all the same.
fn cli_exec_i_feeds_stdin(fx: &OpsFixture) -> R {
    let runtime = fx.containers.runtime.to_string();
    let container = fx.containers.container.clone();
    let input: Vec<u8> = (0..5u32 << 20).map(|i| (i ^ (i >> 11)) as u8).collect();
    let fed = |args: &[&str], input: &[u8]| fed(&mut boxshell(args), input);
    for (target, rt) in [(container.as_str(), runtime.as_str()), ("-", "local")] {
        let out = fed(&["exec", "-i", "--runtime", rt, target, "--", "cat; echo end >&2"], &input)?;
        ensure!(
            out.stdout == input && out.stderr == b"end\n" && out.status.success(),
            "{target}: {} bytes back of {}, {:?} {:?}",
            out.stdout.len(),
            input.len(),
            out.status,
            text(&out.stderr)
        );
        let out = fed(&["exec", "--runtime", rt, target, "--", "wc -c"], b"not read")?;
        ensure!(text(&out.stdout).trim() == "0" && out.status.success(), "{target} without -i: {out:?}");
        let start = Instant::now();
        let out = fed(&["exec", "-i", "--runtime", rt, target, "--", "head -c 3; exit 5"], &input)?;
        ensure!(
            out.stdout == input[..3] && out.status.code() == Some(5) && start.elapsed() < Duration::from_secs(20),
            "{target}, a command that stops reading: {out:?} after {:?}",
            start.elapsed()
        );
        // Endless input does not hold off the timeout: 124 within seconds, as `yes | timeout 1`.
        let mut child = boxshell(&["exec", "-i", "--timeout", "1", "--runtime", rt, target, "--", "cat >/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut stdin = child.stdin.take().ok_or("stdin")?;
        let writer = std::thread::spawn(move || {
            let chunk = vec![b'y'; 1 << 16];
            while stdin.write_all(&chunk).is_ok() {}
        });
        let start = Instant::now();
        let status = wait_child(&mut child, Duration::from_secs(20));
        let took = start.elapsed();
        let _ = child.kill();
        let out = child.wait_with_output()?;
        writer.join().map_err(|_| "writer panicked")?;
        ensure!(
            status.and_then(|s| s.code()) == Some(124) && took < Duration::from_secs(10),
            "{target}, endless input past the timeout: {status:?} after {took:?}, stderr {:?}",
            text(&out.stderr)
        );
    }
    let out = run(&["shell", "-i", "-"])?;
    ensure!(out.status.code() == Some(2) && text(&out.stderr).contains("'-i'"), "shell -i: {out:?}");
    Ok(())
}

fn cli_shell_keeps_state_and_survives_ctrl_c(fx: &OpsFixture) -> R {
    let runtime = fx.containers.runtime.to_string();
    let target = fx.containers.container.clone();
    let mut child = boxshell(&["shell", "--runtime", &runtime, &target])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().ok_or("stdin")?;
    let (rx, reader) = pump(child.stdout.take().ok_or("stdout")?);
    let mut seen = Vec::new();
    let mut wait_for = |needle: &[u8]| -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !seen.windows(needle.len()).any(|w| w == needle) {
            match rx.recv_deadline(deadline) {
                Ok(bytes) => seen.extend(bytes),
                Err(_) => return false,
            }
        }
        true
    };
    let result = contain(|| -> R {
        stdin.write_all(b"cd /tmp; X=kept\nfalse\necho \"$PWD $X\"\necho go; sleep 30; echo never\n")?;
        ensure!(wait_for(b"go\n"), "no `go`");
        // Ctrl-C as a terminal sends it: to the tool, which interrupts the command.
        let pid = child.id().to_string();
        ensure!(Command::new("kill").args(["-INT", &pid]).status()?.success(), "kill -INT");
        stdin.write_all(b"echo after\n")?;
        ensure!(wait_for(b"after\n"), "no `after`");
        Ok(())
    });
    drop(stdin);
    let status = wait_child(&mut child, Duration::from_secs(30));
    let _ = child.kill();
    let _ = reader.join();
    let mut stderr = String::new();
    child.stderr.take().ok_or("stderr")?.read_to_string(&mut stderr)?;
    result?;
    ensure!(seen == b"/tmp kept\ngo\nafter\n", "stdout {:?}", text(&seen));
    // stdin is a pipe: no prompt, no banner (cli_shell_prompts_on_a_terminal has them).
    ensure!(stderr.is_empty(), "stderr on a pipe: {stderr:?}");
    ensure!(status.is_some_and(|s| s.success()), "exit {status:?}");
    Ok(())
}

/// `--version` and `-V`; each command's own help, through `--help`, `-h` and `help`.
fn cli_version_and_help_per_command(_fx: &OpsFixture) -> R {
    let version = format!("boxshell {}\n", env!("CARGO_PKG_VERSION"));
    for flag in ["--version", "-V"] {
        let out = run(&[flag])?;
        ensure!(
            out.status.code() == Some(0) && out.stdout == version.as_bytes() && out.stderr.is_empty(),
            "{flag}: {out:?}"
        );
    }
    let help = |args: &[&str]| -> Result<String, libtest_mimic::Failed> {
        let out = run(args)?;
        ensure!(out.status.code() == Some(0) && out.stderr.is_empty(), "{args:?}: {out:?}");
        Ok(text(&out.stdout))
    };
    // exec's usage: not the whole tool's, not ops'.
    let exec = help(&["exec", "--help"])?;
    ensure!(
        exec.starts_with("Run one shell line in TARGET")
            && exec.contains("\nUsage: boxshell exec [OPTIONS] <TARGET> -- <WORDS>...\n")
            && exec.contains("-w, --workdir <DIR>")
            && exec.contains("-e, --env <K=V>")
            && exec.contains("-u, --user <USER>")
            && exec.contains("--shell <PATH>")
            && exec.contains("\nExamples:\n  boxshell exec web -- ls -la /app\n")
            && !exec.contains("ops")
            && !exec.contains("--json")
            && !exec.contains("Commands:"),
        "exec --help: {exec}"
    );
    for args in [&["help", "exec"][..], &["exec", "-h"]] {
        ensure!(help(args)? == exec, "{args:?} differs from exec --help");
    }
    // A verb's usage, as `help ops start` and `ops start --help` give it.
    let start = help(&["help", "ops", "start"])?;
    ensure!(
        start.contains("\nUsage: boxshell ops start [OPTIONS] <NAME>\n")
            && start.contains("--image <IMAGE>")
            && start.contains("\nExamples:\n  boxshell ops start web\n")
            && !start.contains("--kill")
            && !start.contains("<TARGET>"),
        "help ops start: {start}"
    );
    ensure!(help(&["ops", "start", "--help"])? == start, "ops start --help differs from help ops start");
    // Every command has its usage line and examples.
    let commands: &[&[&str]] = &[
        &[],
        &["ops"],
        &["ops", "list"],
        &["ops", "start"],
        &["ops", "stop"],
        &["ops", "status"],
        &["ops", "logs"],
        &["ops", "attach"],
        &["ops", "exists"],
        &["exec"],
        &["shell"],
        &["completions"],
    ];
    for command in commands {
        let out = help(&[*command, &["--help"]].concat())?;
        let usage = format!("\nUsage: boxshell {}", command.iter().map(|c| format!("{c} ")).collect::<String>());
        ensure!(out.contains(&usage) && out.contains("\nExamples:\n  boxshell "), "{command:?} --help: {out}");
    }
    let root = help(&["--help"])?;
    for command in ["ops", "exec", "shell", "completions", "help"] {
        ensure!(root.lines().any(|l| l.starts_with(&format!("  {command} "))), "--help lacks {command}: {root}");
    }
    Ok(())
}

/// `completions SHELL`: a script that its shell parses (`scripts/setup-runtimes.sh` installs zsh
/// and fish), that names the commands, and (bash's) completes verbs and runtimes.
fn cli_completions_for_bash_zsh_and_fish(_fx: &OpsFixture) -> R {
    let scratch = Scratch::new("bx-cli-completions")?;
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&["completions", shell])?;
        ensure!(out.status.success() && out.stderr.is_empty() && !out.stdout.is_empty(), "{shell}: {out:?}");
        let script = text(&out.stdout);
        for word in ["ops", "exec", "shell", "completions", "start", "attach", "workdir", "runtime", "podman"] {
            ensure!(script.contains(word), "{shell} script lacks {word}");
        }
        let path = scratch.write(&format!("boxshell.{shell}"), &out.stdout)?;
        let check = Command::new(shell)
            .arg("-n")
            .arg(&path)
            .output()
            .map_err(|e| format!("running `{shell} -n` ({e}): install {shell} (scripts/setup-runtimes.sh does)"))?;
        ensure!(check.status.success() && check.stderr.is_empty(), "{shell} -n: {}", text(&check.stderr));
    }
    // bash completes with it: verbs after `ops`, engines after `--runtime`.
    let path = scratch.path("boxshell.bash");
    for (words, want) in [
        (&["boxshell", "ops", "st"][..], &["start", "status", "stop"][..]),
        (&["boxshell", "exec", "--runtime", ""], &["docker", "podman", "kubectl", "local"]),
        (&["boxshell", "completions", ""], &["bash", "zsh", "fish"]),
    ] {
        let line = words.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(" ");
        let n = words.len();
        let probe = format!(
            "source \"$1\"; COMP_WORDS=({line}); COMP_CWORD={}; _boxshell boxshell '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            n - 1,
            words[n - 1],
            words[n - 2]
        );
        let out = Command::new("bash").args(["-c", &probe, "bash"]).arg(&path).output()?;
        // Options (`-h`) are offered too where the word is empty.
        let mut got: Vec<String> =
            text(&out.stdout).lines().filter(|w| !w.starts_with('-')).map(str::to_string).collect();
        let mut want: Vec<String> = want.iter().map(|w| w.to_string()).collect();
        got.sort();
        want.sort();
        ensure!(got == want, "completing {words:?}: {got:?}, want {want:?}; stderr {:?}", text(&out.stderr));
    }
    let out = run(&["completions", "tcsh"])?;
    ensure!(out.status.code() == Some(2) && out.stdout.is_empty() && text(&out.stderr).contains("tcsh"), "{out:?}");
    Ok(())
}

/// `shell` with stdin a pipe: no prompt or banner, the commands' output byte for byte, state
/// kept, and the last command's exit code (or exit's), in a container and on this host.
fn cli_shell_reads_a_pipe_as_sh_s_does(fx: &OpsFixture) -> R {
    let runtime = fx.containers.runtime.to_string();
    let container = fx.containers.container.clone();
    let cases: &[(&[u8], &[u8], i32)] = &[
        (b"cd /tmp\npwd\nexit\n", b"/tmp\n", 0),
        (b"false\n", b"", 1),
        (b"exit 7\n", b"", 7),
        (b"true\nfalse\n", b"", 1),
        (b"false\ntrue\n", b"", 0),
        (b"exit 3\necho never\n", b"", 3),
        (b"X='a  b'\n\necho \"$X\"\nprintf 'c\\000d\\r\\n'\n(exit 5)\n", b"a  b\nc\0d\r\n", 5),
        // The last line without its newline is run too.
        (b"cd /etc\npwd", b"/etc\n", 0),
        (b"", b"", 0),
    ];
    for (target, rt) in [(container.as_str(), Some(runtime.as_str())), ("-", Some("local")), ("-", None)] {
        for &(input, stdout, code) in cases {
            let mut args = vec!["shell"];
            if let Some(rt) = rt {
                args.extend(["--runtime", rt]);
            }
            args.push(target);
            let out = fed(&mut boxshell(&args), input)?;
            ensure!(
                out.stdout == stdout && out.stderr.is_empty() && out.status.code() == Some(code),
                "{args:?} fed {:?}: want {:?} and exit {code}, got {out:?}",
                text(input),
                text(stdout)
            );
        }
    }
    // A command's own errors go to stderr as they are, and still no prompt.
    let out = fed(&mut boxshell(&["shell", "--runtime", &runtime, &container]), b"echo oops >&2; exit 2\n")?;
    ensure!(out.stderr == b"oops\n" && out.stdout.is_empty() && out.status.code() == Some(2), "{out:?}");
    Ok(())
}

/// `shell` on a terminal (made by script(1)): a prompt that shows a failure's code and an
/// interrupted command's 130, Ctrl-C interrupting the command and not the tool, `exit N`
/// ending it with N.
fn cli_shell_prompts_on_a_terminal(fx: &OpsFixture) -> R {
    let runtime = fx.containers.runtime.to_string();
    let target = fx.containers.container.clone();
    // `exec`: script(1) runs the line with $SHELL -c, and a shell left waiting in the terminal's
    // foreground group would take the Ctrl-C too (dash then exits 130 after the tool's `exit 4`).
    let line = format!("exec '{}' shell --runtime {runtime} {target}", env!("CARGO_BIN_EXE_boxshell"));
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &line, "/dev/null"])
        .env_remove("BOXSHELL_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("script(1) from util-linux is needed: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("stdin")?;
    let (rx, reader) = pump(child.stdout.take().ok_or("stdout")?);
    let mut seen = Vec::new();
    // Waits for `needle` after what was seen so far; what it waited for is consumed.
    let mut wait_for = |needle: &[u8]| -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(at) = seen.windows(needle.len()).position(|w| w == needle) {
                seen.drain(..at + needle.len());
                return Ok(());
            }
            match rx.recv_deadline(deadline) {
                Ok(bytes) => seen.extend(bytes),
                Err(_) => return Err(format!("no {:?} in {:?}", text(needle), text(&seen))),
            }
        }
    };
    let result = contain(|| -> R {
        wait_for(format!("{target}$ ").as_bytes())?;
        stdin.write_all(b"false\n")?;
        wait_for(format!("[1] {target}$ ").as_bytes())?;
        stdin.write_all(b"echo go; sleep 30; echo never\n")?;
        // The terminal echoes the line; then the command's own output.
        wait_for(b"\ngo\r\n")?;
        stdin.write_all(b"\x03")?;
        wait_for(format!("[130] {target}$ ").as_bytes())?;
        stdin.write_all(b"echo \"$((6 * 7))\"\n")?;
        wait_for(format!("\n42\r\n{target}$ ").as_bytes())?;
        stdin.write_all(b"exit 4\n")?;
        Ok(())
    });
    let status = wait_child(&mut child, Duration::from_secs(30));
    let _ = child.kill();
    drop(stdin);
    let _ = reader.join();
    result?;
    ensure!(status.and_then(|s| s.code()) == Some(4), "exit {status:?}");
    Ok(())
}

/// A container by one name on docker and on podman: exec and shell say so and name both, and
/// run in the one `--runtime` names; on one engine only, that one is found without it; on
/// neither, the error names both.
fn cli_a_target_on_two_engines_needs_runtime(fx: &OpsFixture) -> R {
    let this = fx.containers.runtime.clone();
    let other = if this == Runtime::Docker { Runtime::Podman } else { Runtime::Docker };
    if !cli(&other).arg("version").output().is_ok_and(|o| o.status.success()) {
        // Only when the other engine was not asked for: then this run has nothing to test against.
        let asked = std::env::var("BOXSHELL_TEST_RUNTIMES").unwrap_or_default();
        ensure!(!asked.split(',').any(|r| r.trim() == other.to_string()), "{other} was asked for and does not answer");
        eprintln!("cli_a_target_on_two_engines_needs_runtime: {other} does not answer; nothing to test against");
        return Ok(());
    }
    let name = unique("cli-both");
    let result = contain(|| -> R {
        for rt in [&this, &other] {
            run_container(rt, &name)?;
            engine(rt, &["exec", &name, "sh", "-c", &format!("echo {rt} >/tmp/engine")]);
        }
        let detecting = |args: &[&str]| {
            let mut cmd = boxshell(args);
            cmd.env_remove("BOXSHELL_RUNTIME");
            cmd
        };
        let message = format!(
            "boxshell: {name} is a container on docker and on podman; say which with --runtime docker or --runtime podman\n"
        );
        for args in [&["exec", &name, "--", "cat /tmp/engine"][..], &["shell", &name]] {
            let out = fed(&mut detecting(args), b"cat /tmp/engine\n")?;
            ensure!(
                out.status.code() == Some(1) && out.stderr == message.as_bytes() && out.stdout.is_empty(),
                "{args:?}: {out:?}"
            );
        }
        // On neither: an error naming both, not the words of whichever engine was tried.
        let missing = unique("cli-none");
        let out = detecting(&["exec", &missing, "--", "true"]).output()?;
        ensure!(
            out.status.code() == Some(1)
                && out.stderr == format!("boxshell: no container `{missing}` on docker or podman\n").as_bytes(),
            "{missing}: {out:?}"
        );
        for rt in ["docker", "podman"] {
            let out = run(&["exec", "--runtime", rt, &name, "--", "cat /tmp/engine"])?;
            ensure!(out.stdout == format!("{rt}\n").as_bytes() && out.status.success(), "exec --runtime {rt}: {out:?}");
            // Before the command too, as the ops options are.
            let out = fed(&mut boxshell(&["--runtime", rt, "shell", &name]), b"cat /tmp/engine\n")?;
            ensure!(
                out.stdout == format!("{rt}\n").as_bytes() && out.status.success(),
                "shell --runtime {rt}: {out:?}"
            );
        }
        remove_container(&other, &name);
        let out = detecting(&["exec", &name, "--", "cat /tmp/engine"]).output()?;
        ensure!(out.stdout == format!("{this}\n").as_bytes() && out.status.success(), "on {this} only: {out:?}");
        Ok(())
    });
    remove_container(&this, &name);
    remove_container(&other, &name);
    result
}

/// `--user`, `--workdir`, `-e` and `--shell`, as `docker exec` takes them, for exec and shell,
/// byte for byte; in the container and (but `--user`) on this host.
fn cli_exec_and_shell_take_docker_exec_options(fx: &OpsFixture) -> R {
    let runtime = fx.containers.runtime.to_string();
    let container = fx.containers.container.clone();
    let cases: &[(&[&str], &str, &str)] = &[
        (&["--user", "nobody"], "id -u", "65534\n"),
        (&["-u", "65534:65534"], "id -u; id -g", "65534\n65534\n"),
        (&["-w", "/tmp"], "pwd", "/tmp\n"),
        (&["--workdir", "/etc"], "pwd; cd / && pwd", "/etc\n/\n"),
        (&["-e", "A=x y"], "printf %s \"$A\"", "x y"),
        (
            &["--env", "B=k=v", "-e", "C=", "-e", "D='$(x)'\\"],
            "printf '%s|' \"$B\" \"${C-unset}\" \"$D\"",
            "k=v||'$(x)'\\|",
        ),
        (&[], "printf %s \"${A-unset}\"", "unset"),
        // -e K: this program's K, as docker takes it; left out where K is not set here.
        (&["-e", "BOXSHELL_IT_HERE"], "printf %s \"$BOXSHELL_IT_HERE\"", "from 'here' $x"),
        (&["-e", "BOXSHELL_IT_NOT_HERE"], "printf %s \"${BOXSHELL_IT_NOT_HERE-unset}\"", "unset"),
        (&["--shell", "/bin/bash"], "printf %s \"${BASH_VERSION:+bash}\"", "bash"),
        (&[], "printf %s \"${BASH_VERSION:+bash}\"", ""),
        (&["-u", "nobody", "-w", "/tmp", "-e", "A=1"], "echo \"$(id -u) $PWD $A\"", "65534 /tmp 1\n"),
    ];
    for (target, rt) in [(container.as_str(), runtime.as_str()), ("-", "local")] {
        for &(options, line, want) in cases {
            if rt == "local" && options.iter().any(|o| o.starts_with("-u") || o.starts_with("--user")) {
                continue;
            }
            let args = [&["exec", "--runtime", rt][..], options, &[target, "--", line]].concat();
            let out = boxshell(&args)
                .env("BOXSHELL_IT_HERE", "from 'here' $x")
                .env_remove("BOXSHELL_IT_NOT_HERE")
                .env_remove("A")
                .output()?;
            ensure!(
                out.stdout == want.as_bytes() && out.stderr.is_empty() && out.status.success(),
                "{args:?}: want {want:?}, got {out:?}"
            );
        }
        // shell: the options hold for the session, and cd still moves it.
        let args = ["shell", "--runtime", rt, "-w", "/tmp", "-e", "A=x y", target];
        let out = fed(&mut boxshell(&args), b"pwd\ncd /\npwd\nprintf '%s\\n' \"$A\"\n")?;
        ensure!(out.stdout == b"/tmp\n/\nx y\n" && out.stderr.is_empty() && out.status.success(), "{args:?}: {out:?}");
        // A directory that is not there: the tool fails and says which, and runs nothing.
        let out = run(&["exec", "--runtime", rt, "-w", "/no/such/dir", target, "--", "echo ran"])?;
        failed(&out, 1, "/no/such/dir")?;
    }
    let args = ["shell", "--runtime", &runtime, "--user", "nobody", &container];
    let out = fed(&mut boxshell(&args), b"id -u\nid -un\n")?;
    ensure!(out.stdout == b"65534\nnobody\n" && out.status.success(), "{args:?}: {out:?}");
    // A user is for containers: on this host, an error that says so.
    failed(&run(&["exec", "-u", "nobody", "-", "--", "echo ran"])?, 1, "user")?;
    Ok(())
}

/// Reads `out` on a thread of its own, each read's bytes sent on the channel, until EOF.
fn pump(mut out: impl Read + Send + 'static) -> (crossbeam_channel::Receiver<Vec<u8>>, std::thread::JoinHandle<()>) {
    let (tx, rx) = crossbeam_channel::unbounded::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    (rx, reader)
}
