//! The command line, parsed with lexopt: options may come before or after the names.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use boxshell::{Backend, CommandLine, Runtime, SessionDef, Stop};
use lexopt::prelude::*;

pub const USAGE: &str = "\
usage: boxshell [--config FILE] [--json] ops list
       boxshell ops start NAME [--backend tmux|container] [--runtime R] [--socket S]
                [--image I] [--command LINE] [--workdir DIR] [-e K=V]... [-v VOL]... [-p PORT]...
       boxshell ops stop NAME [--timeout SECS | --kill]
       boxshell ops status|logs|attach|exists NAME      (logs: -n N)
       boxshell exec [-i] [--runtime R] [--timeout SECS] TARGET -- WORDS...   (TARGET - : this host;
                                       -i: the command reads this program's stdin, else EOF)
       boxshell shell [--runtime R] TARGET

The config file: --config FILE, else $BOXSHELL_CONFIG, else ./boxshell.toml,
else $XDG_CONFIG_HOME/boxshell/config.toml.";

/// A usage error: exit code 2.
#[derive(Debug)]
pub struct Usage(pub String);

impl From<lexopt::Error> for Usage {
    fn from(e: lexopt::Error) -> Usage {
        Usage(e.to_string())
    }
}

/// What to do.
#[derive(Debug)]
pub enum Action {
    Help,
    Ops {
        verb: Verb,
        name: Option<String>,
    },
    /// `interactive`: the command reads this process's stdin (`-i`), else EOF.
    Exec {
        target: String,
        line: String,
        timeout: Option<Duration>,
        interactive: bool,
    },
    Shell {
        target: String,
    },
}

/// An `ops` verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    List,
    Start,
    Stop,
    Status,
    Logs,
    Attach,
    Exists,
}

/// The parsed command line.
#[derive(Debug)]
pub struct Args {
    pub action: Action,
    pub config: Option<PathBuf>,
    pub json: bool,
    pub backend: Option<Backend>,
    pub runtime: Option<Runtime>,
    pub socket: Option<String>,
    /// What `start` overrides of the definition.
    pub overrides: SessionDef,
    pub stop: Stop,
    pub lines: Option<usize>,
}

impl Args {
    /// Parses `args` (without the program name).
    pub fn parse(args: Vec<OsString>) -> Result<Args, Usage> {
        // `exec` takes the words after the first `--` as they are.
        let (args, words) = match args.iter().position(|a| a == "--") {
            Some(i) => (args[..i].to_vec(), Some(args[i + 1..].to_vec())),
            None => (args, None),
        };
        let mut p = lexopt::Parser::from_args(args);
        let mut positional: Vec<String> = Vec::new();
        let mut a = Args {
            action: Action::Help,
            config: None,
            json: false,
            backend: None,
            runtime: None,
            socket: None,
            overrides: SessionDef::default(),
            stop: Stop::default(),
            lines: None,
        };
        let mut timeout = None;
        let (mut help, mut interactive) = (false, false);
        while let Some(arg) = p.next()? {
            match arg {
                Short('h') | Long("help") => help = true,
                Short('i') | Long("interactive") => interactive = true,
                Long("config") => a.config = Some(p.value()?.into()),
                Long("json") => a.json = true,
                Long("backend") => {
                    a.backend = Some(match p.value()?.string()?.as_str() {
                        "tmux" => Backend::Tmux,
                        "container" => Backend::Container,
                        other => return Err(Usage(format!("--backend {other}: expected tmux or container"))),
                    })
                }
                Long("runtime") => {
                    let value = p.value()?.string()?;
                    a.runtime = Some(value.parse().map_err(|e| Usage(format!("--runtime: {e}")))?);
                }
                Long("socket") => a.socket = Some(p.value()?.string()?),
                Long("image") => a.overrides.image = Some(p.value()?.string()?),
                Long("command") => a.overrides.command = Some(CommandLine::Shell(p.value()?.string()?)),
                Long("workdir") => a.overrides.workdir = Some(p.value()?.string()?),
                Short('e') | Long("env") => {
                    let kv = p.value()?.string()?;
                    let Some((k, v)) = kv.split_once('=') else {
                        return Err(Usage(format!("-e {kv}: expected KEY=VALUE")));
                    };
                    a.overrides.env.insert(k.to_string(), v.to_string());
                }
                Short('v') | Long("volume") => a.overrides.volumes.push(p.value()?.string()?),
                Short('p') | Long("port") => a.overrides.ports.push(p.value()?.string()?),
                Long("timeout") => {
                    let value = p.value()?.string()?;
                    let secs: f64 = value
                        .parse()
                        .ok()
                        .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                        .ok_or_else(|| Usage(format!("--timeout {value}: expected a number of seconds")))?;
                    timeout = Some(Duration::from_secs_f64(secs));
                }
                Long("kill") => a.stop = Stop::Kill,
                Short('n') | Long("lines") => a.lines = Some(p.value()?.parse()?),
                Value(v) => positional.push(v.string()?),
                _ => return Err(arg.unexpected().into()),
            }
        }
        if help {
            return Ok(a);
        }
        if matches!(a.stop, Stop::Kill) && timeout.is_some() {
            return Err(Usage("stop takes --timeout or --kill, not both".into()));
        }
        let dashes = words.is_some();
        let mut positional = positional.into_iter();
        let first = positional.next();
        a.action = match first.as_deref() {
            None => return Err(Usage("no command given".into())),
            Some("ops") => {
                let verb = match positional.next().as_deref() {
                    Some("list") => Verb::List,
                    Some("start") => Verb::Start,
                    Some("stop") => Verb::Stop,
                    Some("status") => Verb::Status,
                    Some("logs") => Verb::Logs,
                    Some("attach") => Verb::Attach,
                    Some("exists") => Verb::Exists,
                    Some(other) => return Err(Usage(format!("ops {other}: no such verb"))),
                    None => return Err(Usage("ops: which verb?".into())),
                };
                if let (Verb::Stop, Some(t)) = (verb, timeout) {
                    a.stop = Stop::Graceful(t);
                }
                let name = positional.next();
                if verb != Verb::List && name.is_none() {
                    return Err(Usage("ops: a session NAME is needed".into()));
                }
                Action::Ops { verb, name }
            }
            Some("exec") => {
                let target = positional.next().ok_or_else(|| Usage("exec: a TARGET is needed".into()))?;
                let Some(words) = words else { return Err(Usage("exec: the command goes after `--`".into())) };
                let words: Vec<String> = words
                    .into_iter()
                    .map(|w| w.into_string().map_err(|w| Usage(format!("{}: not UTF-8", w.to_string_lossy()))))
                    .collect::<Result<_, _>>()?;
                if words.is_empty() {
                    return Err(Usage("exec: no command after `--`".into()));
                }
                Action::Exec { target, line: words.join(" "), timeout, interactive }
            }
            Some("shell") => {
                let target = positional.next().ok_or_else(|| Usage("shell: a TARGET is needed".into()))?;
                Action::Shell { target }
            }
            Some(other) => return Err(Usage(format!("{other}: no such command"))),
        };
        if let Some(extra) = positional.next() {
            return Err(Usage(format!("{extra}: unexpected argument")));
        }
        if dashes && !matches!(a.action, Action::Exec { .. }) {
            return Err(Usage("`--` is only for exec".into()));
        }
        if interactive && !matches!(a.action, Action::Exec { .. }) {
            return Err(Usage("-i is only for exec".into()));
        }
        Ok(a)
    }
}
