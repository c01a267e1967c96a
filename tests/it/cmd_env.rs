//! A command's own environment variables and working directory (`Cmd::env`, `Cmd::workdir`):
//! exact values, the session's state untouched, refusals named, and every other option of a
//! command working beside them. Every test runs with every shell of the fixture.

use std::ffi::OsStr;
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use boxshell::{Error, Session, Stream};

use crate::ensure;
use crate::harness::{Fixture, unique};
use crate::{R, Test};

pub const TESTS: &[(&str, Test<Fixture>)] = &[
    ("env_and_workdir_reach_only_the_command", env_and_workdir_reach_only_the_command),
    ("hostile_values_arrive_exactly", hostile_values_arrive_exactly),
    ("a_workdir_that_cannot_be_entered_is_an_error", a_workdir_that_cannot_be_entered_is_an_error),
    ("stdin_interactive_timeout_and_cap_work_beside_them", stdin_interactive_timeout_and_cap_work_beside_them),
    ("set_v_echoes_nothing_of_boxshell", set_v_echoes_nothing_of_boxshell),
];

const WAIT: Duration = Duration::from_secs(20);

/// A session per shell of the fixture, with a scratch directory `dir` made for the test; after
/// the test, the session's cwd and environment are as they were.
fn each_shell(fx: &Fixture, mut test: impl FnMut(&mut Session, &str, &str) -> R) -> R {
    for shell in fx.shells() {
        let mut sh = fx.builder().shell(&shell).open()?;
        let dir = format!("/tmp/{}", unique("bx-env"));
        sh.exec(&format!("mkdir -p '{dir}/sub dir' && cd / && unset A B"))?.check()?;
        test(&mut sh, &shell, &dir)?;
        let out = sh.exec("printf '%s|%s|%s' \"$PWD\" \"${A-unset}\" \"${B-unset}\"")?;
        ensure!(out.stdout == b"/|unset|unset", "{shell}: the session's state changed: {:?}", out.stdout_str());
        sh.exec(&format!("rm -rf '{dir}'"))?.check()?;
        sh.close()?;
    }
    Ok(())
}

fn env_and_workdir_reach_only_the_command(fx: &Fixture) -> R {
    each_shell(fx, |sh, shell, dir| {
        // What the session built up is there for the command.
        sh.exec("greet() { printf '%s, %s' \"$GREETING\" \"$1\"; }; alias shout='printf !'; HIDDEN=h")?.check()?;
        let out = sh
            .cmd("greet world; shout; printf '|%s|%s|%s|' \"$HIDDEN\" \"$(pwd)\" \"$(sh -c 'printf %s \"$GREETING\"')\"; cd /; export B=x; exit 4")
            .env("GREETING", "hello")
            .workdir(format!("{dir}/sub dir"))
            .run()?;
        let want = format!("hello, world!|h|{dir}/sub dir|hello|");
        ensure!(out.stdout_str() == want && out.exit_code == 4, "{shell}: {out:?}");
        // Relative to the session's cwd; $CDPATH is not searched.
        sh.exec(&format!("cd '{dir}' && export CDPATH=/"))?.check()?;
        let out = sh.cmd("pwd").workdir("sub dir").run()?;
        ensure!(out.stdout_str() == format!("{dir}/sub dir\n"), "{shell}: relative: {out:?}");
        let tmp = sh.cmd("pwd").workdir("tmp").run();
        ensure!(
            matches!(tmp, Err(Error::Fs { kind: ErrorKind::NotFound, .. })),
            "{shell}: found through CDPATH: {tmp:?}"
        );
        sh.exec("unset CDPATH; cd / && unset HIDDEN; unalias shout; unset -f greet")?.check()?;
        // Under the session's `set -x`, the command is traced; the values and the `cd` not.
        sh.exec("set -x")?;
        let out = sh.cmd("echo \"${#TOKEN}\"").env("TOKEN", "s3cret").workdir(dir).run()?;
        sh.exec("set +x")?;
        let err = out.stderr_str();
        ensure!(
            out.stdout == b"6\n" && err.contains("echo 6") && !err.contains("s3cret") && !err.contains(" cd "),
            "{shell}: under set -x: {out:?}"
        );
        Ok(())
    })
}

