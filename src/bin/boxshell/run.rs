//! `exec` and `shell`: commands in a session, their output passed through as it comes.

use std::io::{self, BufRead, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use boxshell::{Error, Output, Runtime, Session, Stream};

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

/// Runs `line`, its stdout and stderr written through as they arrive (nothing kept).
fn run_line(sh: &mut Session, line: &str, timeout: Option<Duration>) -> boxshell::Result<Output> {
    let (mut stdout, mut stderr) = (io::stdout(), io::stderr());
    sh.cmd(line)
        .timeout(timeout)
        .max_output(0)
        .on_chunk(move |stream, bytes| {
            // A reader that went away (`| head`) ends nothing here: the command runs on.
            let _ = match stream {
                Stream::Stdout => stdout.write_all(bytes).and_then(|()| stdout.flush()),
                _ => stderr.write_all(bytes).and_then(|()| stderr.flush()),
            };
        })
        .run()
}

/// The exit code the tool gives for a command's end.
fn code_of(out: &Output) -> u8 {
    if out.timed_out { TIMED_OUT } else { exit_byte(Some(out.exit_code)) }
}

/// A shell's exit code as a process's; 1 when there is none that fits.
fn exit_byte(code: Option<i32>) -> u8 {
    code.and_then(|c| u8::try_from(c).ok()).unwrap_or(1)
}

pub fn exec(target: &str, runtime: Option<Runtime>, line: &str, timeout: Option<Duration>) -> Result<ExitCode, String> {
    let mut sh = open(target, runtime)?;
    let interrupter = sh.interrupter();
    ctrlc::set_handler(move || {
        let _ = interrupter.interrupt();
    })
    .map_err(|e| format!("catching Ctrl-C: {e}"))?;
    let code = match run_line(&mut sh, line, timeout) {
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
                eprint!("\n{prompt}");
            }
        })
        .map_err(|e| format!("catching Ctrl-C: {e}"))?;
    }
    let mut last = 0u8;
    let stdin = io::stdin();
    let mut line = String::new();
    loop {
        if let Ok(prompt) = prompt.lock() {
            eprint!("{prompt}");
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
        let result = run_line(&mut sh, command, None);
        busy.store(false, Ordering::SeqCst);
        last = match result {
            Ok(out) => code_of(&out),
            Err(Error::ShellExited { code, .. }) => {
                return Ok(ExitCode::from(exit_byte(code)));
            }
            Err(e) => {
                eprintln!("boxshell: {e}");
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
    eprintln!();
    sh.close().map_err(|e| e.to_string())?;
    Ok(ExitCode::from(last))
}
