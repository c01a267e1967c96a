//! The command line, parsed with clap and then turned into [`Args`], which the rest of the tool
//! works from.
//!
//! Why clap: per-command `--help` with examples, `help COMMAND`, `--version`, "did you mean"
//! and completion scripts for bash, zsh and fish (clap_complete) all come from one definition,
//! so they cannot drift apart. Built without colour or terminal-width wrapping: a release
//! build answers `boxshell --version` in about 1.4 ms, where `/bin/true` takes 0.8 ms.
//!
//! The options of the `ops` facade (`--config`, `--json`, `--backend`, `--runtime`,
//! `--socket`) are taken before the command, after `ops` and after the verb, as they always
//! were; every command's `--help` lists only what that command takes, and an option a command
//! does not take is a usage error wherever it was put.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use boxshell::ops::{Backend, SessionDef};
use boxshell::{Runtime, Stop};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::error::{ContextKind, ErrorKind};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

const ROOT_HELP: &str = "\
Examples:
  boxshell exec web -- 'cd /app && make test'    one line in container web, its exit code
  boxshell shell web                             a shell in web, state kept between lines
  printf 'cd /tmp\\npwd\\n' | boxshell shell -     a script through a shell on this host
  boxshell ops start db                          a session defined in boxshell.toml
  boxshell ops list --json
  boxshell help exec                             one command's options and examples

The options of the ops commands are taken before the command too; --runtime there is exec's
and shell's as well.

TARGET is a container's name or id, a pod with --runtime kubectl, or - for this host. Without
--runtime (or $BOXSHELL_RUNTIME) the engine that has the container is used: docker or
podman; a container by that name on both, or on neither, is an error.

The config file: --config FILE, else $BOXSHELL_CONFIG, else ./boxshell.toml, else
$XDG_CONFIG_HOME/boxshell/config.toml.

Exit codes: 0 success, 1 failure, 2 usage error; exec and shell exit with the command's code,
124 after exec --timeout.";

const OPS_HELP: &str = "\
A session is a tmux session (backend tmux) or a container (backend container), defined by
name in the config file or wholly by the options of `ops start`. The options above are taken
here, before `ops` and after the verb alike.

Examples:
  boxshell ops list
  boxshell ops start web
  boxshell ops start api --backend container --image node:22 --command 'npm start' -p 3000:3000
  boxshell ops logs web -n 20
  boxshell ops stop web --timeout 5
  boxshell ops exists web && echo up";

const LIST_HELP: &str = "\
Examples:
  boxshell ops list
  boxshell ops list --json | jq -r '.[] | select(.state == \"running\") | .name'";

const START_HELP: &str = "\
The options given go on top of NAME's definition in the config file; a name the file does not
define is started from the options alone (a container needs --image).

-e K=V sets K; -e K takes K's value from this program's environment, and leaves K out if it is
not set there (as docker does).

Examples:
  boxshell ops start web
  boxshell ops start web -e MODE=debug
  boxshell ops start api --backend container --image node:22 --command 'npm start' -p 3000:3000
  boxshell ops start build --backend tmux --command 'make watch' -w ~/src/app";

const STOP_HELP: &str = "\
Examples:
  boxshell ops stop web                 SIGTERM, then SIGKILL after the engine's grace period
  boxshell ops stop web --timeout 2
  boxshell ops stop web --kill";

const STATUS_HELP: &str = "\
Examples:
  boxshell ops status web
  boxshell ops status web --json";