/// Under the session's `set -v`, bash echoes the lines it reads: those of the command after its
/// first (read with boxshell's own), and what it `eval`s; never boxshell's text or the
/// values given to `Cmd::env`. dash and busybox echo nothing of a command.
fn set_v_echoes_nothing_of_boxshell(fx: &Fixture) -> R {
    each_shell(fx, |sh, shell, dir| {
        let bash = shell.contains("bash");
        sh.exec("set -v")?.check()?;
        let echoed = |text: &str| if bash { text.to_string() } else { String::new() };
        let out = sh.exec("echo one\necho two")?;
        ensure!(out.stdout == b"one\ntwo\n" && out.stderr_str() == echoed("echo two\n"), "{shell}: plain: {out:?}");
        for workdir in [None, Some(dir)] {
            let mut cmd = sh.cmd("echo \"${#TOKEN}\"").env("TOKEN", "s3cret\nline");
            if let Some(dir) = workdir {
                cmd = cmd.workdir(dir);
            }
            let out = cmd.run()?;
            let want = echoed("echo \"${#TOKEN}\"\n");
            ensure!(out.stdout == b"11\n" && out.stderr_str() == want, "{shell}: env in {workdir:?}: {out:?}");
        }
        let file = format!("{dir}/new/f");
        sh.write_file(&file, b"data\n")?;
        ensure!(sh.read_file(&file)? == b"data\n", "{shell}: read_file");
        ensure!(sh.metadata(&file)?.len == 5 && sh.read_dir(format!("{dir}/new"))?.len() == 1, "{shell}: stat");
        let missing = sh.rename(format!("{dir}/nope"), &file);
        ensure!(matches!(missing, Err(Error::Fs { kind: ErrorKind::NotFound, .. })), "{shell}: {missing:?}");
        let state = sh.snapshot()?;
        ensure!(state.options().iter().any(|(name, on)| name == "verbose" && *on), "{shell}: {state:?}");
        let still = sh.exec("case $- in *v*) echo on ;; esac")?;
        ensure!(still.stdout == b"on\n" && still.stderr.is_empty(), "{shell}: verbose after: {still:?}");
        sh.exec("set +v")?.check()?;
        Ok(())
    })
}

fn hostile_values_arrive_exactly(fx: &Fixture) -> R {
    let big: Vec<u8> = (0..1 << 20).map(|i| b"ab'\"$`\\\n\t c"[i % 11]).collect();
    let values: [&[u8]; 6] = [
        b"",
        b"it's \"$(touch /tmp/pwned)\" `id` $HOME \\n %s\n\n",
        "ünï\u{1f600}code".as_bytes(),
        b"\xff\xfe not UTF-8 \x80\n",
        b"-n",
        &big,
    ];
    each_shell(fx, |sh, shell, dir| {
        for value in values {
            let out = sh.cmd("printf '%s' \"$A\"").env("A", OsStr::from_bytes(value)).max_output(2 << 20).run()?;
            ensure!(out.stdout == value && out.exit_code == 0, "{shell}: a value of {} bytes changed", value.len());
        }
        // A directory whose name is not UTF-8, and has a newline and a leading `-`.
        let odd = [dir.as_bytes(), b"/-odd\n\xff dir"].concat();
        let odd = OsStr::from_bytes(&odd);
        let mut made = sh.cmd("mkdir -- \"$D\" && cd -- \"$D\" && pwd").env("D", odd).run()?;
        made.stdout.pop();
        ensure!(made.stdout == odd.as_bytes(), "{shell}: mkdir: {made:?}");
        let out = sh.cmd("pwd").workdir(odd).env("B", "1").run()?;
        ensure!(out.stdout.strip_suffix(b"\n") == Some(odd.as_bytes()), "{shell}: {out:?}");
        let exists = sh.exec("test -e /tmp/pwned && echo pwned")?;
        ensure!(exists.stdout.is_empty(), "{shell}: a value was run as a command");
        Ok(())
    })
}

