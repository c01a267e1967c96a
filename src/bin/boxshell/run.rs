//! `exec` and `shell`: commands in a session, their output passed through as it comes.

use std::io::{self, BufRead, Read, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use boxshell::{Cmd, Error, Output, Runtime, Session, Stream};

/// timeout(1)'s exit code for a command that ran out of time.
const TIMED_OUT: u8 = 124;

/// Opens a session in `target` (`-`: this host).
fn open(target: &str, runtime: Option<Runtime>) -> Result<Session, String> {
    let runtime = match runtime {
        Some(runtime) => runtime,
        None if target == "-" => Runtime::Local,
        None => Runtime::detect().map_err(|e| format!("{target}: {e}"))?,
    };
    Session::builder(target).runtime(runtime).open().map_err(|e| e.to_string())
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
    target: &str,
    runtime: Option<Runtime>,
    line: &str,
    timeout: Option<Duration>,
    interactive: bool,
) -> Result<ExitCode, String> {
    let mut sh = open(target, runtime)?;
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

pub fn shell(target: &str, runtime: Option<Runtime>) -> Result<ExitCode, String> {
    let mut sh = open(target, runtime)?;
    let interrupter = sh.interrupter();
    let busy = Arc::new(AtomicBool::new(false));
    let prompt = Arc::new(Mutex::new(format!("{target}$ ")));
    {
        let (busy, prompt) = (Arc::clone(&busy), Arc::clone(&prompt));
        // Ctrl-C interrupts the running command; at the prompt it gives a fresh prompt.
        ctrlc::set_handler(move || {
            if busy.load(Ordering::SeqCst) {
                let _ = interrupter.interrupt();
            } else if let Ok(prompt) = prompt.lock() {
                let _ = write!(io::stderr(), "\n{prompt}");
            }
        })
        .map_err(|e| format!("catching Ctrl-C: {e}"))?;
    }
    let mut last = 0u8;
    let stdin = io::stdin();
    let mut line = String::new();
    loop {
        if let Ok(prompt) = prompt.lock() {
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
        if let Ok(mut prompt) = prompt.lock() {
            *prompt = match last {
                0 => format!("{target}$ "),
                code => format!("[{code}] {target}$ "),
            };
        }
    }
    crate::say!();
    sh.close().map_err(|e| e.to_string())?;
    Ok(ExitCode::from(last))
}
