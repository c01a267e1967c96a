//! Drives a REPL through a session: `cargo run --example repl`.
//!
//! Runs in the container named by `BOXSHELL_CONTAINER` (through the runtime that
//! `Runtime::detect` finds), else in a shell on this host. The REPL is `python3 -i` where the
//! target has python3, else an interactive bash: both print their prompt on stderr, read one
//! line at a time from a stdin that stays open, and answer on stdout.

use std::time::Duration;

use boxshell::{Runtime, Session, Stream};

const WAIT: Duration = Duration::from_secs(10);

fn main() -> boxshell::Result<()> {
    let (target, runtime) = match std::env::var("BOXSHELL_CONTAINER") {
        Ok(container) => (container, Runtime::detect()?),
        Err(_) => ("-".to_string(), Runtime::Local),
    };
    let mut sh = Session::builder(&target).runtime(runtime.clone()).timeout(Duration::from_secs(60)).open()?;
    println!("== {runtime} {target}");

    let python = sh.exec("command -v python3 >/dev/null")?.success();
    let (repl, prompt, lines): (&str, &[u8], [&str; 3]) = if python {
        ("python3 -i -q", b">>> ", ["x = 6 * 7", "print(x)", "print(sum(range(x)))"])
    } else {
        (
            "PS1='repl> ' bash --norc --noprofile -i",
            b"repl> ",
            ["x=$((6 * 7))", "echo $x", "seq 1 $x | paste -sd+ | bc"],
        )
    };
    // The command's stdin stays open: each line is written while it runs.
    let mut r = sh.cmd(repl).interactive().timeout(Duration::from_secs(60)).spawn()?;
    r.expect(Stream::Stderr, prompt, WAIT)?;
    for line in lines {
        r.write_stdin(format!("{line}\n").as_bytes())?;
        // Everything up to the next prompt is the answer to this line.
        r.expect(Stream::Stderr, prompt, WAIT)?;
        let answer = r.expect_with(Stream::Stdout, Duration::from_millis(300), |seen| Some(seen.len()));
        let answer = answer.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()).unwrap_or_default();
        println!("{} {line}\n{answer}", String::from_utf8_lossy(prompt).trim_end());
    }
    // EOF ends the REPL; wait returns what it printed that expect did not take.
    r.close_stdin()?;
    let out = r.wait()?;
    println!("the REPL exited with {}", out.exit_code);
    sh.close()
}