const LOGS_HELP: &str = "\
Each line goes to the stream it was written to, in the order written; with --json, one array
of {\"stream\", \"line\"}.

Examples:
  boxshell ops logs web
  boxshell ops logs web -n 20 2>/dev/null      the last 20 lines, stdout's only";

const ATTACH_HELP: &str = "\
Examples:
  boxshell ops attach build             tmux attach; a container: its engine's attach";

const EXISTS_HELP: &str = "\
Exits 0 if NAME exists (and says in which backend), 1 if not.

Examples:
  boxshell ops exists web && echo up";

const EXEC_HELP: &str = "\
The words after -- are joined with spaces into one shell line, run by the session's shell in
TARGET (quote once, for this shell: boxshell exec web -- 'echo $HOME' prints the container's
$HOME). stdout and stderr pass through byte for byte; the exit code is the command's, 124
after --timeout. Without -i the command reads EOF. Ctrl-C interrupts the command.

-e K=V sets K; -e K takes K's value from this program's environment, and leaves K out if it is
not set there (as docker exec does).

Examples:
  boxshell exec web -- ls -la /app
  boxshell exec -w /app -e RUST_LOG=debug -u nobody web -- 'cargo test 2>&1 | tail'
  boxshell exec --timeout 30 web -- make check; echo $?
  boxshell exec -i web -- 'cat > /tmp/in.json' < in.json
  boxshell exec --runtime podman web -- id
  boxshell exec --runtime kubectl deploy/api -- env
  boxshell exec - -- uname -a                    this host, no container";

const SHELL_HELP: &str = "\
With stdin and stderr on a terminal: a prompt on stderr (`[CODE] TARGET$ ` after a failure),
one line per command, Ctrl-C interrupts the running command, Ctrl-D ends.

Otherwise (stdin a pipe or a file) it reads commands as `sh -s` does: no prompt and no banner,
and the exit code is the last command's (or exit's). Each line is one command: a compound
command (if, for, a here-document) must fit on one line. The commands' own stdin is empty, as
stdin holds the commands. State carries over between lines: cd, variables, functions.

-e K=V sets K; -e K takes K's value from this program's environment, and leaves K out if it is
not set there (as docker exec does).

Examples:
  boxshell shell web
  boxshell shell --shell /bin/bash -w /app -u app web
  printf 'cd /tmp\\npwd\\nexit 3\\n' | boxshell shell web; echo $?   /tmp, then 3
  boxshell shell - < setup.sh";

const COMPLETIONS_HELP: &str = "\
Examples:
  boxshell completions bash > ~/.local/share/bash-completion/completions/boxshell
  boxshell completions zsh > ~/.zfunc/_boxshell     (with fpath+=(~/.zfunc) before compinit)
  boxshell completions fish > ~/.config/fish/completions/boxshell.fish";

/// The command line as clap reads it.
#[derive(Parser, Debug)]
#[command(
    name = "boxshell",
    version,
    about = "Persistent shell sessions in containers: one-off commands, a shell, and sessions by name",
    after_help = ROOT_HELP,
    subcommand_required = true
)]
struct Cli {
    #[command(flatten)]
    facade: Facade,
    #[command(subcommand)]
    command: CliCommand,
}

/// The options of the `ops` facade.
#[derive(clap::Args, Debug, Default, Clone)]
#[command(next_help_heading = "Options of every ops command")]
struct Facade {
    // Help over two lines, as it is not wrapped to the terminal's width.
    #[arg(
        long,
        value_name = "FILE",
        help = "The config file [default: $BOXSHELL_CONFIG, ./boxshell.toml,\n$XDG_CONFIG_HOME/boxshell/config.toml]"
    )]
    config: Option<PathBuf>,
    /// Answer with one JSON value, for scripts
    #[arg(long)]
    json: bool,
    /// tmux or container, for sessions their definition does not place
    #[arg(long, value_name = "BACKEND", hide_possible_values = true, value_parser = backend_parser())]
    backend: Option<Backend>,
    #[arg(
        long,
        value_name = "RUNTIME",
        ignore_case = true,
        hide_possible_values = true,
        value_parser = runtime_parser(),
        help = "docker, podman, kubectl or local\n[default: $BOXSHELL_RUNTIME, else the engine that answers]"
    )]
    runtime: Option<Runtime>,
    /// The tmux server's socket name (tmux -L)
    #[arg(long, value_name = "SOCKET")]
    socket: Option<String>,
}

#[derive(Subcommand, Debug)]
enum CliCommand {
    /// Named sessions, tmux or container: list, start, stop, status, logs, attach, exists
    #[command(after_help = OPS_HELP, subcommand_required = true)]
    Ops(OpsCli),
    /// Run one shell line in TARGET, its output passed through, its exit code the tool's
    #[command(after_help = EXEC_HELP)]
    Exec(ExecCli),
    /// A shell in TARGET: a prompt on a terminal, read like `sh -s` from a pipe or a file
    #[command(after_help = SHELL_HELP)]
    Shell(ShellCli),
    /// Print the completion script for bash, zsh or fish
    #[command(after_help = COMPLETIONS_HELP)]
    Completions {
        /// The shell the script is for
        #[arg(value_enum)]
        shell: CompletionShell,
    },
}

