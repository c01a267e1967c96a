//! `exec` and `shell`: commands in a session, their output passed through as it comes.

use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use boxshell::container::Containers;
use boxshell::{Cmd, Error, Output, Runtime, Session, Stream};

use crate::args::SessionSpec;

/// timeout(1)'s exit code for a command that ran out of time.
const TIMED_OUT: u8 = 124;

/// How long an engine gets to say whether it has the target.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens the session `spec` says.
fn open(spec: &SessionSpec) -> Result<Session, String> {
    let mut builder = Session::builder(&spec.target).runtime(runtime_for(spec)?);
    if let Some(shell) = &spec.shell {
        builder = builder.shell(shell);
    }
    if let Some(user) = &spec.user {
        builder = builder.user(user);
    }
    if let Some(dir) = &spec.workdir {
        builder = builder.workdir(dir);
    }
    for (key, value) in &spec.env {
        builder = builder.env(key, value);
    }
    builder.open().map_err(|e| e.to_string())
}

/// The runtime of `spec`'s target: `--runtime`; this host for `-`; `$BOXSHELL_RUNTIME`; else
/// the engine, docker or podman, that has a container of that name or id (both asked at
/// once), and an error if both have one, as a command could otherwise run in the wrong one.
/// When the engines that answered have none, an error naming them; when none answered,
/// [`Runtime::detect`], which says why.
fn runtime_for(spec: &SessionSpec) -> Result<Runtime, String> {
    let target = spec.target.as_str();
    if let Some(runtime) = &spec.runtime {
        return Ok(runtime.clone());
    }
    if target == "-" {
        return Ok(Runtime::Local);
    }
    let named = std::env::var_os("BOXSHELL_RUNTIME").is_some_and(|v| !v.is_empty());
    let detected = || Runtime::detect().map_err(|e| format!("{target}: {e}"));
    if named {
        return detected();
    }
    // Each engine that answers, and whether it has the container.
    let answers: Vec<(Runtime, bool)> = std::thread::scope(|s| {
        let asked: Vec<_> = [Runtime::Docker, Runtime::Podman]
            .into_iter()
            .map(|runtime| {
                s.spawn(move || {
                    let has = Containers::new(runtime.clone()).timeout(LOOKUP_TIMEOUT).exists(target);
                    has.ok().map(|has| (runtime, has))
                })
            })
            .collect();
        asked.into_iter().filter_map(|asked| asked.join().ok().flatten()).collect()
    });
    let found: Vec<&Runtime> = answers.iter().filter_map(|(runtime, has)| has.then_some(runtime)).collect();
    let asked: Vec<String> = answers.iter().map(|(runtime, _)| runtime.to_string()).collect();
    match found.as_slice() {
        [] if asked.is_empty() => detected(),
        [] => Err(format!("no container `{target}` on {}", asked.join(" or "))),
        [one] => Ok((*one).clone()),
        [first, second, ..] => Err(format!(
            "{target} is a container on {first} and on {second}; say which with --runtime {first} or --runtime {second}"
        )),
    }
}

/// `line`, its stdout and stderr to be written through as they arrive (nothing kept).
fn passed_through<'s>(sh: &'s mut Session, line: &str, timeout: Option<Duration>) -> Cmd<'s> {
    let (mut stdout, mut stderr) = (io::stdout(), io::stderr());
    sh.cmd(line).timeout(timeout).max_output(0).on_chunk(move |stream, bytes| {
        // A reader that went away (`| head`) ends nothing here: the command runs on.
        let _ = match stream {
            Stream::Stdout => stdout.write_all(bytes).and_then(|()| stdout.flush()),
            _ => stderr.write_all(bytes).and_then(|()| stderr.flush()),
        };
    })
}

