//! A shell's state carried over: `snapshot`, `restore`, `ShellState` as a script; with hostile
//! values, on every runtime and shell, and from one shell into another.

use boxshell::{Session, ShellState};

use crate::ensure;
use crate::harness::Fixture;
use crate::{R, Test};

pub const TESTS: &[(&str, Test<Fixture>)] = &[
    ("snapshot_and_restore_carry_hostile_state_exactly", snapshot_and_restore_carry_hostile_state_exactly),
    ("snapshot_of_a_thousand_variables_is_one_command", snapshot_of_a_thousand_variables_is_one_command),
    ("restore_into_another_shell_reports_what_it_could_not", restore_into_another_shell_reports_what_it_could_not),
    ("snapshot_changes_nothing_and_nothing_changes_it", snapshot_changes_nothing_and_nothing_changes_it),
];

/// Builds up state in `sh`: a cwd with quotes and spaces, exported and unexported variables
/// with quotes, newlines, `$()`, unicode, bytes that are not UTF-8, a 1 MB value (and an
/// exported 100 KB one: Linux refuses to start programs with an environment string over
/// 128 KiB), names that are keywords, an alias, an option and a umask; in bash, functions.
fn build_up(sh: &mut Session, shell: &str) -> R {
    let big = "x".repeat(1 << 20);
    sh.write_file("/tmp/big-value", big.as_bytes())?;
    let setup = r#"mkdir -p "/tmp/it's a dir" && cd "/tmp/it's a dir"
export Q="it's \"quoted\" \$(id) \`x\` back\\slash"
export NL='line one
line two
'
export UNI='héllo ✓ 日本'
then='a keyword'; done='another'; export done
plain='not exported'
BIG="$(cat /tmp/big-value)"
export MID="$(head -c 100000 /tmp/big-value)"
raw=$(printf '\377\376x'); raw=${raw%x}; export raw
alias ll='ls -l "$HOME"'
set -o noglob
umask 027"#;
    let out = sh.exec(setup)?;
    ensure!(out.exit_code == 0, "{shell}: setup: {out:?}");
    if shell.contains("bash") {
        sh.exec("greet() { printf 'hi %s\\n' \"$1\"; }; twice() { greet \"$1\"; greet \"$1\"; }")?.check()?;
    }
    Ok(())
}

/// What a person would check, byte for byte.
const CHECK: &str = r#"pwd; printf '%s|' "$Q" "$NL" "$UNI" "$then" "$done" "$plain" "${#BIG}" "${#MID}"; printf '%s' "$raw" | od -An -c | tr -s ' '; umask; alias ll; set -o | grep -c 'noglob.*on'; env | grep -c '^plain='"#;

fn snapshot_and_restore_carry_hostile_state_exactly(fx: &Fixture) -> R {
    for shell in fx.shells() {
        let mut sh = fx.builder().shell(&shell).open()?;
        build_up(&mut sh, &shell)?;
        let want = sh.exec(CHECK)?;
        let state = sh.snapshot()?;
        ensure!(state.functions().is_some() == shell.contains("bash"), "{shell}: functions {:?}", state.functions());
        // Stored as text and read back, then restored into a new session.
        let state = ShellState::from_script(&state.to_script())?;
        let mut fresh = fx.builder().shell(&shell).open()?;
        let restored = fresh.restore(&state)?;
        ensure!(restored.missed.is_empty(), "{shell}: missed {:?}", restored.missed);
        let got = fresh.exec(CHECK)?;
        ensure!(got.stdout == want.stdout, "{shell}: {:?}\nwant {:?}", got.stdout_str(), want.stdout_str());
        ensure!(
            got.stdout_str().starts_with("/tmp/it's a dir\nit's \"quoted\" $(id) `x` back\\slash|"),
            "{shell}: {:?}",
            got.stdout_str()
        );
        if shell.contains("bash") {
            let out = fresh.exec("twice you")?;
            ensure!(out.stdout == b"hi you\nhi you\n", "{shell}: functions: {out:?}");
        }
        // The state of the new session is the same state.
        let again = fresh.snapshot()?;
        ensure!(again == state, "{shell}: a second snapshot differs:\n{}\n{}", again.to_script(), state.to_script());
        for mut s in [sh, fresh] {
            s.exec("rm -f /tmp/big-value")?;
            s.close()?;
        }
    }
    Ok(())
}