/// A shell that completion scripts are made for.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

#[derive(clap::Args, Debug)]
struct OpsCli {
    #[command(flatten)]
    facade: Facade,
    #[command(subcommand)]
    verb: OpsVerb,
}

#[derive(Subcommand, Debug)]
enum OpsVerb {
    /// Every session defined, in tmux, or in containers boxshell started
    #[command(after_help = LIST_HELP)]
    List {
        #[command(flatten)]
        facade: Facade,
    },
    /// Start session NAME as defined, with the options given on top
    #[command(after_help = START_HELP)]
    Start {
        /// The session
        name: String,
        #[command(flatten)]
        def: DefOptions,
        #[command(flatten)]
        facade: Facade,
    },
    /// Stop session NAME and remove what boxshell created for it
    #[command(after_help = STOP_HELP)]
    Stop {
        /// The session
        name: String,
        /// Seconds between SIGTERM and SIGKILL
        #[arg(long, value_name = "SECS", value_parser = seconds, conflicts_with = "kill")]
        timeout: Option<Duration>,
        /// SIGKILL at once
        #[arg(long)]
        kill: bool,
        #[command(flatten)]
        facade: Facade,
    },
    /// The state of session NAME: backend, state, PID, image
    #[command(after_help = STATUS_HELP)]
    Status(NameOnly),
    /// What session NAME wrote, each line on its own stream
    #[command(after_help = LOGS_HELP)]
    Logs {
        /// The session
        name: String,
        /// Only the last N lines
        #[arg(short = 'n', long, value_name = "N")]
        lines: Option<usize>,
        #[command(flatten)]
        facade: Facade,
    },
    /// Attach this terminal to session NAME
    #[command(after_help = ATTACH_HELP)]
    Attach(NameOnly),
    /// Whether session NAME exists: exit 0 if so, 1 if not
    #[command(after_help = EXISTS_HELP)]
    Exists(NameOnly),
}

#[derive(clap::Args, Debug)]
struct NameOnly {
    /// The session
    name: String,
    #[command(flatten)]
    facade: Facade,
}

/// What `ops start` sets of a definition.
#[derive(clap::Args, Debug)]
struct DefOptions {
    /// The image (backend container)
    #[arg(long, value_name = "IMAGE")]
    image: Option<String>,
    /// The command, as a shell line
    #[arg(long, value_name = "LINE")]
    command: Option<String>,
    /// The directory to start in
    #[arg(short = 'w', long, value_name = "DIR")]
    workdir: Option<String>,
    /// An environment variable: K=V, or K to take this program's K (repeatable)
    #[arg(short = 'e', long = "env", value_name = "K=V", value_parser = env_var)]
    env: Vec<EnvVar>,
    /// A volume, as docker run -v takes it (repeatable)
    #[arg(short = 'v', long = "volume", value_name = "VOL")]
    volume: Vec<String>,
    /// A published port, as docker run -p takes it (repeatable)
    #[arg(short = 'p', long = "port", value_name = "PORT")]
    port: Vec<String>,
}

#[derive(clap::Args, Debug)]
struct ExecCli {
    /// The command reads this program's stdin (else EOF)
    #[arg(short, long)]
    interactive: bool,
    /// Seconds before the command is interrupted (exit code 124); 0: none, as timeout(1)
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    timeout: Option<Duration>,
    #[command(flatten)]
    session: SessionOptions,
    /// A container's name or id, a pod (--runtime kubectl), or - for this host
    target: String,
    /// The command line: the words are joined with spaces
    #[arg(last = true, required = true, value_name = "WORDS")]
    words: Vec<String>,
}

#[derive(clap::Args, Debug)]
struct ShellCli {
    #[command(flatten)]
    session: SessionOptions,
    /// A container's name or id, a pod (--runtime kubectl), or - for this host
    target: String,
}

/// How `exec` and `shell` open their session, as `docker exec` takes it.
#[derive(clap::Args, Debug)]
struct SessionOptions {
    #[arg(
        long,
        value_name = "RUNTIME",
        ignore_case = true,
        hide_possible_values = true,
        value_parser = runtime_parser(),
        help = "docker, podman, kubectl or local\n[default: $BOXSHELL_RUNTIME, else the engine that has TARGET]"
    )]
    runtime: Option<Runtime>,
    /// The shell to run [default: /bin/sh]
    #[arg(long, value_name = "PATH")]
    shell: Option<String>,
    /// The directory the shell starts in
    #[arg(short = 'w', long, value_name = "DIR")]
    workdir: Option<String>,
    /// An environment variable: K=V, or K to take this program's K (repeatable)
    #[arg(short = 'e', long = "env", value_name = "K=V", value_parser = env_var)]
    env: Vec<EnvVar>,
    /// The user the shell runs as: a name or UID[:GID] (containers only)
    #[arg(short = 'u', long, value_name = "USER")]
    user: Option<String>,
}

