//! The command line, parsed with lexopt: options may come before or after the names.

use std::ffi::OsString;
use std::mem::take;
use std::path::PathBuf;
use std::time::Duration;

use boxshell::ops::{Backend, SessionDef};
use boxshell::{Runtime, Stop};
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
        let (mut a, read) = Args::read(args)?;
        if read.help {
            return Ok(a);
        }
        if matches!(a.stop, Stop::Kill) && read.timeout.is_some() {
            return Err(Usage("stop takes --timeout or --kill, not both".into()));
        }
        let dashes = words.is_some();
        let mut positional = read.positional.into_iter();
        a.action = Action::parse(&mut positional, words, read.timeout, read.interactive)?;
        if let (Action::Ops { verb: Verb::Stop, .. }, Some(t)) = (&a.action, read.timeout) {
            a.stop = Stop::Graceful(t);
        }
        if let Some(extra) = positional.next() {
            return Err(Usage(format!("{extra}: unexpected argument")));
        }
        if dashes && !matches!(a.action, Action::Exec { .. }) {
            return Err(Usage("`--` is only for exec".into()));
        }
        if let Some((_, typed)) = read.given.into_iter().find(|(name, _)| !a.action.takes(name)) {
            return Err(Usage(format!("{} does not take {typed}", a.action.command())));
        }
        Ok(a)
    }

    /// Reads the options and names in `args`: the options that are fields of `Args` into it
    /// (its action left `Help`), the rest into [`Read`].
    fn read(args: Vec<OsString>) -> Result<(Args, Read), Usage> {
        let mut p = lexopt::Parser::from_args(args);
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
        let mut read = Read::default();
        while let Some(arg) = p.next()? {
            if let Some(option) = option(&arg) {
                read.given.push(option);
            }
            match arg {
                Short('h') | Long("help") => read.help = true,
                Short('i') | Long("interactive") => read.interactive = true,
                Long("config") => a.config = Some(p.value()?.into()),
                Long("json") => a.json = true,
                Long("backend") => a.backend = Some(backend(&p.value()?.string()?)?),
                Long("runtime") => {
                    let value = p.value()?.string()?;
                    a.runtime = Some(value.parse().map_err(|e| Usage(format!("--runtime: {e}")))?);
                }
                Long("socket") => a.socket = Some(p.value()?.string()?),
                Long("image") => a.overrides = take(&mut a.overrides).image(p.value()?.string()?),
                Long("command") => a.overrides = take(&mut a.overrides).command(p.value()?.string()?),
                Long("workdir") => a.overrides = take(&mut a.overrides).workdir(p.value()?.string()?),
                Short('e') | Long("env") => {
                    let (k, v) = env_pair(&p.value()?.string()?)?;
                    a.overrides = take(&mut a.overrides).env(k, v);
                }
                Short('v') | Long("volume") => a.overrides = take(&mut a.overrides).volume(p.value()?.string()?),
                Short('p') | Long("port") => a.overrides = take(&mut a.overrides).port(p.value()?.string()?),
                Long("timeout") => read.timeout = Some(seconds(&p.value()?.string()?)?),
                Long("kill") => a.stop = Stop::Kill,
                Short('n') | Long("lines") => a.lines = Some(p.value()?.parse()?),
                Value(v) => read.positional.push(v.string()?),
                _ => return Err(arg.unexpected().into()),
            }
        }
        Ok((a, read))
    }
}

/// What the command line says besides the fields of [`Args`], before the names make an action.
#[derive(Default)]
struct Read {
    help: bool,
    interactive: bool,
    timeout: Option<Duration>,
    /// The names (not options), in order: the command, its verb, its argument.
    positional: Vec<String>,
    /// The options given, by long name and as typed, to check each is one the command takes.
    given: Vec<(String, String)>,
}

/// The value of `--backend`.
fn backend(value: &str) -> Result<Backend, Usage> {
    match value {
        "tmux" => Ok(Backend::Tmux),
        "container" => Ok(Backend::Container),
        other => Err(Usage(format!("--backend {other}: expected tmux or container"))),
    }
}

/// The value of `-e`: `KEY=VALUE`.
fn env_pair(kv: &str) -> Result<(String, String), Usage> {
    let Some((k, v)) = kv.split_once('=') else {
        return Err(Usage(format!("-e {kv}: expected KEY=VALUE")));
    };
    Ok((k.to_string(), v.to_string()))
}

/// The value of `--timeout`: seconds, fractions too.
fn seconds(value: &str) -> Result<Duration, Usage> {
    let secs: f64 = value
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && *s >= 0.0)
        .ok_or_else(|| Usage(format!("--timeout {value}: expected a number of seconds")))?;
    Ok(Duration::from_secs_f64(secs))
}