fn snapshot_of_a_thousand_variables_is_one_command(fx: &Fixture) -> R {
    for shell in fx.shells() {
        let mut sh = fx.builder().shell(&shell).open()?;
        let mut setup = String::new();
        for i in 0..1000 {
            setup.push_str(&format!("v{i}='value {i}'; "));
        }
        for i in 0..200 {
            setup.push_str(&format!("f{i}() {{ echo {i}; }}; "));
        }
        sh.exec(&setup)?.check()?;
        let before = sh.metrics().commands;
        let state = sh.snapshot()?;
        ensure!(sh.metrics().commands == before + 1, "{shell}: {} commands", sh.metrics().commands - before);
        let count =
            state.variables().iter().filter(|(n, _)| n.starts_with('v') && n[1..].parse::<u32>().is_ok()).count();
        ensure!(count == 1000, "{shell}: {count} variables");
        if let Some(functions) = state.functions() {
            ensure!(functions.matches("echo").count() == 200, "{shell}: functions");
        }
        let mut fresh = fx.builder().shell(&shell).open()?;
        let before = fresh.metrics().commands;
        fresh.restore(&state)?;
        ensure!(fresh.metrics().commands == before + 1, "{shell}: restore took more than one command");
        ensure!(fresh.exec("echo $v999")?.stdout == b"value 999\n", "{shell}");
        sh.close()?;
        fresh.close()?;
    }
    Ok(())
}

fn restore_into_another_shell_reports_what_it_could_not(fx: &Fixture) -> R {
    let shells = fx.shells();
    let (Some(bash), Some(other)) =
        (shells.iter().find(|s| s.contains("bash")), shells.iter().find(|s| !s.contains("bash")))
    else {
        return Err("the fixture has no bash and other shell".into());
    };
    let mut sh = fx.builder().shell(bash).open()?;
    sh.exec("cd /tmp; export A='a b'; greet() { echo \"hi $1\"; }; set -o posix; alias g=greet")?.check()?;
    let state = sh.snapshot()?;
    let mut fresh = fx.builder().shell(other).open()?;
    let restored = fresh.restore(&state)?;
    // dash and busybox have no `posix` option; the rest goes in.
    ensure!(restored.missed == ["option posix"], "{other}: {:?}", restored.missed);
    let out = fresh.exec("pwd; echo \"$A\"; greet you")?;
    ensure!(out.stdout == b"/tmp\na b\nhi you\n", "{other}: {out:?}");
    sh.close()?;
    fresh.close()?;
    Ok(())
}

/// A snapshot of a shell under `set -eua`, with aliases (and in bash a function) named after
/// what the listing runs: the session lives on, nothing of its state changes (`IFS` is not
/// exported by `allexport`), and the state is all there.
fn snapshot_changes_nothing_and_nothing_changes_it(fx: &Fixture) -> R {
    // What would change: the options, the exported names, the aliases; `|| :` as under `set -e`.
    const PROBE: &str = "set +o; env | grep -c '^IFS=' || :; alias";
    for shell in fx.shells() {
        let mut sh = fx.builder().shell(&shell).open()?;
        let hostile = if shell.contains("bash") { "alias if='echo nope;'; [() { return 1; }; " } else { "" };
        sh.exec(&format!("V=kept; export E=out; set -eua; alias '['=false; {hostile}:"))?.check()?;
        let before = sh.exec(PROBE)?;
        let state = sh.snapshot()?;
        let after = sh.exec(PROBE)?;
        ensure!(after.stdout == before.stdout && after.exit_code == 0, "{shell}: {before:?} then {after:?}");
        ensure!(text(&before.stdout).contains("\n0\n"), "{shell}: IFS exported before: {before:?}");
        let on = |name: &str| state.options().contains(&(name.to_string(), true));
        ensure!(on("errexit") && on("nounset") && on("allexport"), "{shell}: {:?}", state.options());
        ensure!(state.variables().iter().any(|(n, v)| n == "V" && v == "kept"), "{shell}: {:?}", state.variables());
        ensure!(state.exported().iter().any(|(n, v)| n == "E" && v == "out"), "{shell}: {:?}", state.exported());
        ensure!(state.aliases().iter().any(|(n, v)| n == "[" && v == "false"), "{shell}: {:?}", state.aliases());
        ensure!(sh.exec("echo $V")?.stdout == b"kept\n", "{shell}: the session after the snapshot");
        sh.close()?;
    }
    Ok(())
}

fn text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}