/// `-e K=V`, or `-e K` with K's value here (`None`: K is not set here, so it is left out).
#[derive(Debug, Clone)]
struct EnvVar(String, Option<String>);

/// A usage error: exit code 2. `command` names the command whose help to see (`exec`,
/// `ops start`), if known.
#[derive(Debug)]
pub struct Usage {
    pub message: String,
    pub command: Option<String>,
}

impl Usage {
    fn new(message: impl Into<String>, command: Option<&str>) -> Usage {
        Usage { message: message.into(), command: command.map(str::to_string) }
    }
}

/// What to do.
#[derive(Debug)]
pub enum Action {
    /// Write this text to stdout and exit 0: help, the version.
    Print(String),
    Ops {
        verb: Verb,
        name: Option<String>,
    },
    /// `interactive`: the command reads this process's stdin (`-i`), else EOF.
    Exec {
        session: SessionSpec,
        line: String,
        timeout: Option<Duration>,
        interactive: bool,
    },
    Shell {
        session: SessionSpec,
    },
    Completions(CompletionShell),
}

/// The session `exec` or `shell` opens.
#[derive(Debug, Clone, Default)]
pub struct SessionSpec {
    pub target: String,
    pub runtime: Option<Runtime>,
    pub shell: Option<String>,
    pub workdir: Option<String>,
    pub env: Vec<(String, String)>,
    pub user: Option<String>,
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

/// The whole command line's definition, as help and completions show it.
pub fn command() -> clap::Command {
    settle(Cli::command())
}

/// Settings for `cmd` and every command below it: an option given twice takes the last value,
/// as most tools do (repeatable ones, `-e`, `-v`, `-p`, still add up).
fn settle(cmd: clap::Command) -> clap::Command {
    let names: Vec<String> = cmd.get_subcommands().map(|c| c.get_name().to_string()).collect();
    let mut cmd = cmd.args_override_self(true);
    for name in names {
        cmd = cmd.mut_subcommand(name, settle);
    }
    cmd
}

impl Args {
    /// Parses `args` (the program name first).
    pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Args, Usage> {
        let args: Vec<OsString> = args.into_iter().collect();
        let mut cmd = command();
        let matches = match cmd.try_get_matches_from_mut(&args) {
            Ok(matches) => matches,
            Err(e) => return Args::printed(&cmd, &args, &e),
        };
        let cli = Cli::from_arg_matches(&matches).map_err(|e| Usage::new(one_line(&e.render().to_string()), None))?;
        Args::from_cli(cli)
    }