/// Runs `line` as [`passed_through`], fed this process's stdin until its end (then EOF), as
/// `docker exec -i` does.
fn run_fed(sh: &mut Session, line: &str, timeout: Option<Duration>) -> boxshell::Result<Output> {
    let mut running = passed_through(sh, line, timeout).interactive().spawn()?;
    // A thread reads stdin, as a read cannot be given a deadline; it ends with this process.
    let (tx, rx) = crossbeam_channel::bounded::<Vec<u8>>(4);
    std::thread::spawn(move || {
        let mut stdin = io::stdin().lock();
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n @ 1..) = stdin.read(&mut buf) {
            if tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    loop {
        match rx.recv_timeout(Duration::from_millis(10)) {
            Ok(chunk) => match running.write_stdin(&chunk) {
                Ok(()) => {}
                // The command ended, or stopped reading: the rest of stdin is not for it.
                Err(Error::CommandEnded { .. } | Error::StdinClosed { .. }) => break,
                Err(e) => return Err(e),
            },
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            // Lets output through and the timeout act while stdin is quiet.
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                if running.try_wait()?.is_some() {
                    break;
                }
            }
        }
    }
    running.wait()
}

/// The exit code the tool gives for a command's end.
fn code_of(out: &Output) -> u8 {
    if out.timed_out { TIMED_OUT } else { exit_byte(Some(out.exit_code)) }
}

/// A shell's exit code as a process's; 1 when there is none that fits.
fn exit_byte(code: Option<i32>) -> u8 {
    code.and_then(|c| u8::try_from(c).ok()).unwrap_or(1)
}

pub fn exec(
    session: &SessionSpec,
    line: &str,
    timeout: Option<Duration>,
    interactive: bool,
) -> Result<ExitCode, String> {
    let mut sh = open(session)?;
    let interrupter = sh.interrupter();
    ctrlc::set_handler(move || {
        let _ = interrupter.interrupt();
    })
    .map_err(|e| format!("catching Ctrl-C: {e}"))?;
    let ran = if interactive { run_fed(&mut sh, line, timeout) } else { passed_through(&mut sh, line, timeout).run() };
    let code = match ran {
        Ok(out) => code_of(&out),
        Err(Error::ShellExited { code, .. }) => exit_byte(code),
        Err(e) => return Err(e.to_string()),
    };
    sh.close().map_err(|e| e.to_string())?;
    Ok(ExitCode::from(code))
}

/// `shell`: a prompt when stdin and stderr are terminals (as `sh` decides it is interactive);
/// else, as `sh -s`, no prompt, nothing but what the commands write, and the last command's
/// exit code.
pub fn shell(session: &SessionSpec) -> Result<ExitCode, String> {
    let target = session.target.as_str();
    let interactive = io::stdin().is_terminal() && io::stderr().is_terminal();
    let mut sh = open(session)?;
    let interrupter = sh.interrupter();
    let busy = Arc::new(AtomicBool::new(false));
    let prompt = Arc::new(Mutex::new(format!("{target}$ ")));
    {
        let (busy, prompt) = (Arc::clone(&busy), Arc::clone(&prompt));
        // Ctrl-C interrupts the running command; at the prompt it gives a fresh prompt.
        ctrlc::set_handler(move || {
            if busy.load(Ordering::SeqCst) {
                let _ = interrupter.interrupt();
            } else if interactive && let Ok(prompt) = prompt.lock() {
                let _ = write!(io::stderr(), "\n{prompt}");
            }
        })
        .map_err(|e| format!("catching Ctrl-C: {e}"))?;
    }
    let mut last = 0u8;
    let stdin = io::stdin();
    let mut line = String::new();
    loop {
        if interactive && let Ok(prompt) = prompt.lock() {
            let _ = write!(io::stderr(), "{prompt}");
        }
        line.clear();
        match stdin.lock().read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Err(format!("reading a line: {e}")),
        }
        let command = line.trim_end_matches(['\n', '\r']);
        if command.trim().is_empty() {
            continue;
        }
        busy.store(true, Ordering::SeqCst);
        let result = passed_through(&mut sh, command, None).run();
        busy.store(false, Ordering::SeqCst);
        last = match result {
            Ok(out) => code_of(&out),
            Err(Error::ShellExited { code, .. }) => {
                return Ok(ExitCode::from(exit_byte(code)));
            }
            Err(e) => {
                crate::say!("boxshell: {e}");
                1
            }
        };
        // `exit`: no prompt for a line the shell will not run.
        if !sh.is_alive() {
            return Ok(ExitCode::from(last));
        }
        if let Ok(mut prompt) = prompt.lock() {
            *prompt = match last {
                0 => format!("{target}$ "),
                code => format!("[{code}] {target}$ "),
            };
        }
    }
    if interactive {
        // The line Ctrl-D left the cursor on.
        crate::say!();
    }
    sh.close().map_err(|e| e.to_string())?;
    Ok(ExitCode::from(last))
}