/// An option's long name (`-e` is `env`) and the option as typed; `None` for a value. A long
/// option the parser does not know never gets this far; a short one without a long name here
/// is taken by no command.
fn option(arg: &lexopt::Arg<'_>) -> Option<(String, String)> {
    const SHORT: &[(char, &str)] =
        &[('h', "help"), ('i', "interactive"), ('e', "env"), ('v', "volume"), ('p', "port"), ('n', "lines")];
    match arg {
        Short(c) => {
            let typed = format!("-{c}");
            let long = SHORT.iter().find(|(s, _)| s == c).map_or_else(|| typed.clone(), |&(_, long)| long.into());
            Some((long, typed))
        }
        Long(l) => Some((l.to_string(), format!("--{l}"))),
        Value(_) => None,
    }
}

impl Action {
    /// The action the names in `positional` give, taking those it uses; `words`, those after
    /// `--`.
    fn parse(
        positional: &mut impl Iterator<Item = String>,
        words: Option<Vec<OsString>>,
        timeout: Option<Duration>,
        interactive: bool,
    ) -> Result<Action, Usage> {
        match positional.next().as_deref() {
            None => Err(Usage("no command given".into())),
            Some("ops") => Action::ops(positional),
            Some("exec") => {
                let target = positional.next().ok_or_else(|| Usage("exec: a TARGET is needed".into()))?;
                Ok(Action::Exec { target, line: exec_line(words)?, timeout, interactive })
            }
            Some("shell") => {
                let target = positional.next().ok_or_else(|| Usage("shell: a TARGET is needed".into()))?;
                Ok(Action::Shell { target })
            }
            Some(other) => Err(Usage(format!("{other}: no such command"))),
        }
    }

    /// `ops VERB [NAME]`, after `ops`.
    fn ops(positional: &mut impl Iterator<Item = String>) -> Result<Action, Usage> {
        let verb = match positional.next() {
            Some(word) => Verb::ALL
                .into_iter()
                .find(|v| v.name() == word)
                .ok_or_else(|| Usage(format!("ops {word}: no such verb")))?,
            None => return Err(Usage("ops: which verb?".into())),
        };
        let name = if verb == Verb::List { None } else { positional.next() };
        if verb != Verb::List && name.is_none() {
            return Err(Usage("ops: a session NAME is needed".into()));
        }
        Ok(Action::Ops { verb, name })
    }

    /// How the command is named in errors.
    fn command(&self) -> String {
        match self {
            Action::Help => "boxshell".into(),
            Action::Ops { verb, .. } => format!("ops {}", verb.name()),
            Action::Exec { .. } => "exec".into(),
            Action::Shell { .. } => "shell".into(),
        }
    }

    /// Whether the command takes `option`.
    fn takes(&self, option: &str) -> bool {
        // Every ops verb works on the facade as the file and these make it.
        const FACADE: &[&str] = &["config", "json", "backend", "runtime", "socket"];
        let own: &[&str] = match self {
            Action::Help => return true,
            Action::Ops { verb: Verb::Start, .. } => &["image", "command", "workdir", "env", "volume", "port"],
            Action::Ops { verb: Verb::Stop, .. } => &["timeout", "kill"],
            Action::Ops { verb: Verb::Logs, .. } => &["lines"],
            Action::Ops { .. } => &[],
            Action::Exec { .. } => return ["runtime", "timeout", "interactive"].contains(&option),
            Action::Shell { .. } => return option == "runtime",
        };
        FACADE.contains(&option) || own.contains(&option)
    }
}

/// The line `exec` runs: the words after `--`, joined with spaces.
fn exec_line(words: Option<Vec<OsString>>) -> Result<String, Usage> {
    let Some(words) = words else { return Err(Usage("exec: the command goes after `--`".into())) };
    let words: Vec<String> = words
        .into_iter()
        .map(|w| w.into_string().map_err(|w| Usage(format!("{}: not UTF-8", w.to_string_lossy()))))
        .collect::<Result<_, _>>()?;
    if words.is_empty() {
        return Err(Usage("exec: no command after `--`".into()));
    }
    Ok(words.join(" "))
}

impl Verb {
    const ALL: [Verb; 7] = [Verb::List, Verb::Start, Verb::Stop, Verb::Status, Verb::Logs, Verb::Attach, Verb::Exists];

    fn name(self) -> &'static str {
        match self {
            Verb::List => "list",
            Verb::Start => "start",
            Verb::Stop => "stop",
            Verb::Status => "status",
            Verb::Logs => "logs",
            Verb::Attach => "attach",
            Verb::Exists => "exists",
        }
    }
}