    /// Help and the version are answers to print; anything else clap stops at is a usage
    /// error, of the command `args` name.
    fn printed(cmd: &clap::Command, args: &[OsString], e: &clap::Error) -> Result<Args, Usage> {
        let mut path = command_path(cmd, args);
        // `boxshell help nope`: the help of what `help` was asked about.
        if path.last().is_some_and(|p| p == "help") {
            path.pop();
        }
        let command = (!path.is_empty()).then(|| path.join(" "));
        let message = match e.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                return Ok(Args::of(Action::Print(e.render().to_string())));
            }
            // `boxshell ops`: clap would print the help, a usage error all the same.
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
                let mut sub = cmd;
                for name in &path {
                    sub = sub.find_subcommand(name).unwrap_or(sub);
                }
                let names: Vec<&str> = sub.get_subcommands().map(|c| c.get_name()).filter(|&n| n != "help").collect();
                let of = command.as_deref().map(|c| format!("{c}: ")).unwrap_or_default();
                format!("{of}no command given; one of {}", names.join(", "))
            }
            kind => {
                let mut message = one_line(&e.render().to_string());
                // What is typed before `--` is not the command line.
                if kind == ErrorKind::UnknownArgument
                    && path == ["exec"]
                    && e.get(ContextKind::InvalidArg).is_some_and(|arg| !arg.to_string().starts_with('-'))
                {
                    message.push_str("; the command line goes after `--`");
                }
                message
            }
        };
        Err(Usage { message, command })
    }

    fn of(action: Action) -> Args {
        Args {
            action,
            config: None,
            json: false,
            backend: None,
            runtime: None,
            socket: None,
            overrides: SessionDef::default(),
            stop: Stop::default(),
            lines: None,
        }
    }

    fn from_cli(cli: Cli) -> Result<Args, Usage> {
        let root = cli.facade;
        let (action, facade) = match cli.command {
            CliCommand::Ops(ops) => return Args::ops(root.then(ops.facade), ops.verb),
            CliCommand::Exec(exec) => {
                let line = exec.words.join(" ");
                let session = exec.session.spec(exec.target, &root);
                let action = Action::Exec {
                    session,
                    line,
                    timeout: exec.timeout.filter(|t| !t.is_zero()),
                    interactive: exec.interactive,
                };
                (action, Facade { runtime: None, ..root })
            }
            CliCommand::Shell(shell) => {
                (Action::Shell { session: shell.session.spec(shell.target, &root) }, Facade { runtime: None, ..root })
            }
            CliCommand::Completions { shell } => (Action::Completions(shell), root),
        };
        // What is left of the options before the command is not for it.
        if let Some(given) = facade.given() {
            let command = match action {
                Action::Exec { .. } => "exec",
                Action::Shell { .. } => "shell",
                _ => "completions",
            };
            return Err(Usage::new(format!("{command} does not take {given}"), Some(command)));
        }
        Ok(Args::of(action))
    }

    /// `ops VERB`, with the facade's options from before the verb in `outer`.
    fn ops(outer: Facade, verb: OpsVerb) -> Result<Args, Usage> {
        let mut overrides = SessionDef::default();
        let mut stop = Stop::default();
        let mut lines = None;
        let (verb, name, facade) = match verb {
            OpsVerb::List { facade } => (Verb::List, None, facade),
            OpsVerb::Start { name, def, facade } => {
                overrides = def.definition();
                (Verb::Start, Some(name), facade)
            }
            OpsVerb::Stop { name, timeout, kill, facade } => {
                stop = match (kill, timeout) {
                    (true, _) => Stop::Kill,
                    (false, Some(t)) => Stop::Graceful(t),
                    (false, None) => Stop::default(),
                };
                (Verb::Stop, Some(name), facade)
            }
            OpsVerb::Status(n) => (Verb::Status, Some(n.name), n.facade),
            OpsVerb::Logs { name, lines: n, facade } => {
                lines = n;
                (Verb::Logs, Some(name), facade)
            }
            OpsVerb::Attach(n) => (Verb::Attach, Some(n.name), n.facade),
            OpsVerb::Exists(n) => (Verb::Exists, Some(n.name), n.facade),
        };
        let f = outer.then(facade);
        Ok(Args {
            action: Action::Ops { verb, name },
            config: f.config,
            json: f.json,
            backend: f.backend,
            runtime: f.runtime,
            socket: f.socket,
            overrides,
            stop,
            lines,
        })
    }
}

impl Facade {
    /// These options with `later`'s on top (those given after these).
    fn then(self, later: Facade) -> Facade {
        Facade {
            config: later.config.or(self.config),
            json: self.json || later.json,
            backend: later.backend.or(self.backend),
            runtime: later.runtime.or(self.runtime),
            socket: later.socket.or(self.socket),
        }
    }

    /// The first option given, as typed.
    fn given(&self) -> Option<&'static str> {
        [
            (self.config.is_some(), "--config"),
            (self.json, "--json"),
            (self.backend.is_some(), "--backend"),
            (self.runtime.is_some(), "--runtime"),
            (self.socket.is_some(), "--socket"),
        ]
        .into_iter()
        .find_map(|(given, name)| given.then_some(name))
    }
}

impl SessionOptions {
    /// The session in `target`, `--runtime` given after the command winning over one before.
    fn spec(self, target: String, root: &Facade) -> SessionSpec {
        SessionSpec {
            target,
            runtime: self.runtime.or_else(|| root.runtime.clone()),
            shell: self.shell,
            workdir: self.workdir,
            env: self.env.into_iter().filter_map(|EnvVar(k, v)| Some((k, v?))).collect(),
            user: self.user,
        }
    }
}

