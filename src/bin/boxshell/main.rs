//! `boxshell`: the [`Ops`] facade, one-off commands and a line-oriented shell from the
//! terminal, built on the library's public API alone. Built with `--features cli`.

mod args;
mod output;
mod run;

use std::io::Write;
use std::process::ExitCode;

use boxshell::ops::{Ops, SessionDef};

use args::{Action, Args, CompletionShell, Usage, Verb};

/// Writes a line to stderr; a reader that went away is no reason to panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
pub(crate) use say;

/// Exit code of a failed operation.
const FAILED: u8 = 1;
/// Exit code of a usage error.
const USAGE_ERROR: u8 = 2;

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args_os()) {
        Ok(args) => args,
        Err(Usage { message, command }) => {
            let help = command.map_or_else(|| "boxshell --help".to_string(), |c| format!("boxshell {c} --help"));
            say!("boxshell: {message} (see {help})");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    match run(args) {
        Ok(code) => code,
        Err(message) => {
            say!("boxshell: {message}");
            ExitCode::from(FAILED)
        }
    }
}

fn run(args: Args) -> Result<ExitCode, String> {
    match args.action {
        Action::Print(ref text) => answer(text.as_bytes()),
        Action::Completions(shell) => answer(&completions(shell)),
        Action::Ops { verb, ref name } => {
            let name = name.clone().unwrap_or_default();
            ops_verb(&args, verb, &name)
        }
        Action::Exec { ref session, ref line, timeout, interactive } => run::exec(session, line, timeout, interactive),
        Action::Shell { ref session } => run::shell(session),
    }
}

/// Writes `text` to stdout: help, the version, a completion script.
fn answer(text: &[u8]) -> Result<ExitCode, String> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text).and_then(|()| out.flush()) {
        // `boxshell --help | head -1` is no failure.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(format!("writing the answer: {e}")),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// The completion script for `shell`, made from the command line's definition.
fn completions(shell: CompletionShell) -> Vec<u8> {
    use clap_complete::Shell;
    let shell = match shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    // Into memory first: the generator panics on a write error, such as a closed pipe.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut args::command(), "boxshell", &mut script);
    script
}

/// What the command line sets of session `name`'s definition.
fn overrides(args: &Args) -> SessionDef {
    let mut overrides: SessionDef = args.overrides.clone();
    if let Some(backend) = args.backend {
        overrides = overrides.backend(backend);
    }
    if let Some(runtime) = &args.runtime {
        overrides = overrides.runtime(runtime.clone());
    }
    if let Some(socket) = &args.socket {
        overrides = overrides.socket(socket);
    }
    overrides
}

/// The facade: the config file found, with the command line's settings on top, for the
/// facade and for the definition of `name`.
fn facade(args: &Args, name: &str) -> Result<Ops, String> {
    let path = args.config.clone().or_else(Ops::config_path);
    let mut ops = match &path {
        Some(path) => Ops::from_file(path).map_err(|e| e.to_string())?,
        None => Ops::new(),
    };
    if let Some(def) = ops.definitions().get(name) {
        let def = def.clone().overridden_by(overrides(args));
        ops = ops.define(name, def);
    }
    if let Some(backend) = args.backend {
        ops = ops.default_backend(backend);
    }
    if let Some(runtime) = &args.runtime {
        ops = ops.runtime(runtime.clone());
    }
    if let Some(socket) = &args.socket {
        let tmux = ops.get_tmux().clone().socket(socket);
        ops = ops.tmux(tmux);
    }
    Ok(ops)
}

fn ops_verb(args: &Args, verb: Verb, name: &str) -> Result<ExitCode, String> {
    let ops = facade(args, name)?;
    // Errors name the session (the library's own words mostly do, and name the backend).
    let failed = |e: boxshell::Error| {
        let message = e.to_string();
        if message.contains(&format!("`{name}`")) { message } else { format!("{name}: {message}") }
    };
    let mut out = std::io::stdout().lock();
    let mut code = ExitCode::SUCCESS;
    let written = match verb {
        Verb::List => {
            let sessions = ops.list().map_err(|e| format!("ops list: {e}"))?;
            output::sessions(&mut out, &sessions, args.json)
        }
        Verb::Status => {
            let status = ops.status(name).map_err(failed)?;
            output::sessions(&mut out, std::slice::from_ref(&status), args.json)
        }
        Verb::Start => {
            let status = ops.start_with(name, overrides(args)).map_err(failed)?;
            output::sessions(&mut out, std::slice::from_ref(&status), args.json)
        }
        Verb::Stop => {
            ops.stop(name, args.stop).map_err(failed)?;
            output::done(&mut out, name, "stopped", args.json)
        }
        Verb::Logs => {
            let logs = ops.logs(name, args.lines).map_err(failed)?;
            output::logs(&logs, args.json)
        }
        Verb::Exists => {
            let backend = ops.backend_of(name).map_err(failed)?;
            if backend.is_none() {
                code = ExitCode::from(FAILED);
            }
            output::exists(&mut out, name, backend, args.json)
        }
        Verb::Attach => return Err(failed(ops.attach(name))),
    };
    match written.and_then(|()| out.flush()) {
        // A reader that has seen enough (`| head -1`) is no failure.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(format!("writing the answer: {e}")),
        _ => Ok(code),
    }
}