fn a_workdir_that_cannot_be_entered_is_an_error(fx: &Fixture) -> R {
    each_shell(fx, |sh, shell, dir| {
        sh.exec(&format!("touch '{dir}/file'"))?.check()?;
        let cases = [
            (format!("{dir}/missing"), ErrorKind::NotFound),
            (format!("{dir}/missing/sub"), ErrorKind::NotFound),
            (format!("{dir}/file"), ErrorKind::NotADirectory),
            (format!("{dir}/file/sub"), ErrorKind::NotADirectory),
        ];
        for (workdir, want) in cases {
            let err = sh.cmd(format!("touch '{dir}/ran'")).workdir(&workdir).run().unwrap_err();
            let Error::Fs { op, path, kind, .. } = &err else {
                return Err(format!("{shell}: {workdir}: expected Error::Fs, got {err:?}").into());
            };
            ensure!((*op, path.as_str(), *kind) == ("workdir", workdir.as_str(), want), "{shell}: {err:?}");
            ensure!(err.to_string().contains(&workdir), "{shell}: {err}");
            // Through spawn too, and the command did not run anywhere.
            let spawned = sh.cmd(format!("touch '{dir}/ran'")).workdir(&workdir).spawn()?.wait();
            ensure!(matches!(spawned, Err(Error::Fs { kind, .. }) if kind == want), "{shell}: spawn: {spawned:?}");
            let ran = sh.exec(&format!("test -e '{dir}/ran' && echo ran"))?;
            ensure!(ran.stdout.is_empty(), "{shell}: {workdir}: the command ran elsewhere");
        }
        // The next command is not refused.
        let out = sh.cmd("echo ok").workdir(dir).run()?;
        ensure!(out.stdout == b"ok\n", "{shell}: after: {out:?}");
        let bad = sh.cmd("true").env("NOT-A-NAME", "x").run();
        ensure!(matches!(bad, Err(Error::InvalidName { .. })), "{shell}: {bad:?}");
        let nul = sh.cmd("true").env("A", "a\0b").run();
        ensure!(matches!(nul, Err(Error::InvalidValue { .. })), "{shell}: {nul:?}");
        Ok(())
    })
}

fn stdin_interactive_timeout_and_cap_work_beside_them(fx: &Fixture) -> R {
    each_shell(fx, |sh, shell, dir| {
        let input: Vec<u8> = (0..100_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let out = sh.cmd("cat; pwd >&2").env("A", "1").workdir(dir).stdin(input.clone()).run()?;
        ensure!(out.stdout == input && out.stderr_str() == format!("{dir}\n"), "{shell}: stdin");
        let mut r =
            sh.cmd("while read -r x; do echo \"$A$x\"; done").env("A", ">").workdir(dir).interactive().spawn()?;
        r.write_stdin(b"one\n")?;
        ensure!(r.expect(Stream::Stdout, b"\n", WAIT)? == b">one\n", "{shell}: interactive");
        r.close_stdin()?;
        ensure!(r.wait()?.exit_code == 0, "{shell}: interactive end");
        let out =
            sh.cmd("echo started; sleep 100").env("A", "1").workdir(dir).timeout(Duration::from_millis(500)).run()?;
        ensure!(out.timed_out && out.stdout == b"started\n", "{shell}: timeout: {out:?}");
        let r = sh.cmd("echo started; sleep 100").env("A", "1").workdir(dir).spawn()?;
        r.interrupt()?;
        let out = r.wait()?;
        ensure!(out.exit_code != 0 && !out.timed_out, "{shell}: interrupt: {out:?}");
        let out = sh.cmd("head -c 100000 /dev/zero").env("A", "1").workdir(dir).max_output(1000).run()?;
        ensure!(out.truncated && out.stdout.len() == 1000, "{shell}: cap: {}", out.stdout.len());
        Ok(())
    })
}