impl DefOptions {
    fn definition(self) -> SessionDef {
        let mut def = SessionDef::default();
        if let Some(image) = self.image {
            def = def.image(image);
        }
        if let Some(command) = self.command {
            def = def.command(command);
        }
        if let Some(dir) = self.workdir {
            def = def.workdir(dir);
        }
        for EnvVar(k, v) in self.env {
            if let Some(v) = v {
                def = def.env(k, v);
            }
        }
        for volume in self.volume {
            def = def.volume(volume);
        }
        for port in self.port {
            def = def.port(port);
        }
        def
    }
}

/// `--backend`: tmux or container.
fn backend_parser() -> impl TypedValueParser<Value = Backend> {
    PossibleValuesParser::new(["tmux", "container"])
        .map(|value| if value == "tmux" { Backend::Tmux } else { Backend::Container })
}

/// `--runtime`: docker, podman, kubectl or local (any case), listed for completion.
fn runtime_parser() -> impl TypedValueParser<Value = Runtime> {
    PossibleValuesParser::new(["docker", "podman", "kubectl", "local"]).try_map(|value| value.parse::<Runtime>())
}

/// `-e K=V`, or `-e K` for this program's K, as docker takes it.
fn env_var(arg: &str) -> Result<EnvVar, String> {
    let (key, value) = match arg.split_once('=') {
        Some((key, value)) => (key, Some(value.to_string())),
        None => match std::env::var(arg) {
            Ok(value) => (arg, Some(value)),
            Err(std::env::VarError::NotPresent) => (arg, None),
            Err(std::env::VarError::NotUnicode(_)) => return Err(format!("{arg} is not UTF-8 here")),
        },
    };
    if key.is_empty() {
        return Err("expected KEY=VALUE or KEY".into());
    }
    Ok(EnvVar(key.to_string(), value))
}

/// `--timeout`: seconds, fractions too.
fn seconds(value: &str) -> Result<Duration, String> {
    value
        .parse()
        .ok()
        .and_then(|s: f64| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| "expected a number of seconds".to_string())
}

/// clap's error, rendered over several lines (what is wrong, tips, the usage), as one line:
/// what is wrong and the tips that help here, without the usage.
fn one_line(rendered: &str) -> String {
    let mut line = String::new();
    for part in rendered.lines().take_while(|l| !l.starts_with("Usage:")) {
        let part = part.trim();
        let part = part.strip_prefix("error: ").unwrap_or(part);
        // "to pass '-n' as a value, use '-- -n'": no command here takes such values.
        if part.is_empty() || part.starts_with("For more information") || part.contains("as a value, use") {
            continue;
        }
        if !line.is_empty() {
            line.push_str(if line.ends_with(':') || part.starts_with('[') { " " } else { "; " });
        }
        line.push_str(part);
    }
    line
}

/// The names of the commands `args` reach in `cmd` (`["ops", "start"]`), as far as they go:
/// the words that name a subcommand, past the options and their values.
fn command_path(cmd: &clap::Command, args: &[OsString]) -> Vec<String> {
    let takes_value = |arg: Option<&clap::Arg>| arg.is_some_and(|a| a.get_action().takes_values());
    let mut cmd = cmd;
    let mut path = Vec::new();
    let mut args = args.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        } else if let Some(long) = arg.strip_prefix("--") {
            if !long.contains('=') && takes_value(cmd.get_arguments().find(|a| a.get_long() == Some(long))) {
                args.next();
            }
        } else if let Some(shorts) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
            // `-ie K=V` takes the next word; `-eK=V` does not.
            for (i, c) in shorts.char_indices() {
                if takes_value(cmd.get_arguments().find(|a| a.get_short() == Some(c))) {
                    if i + c.len_utf8() == shorts.len() {
                        args.next();
                    }
                    break;
                }
            }
        } else if let Some(sub) = cmd.find_subcommand(arg.as_ref()) {
            path.push(sub.get_name().to_string());
            cmd = sub;
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, Usage> {
        Args::parse(std::iter::once("boxshell").chain(args.iter().copied()).map(Into::into))
    }

    #[test]
    fn the_definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn facade_options_go_anywhere_and_the_last_wins() {
        let a = parse(&["--json", "--runtime", "docker", "ops", "--socket", "s", "status", "x", "--runtime", "podman"])
            .unwrap_or_else(|u| panic!("{}", u.message));
        assert!(a.json);
        assert_eq!(a.runtime, Some(Runtime::Podman));
        assert_eq!(a.socket.as_deref(), Some("s"));
        let a = parse(&["ops", "list", "--config", "a", "--config", "b"]).unwrap_or_else(|u| panic!("{}", u.message));
        assert_eq!(a.config, Some(PathBuf::from("b")));
    }

    #[test]
    fn exec_takes_docker_exec_options() {
        let a = parse(&[
            "exec",
            "-w",
            "/tmp",
            "-e",
            "A=x y",
            "-e",
            "A2=",
            "-u",
            "nobody",
            "--shell",
            "/bin/bash",
            "t",
            "--",
            "a",
            "b",
        ])
        .unwrap_or_else(|u| panic!("{}", u.message));
        let Action::Exec { session, line, .. } = a.action else { panic!("{:?}", a.action) };
        assert_eq!(line, "a b");
        assert_eq!(session.env, [("A".to_string(), "x y".to_string()), ("A2".into(), String::new())]);
        assert_eq!(
            (session.workdir.as_deref(), session.user.as_deref(), session.shell.as_deref()),
            (Some("/tmp"), Some("nobody"), Some("/bin/bash"))
        );
    }

    #[test]
    fn exec_timeout_of_zero_is_none_as_for_timeout_1() {
        for (secs, want) in [("0", None), ("0.0", None), ("1.5", Some(Duration::from_millis(1500)))] {
            let a = parse(&["exec", "--timeout", secs, "-", "--", "true"]).unwrap_or_else(|u| panic!("{}", u.message));
            let Action::Exec { timeout, .. } = a.action else { panic!("{:?}", a.action) };
            assert_eq!(timeout, want, "--timeout {secs}");
        }
    }

    #[test]
    fn env_without_a_value_takes_this_programs() {
        // PATH is set wherever tests run; this name nowhere.
        let path = std::env::var("PATH").unwrap_or_default();
        let a = parse(&["shell", "-e", "PATH", "-e", "BOXSHELL_SURELY_UNSET_4711", "-"])
            .unwrap_or_else(|u| panic!("{}", u.message));
        let Action::Shell { session } = a.action else { panic!("{:?}", a.action) };
        assert_eq!(session.env, [("PATH".to_string(), path)]);
        assert!(parse(&["shell", "-e", "=x", "-"]).is_err());
    }

    #[test]
    fn usage_errors_are_one_line_and_name_their_command() {
        for (args, names, command) in [
            (&["ops", "list", "--nope"][..], "--nope", Some("ops list")),
            (&["exec", "-", "true"], "goes after `--`", Some("exec")),
            (&["exec", "-e", "=x", "-", "--", "true"], "=x", Some("exec")),
            (&["ops", "--socket", "list", "start", "x", "--lines", "3"], "--lines", Some("ops start")),
            (&["ops"], "ops: no command given; one of list, start, stop, status, logs, attach, exists", Some("ops")),
            (&["--json"], "no command given; one of ops, exec, shell, completions", None),
            (&["ops", "stop", "x", "--kill", "--timeout", "1"], "--kill", Some("ops stop")),
            (&["exec", "--timeout", "1e300", "-", "--", "true"], "1e300", Some("exec")),
            (&["exec", "--timeout", "-1", "-", "--", "true"], "-1", Some("exec")),
            (&["--json", "exec", "-", "--", "true"], "--json", Some("exec")),
            (&["completions", "tcsh"], "tcsh", Some("completions")),
            (&[], "no command", None),
        ] {
            match parse(args) {
                Err(u) => {
                    assert!(u.message.contains(names) && !u.message.contains('\n'), "{args:?}: {}", u.message);
                    assert_eq!(u.command.as_deref(), command, "{args:?}: {}", u.message);
                }
                Ok(a) => panic!("{args:?}: {a:?}"),
            }
        }
    }

    #[test]
    fn help_and_version_are_printed() {
        for args in
            [&["--version"][..], &["-V"], &["help", "ops", "start"], &["exec", "--help"], &["ops", "stop", "-h"]]
        {
            let a = parse(args).unwrap_or_else(|u| panic!("{args:?}: {}", u.message));
            assert!(matches!(a.action, Action::Print(_)), "{args:?}: {a:?}");
        }
    }
}
