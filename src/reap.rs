//! `reap.sh`, the script that signals processes inside a container from a second exec
//! (killing an exec client reaches nothing inside), and the one typed value that builds its
//! arguments. Every run checks, in the same exec, that the container is still the instance its
//! caller saw: a PID is no identity across restarts.

use crate::text;

/// The script as written, its comments included (see its header for what it does with its
/// arguments).
const SOURCE: &str = include_str!("reap.sh");

/// The script as sent: without its comment lines, a third of its size, which every shell would
/// otherwise read (a session's bootstrap carries it, and each signalling exec).
pub(crate) fn script() -> &'static str {
    static SCRIPT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        SOURCE.lines().filter(|line| !line.trim_start().starts_with('#')).fold(String::new(), |mut s, line| {
            s.push_str(line);
            s.push('\n');
            s
        })
    });
    &SCRIPT
}

/// The built-ins and programs `reap.sh` calls, which a user's functions could replace.
pub(crate) const UNSHADOWED: &str = "kill read set test [ echo rm shift exit return unset : true";

/// A signal, by the name `kill -s` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    Int,
    Kill,
    /// Runs bash's trap that re-raises SIGINT once the shell is between two commands.
    Winch,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Signal::Int => "INT",
            Signal::Kill => "KILL",
            Signal::Winch => "WINCH",
        }
    }
}

/// What to signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Procs<'a> {
    /// The running command's processes (background jobs of earlier commands are spared), and
    /// the shell itself with these signals.
    Command(&'a [Signal]),
    /// Every process of the session, the shell included.
    Session,
    /// These processes, if still in the session, and their descendants.
    Pids(&'a [u32]),
    /// Every process whose environment holds this `NAME=VALUE`, and its descendants.
    Environ(&'a str),
    /// The descendants of these processes (PID and start time), not the processes themselves.
    Tree(&'a [(u32, u64)]),
}

/// Which container instance, and which shell in it, a session was opened in: start times in
/// clock ticks since boot (a PID alone names another process once the container restarted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Instance {
    /// Of the shell.
    pub(crate) shell: Option<u64>,
    /// Of PID 1.
    pub(crate) init: Option<u64>,
}

impl Instance {
    /// As `reap.sh` takes it: `SHELL_START:INIT_START`.
    pub(crate) fn arg(&self) -> String {
        let part = |t: Option<u64>| t.map(|t| t.to_string()).unwrap_or_default();
        format!("{}:{}", part(self.shell), part(self.init))
    }
}

/// One run of `reap.sh`: the one place its arguments are built (see the script's header).
#[derive(Debug)]
pub(crate) struct Reap<'a> {
    pub(crate) procs: Procs<'a>,
    pub(crate) signal: Signal,
    pub(crate) shell: u32,
    pub(crate) instance: Instance,
    /// The background jobs to spare (command mode).
    pub(crate) watermark: Watermark,
    /// A directory to remove afterwards.
    pub(crate) remove: Option<&'a str>,
}

impl Reap<'_> {
    /// `MODE SHELL SIGNAL SHELL_SIGNALS INSTANCE MARK DIR [PIDS...]`.
    pub(crate) fn args(&self) -> Vec<String> {
        let (mode, shell_signals, mark, roots): (_, &[Signal], _, Vec<String>) = match self.procs {
            Procs::Command(signals) => ("command", signals, self.watermark.arg(), Vec::new()),
            Procs::Session => ("session", &[], String::new(), Vec::new()),
            Procs::Pids(pids) => ("pids", &[], String::new(), pids.iter().map(u32::to_string).collect()),
            Procs::Environ(mark) => ("environ", &[], mark.to_string(), Vec::new()),
            Procs::Tree(roots) => ("tree", &[], String::new(), roots.iter().map(|(p, s)| format!("{p}:{s}")).collect()),
        };
        let shell_signals: Vec<&str> = shell_signals.iter().map(|s| s.name()).collect();
        let mut args = vec![
            mode.to_string(),
            self.shell.to_string(),
            self.signal.name().to_string(),
            shell_signals.join(" "),
            self.instance.arg(),
            mark,
            self.remove.unwrap_or_default().to_string(),
        ];
        args.extend(roots);
        args
    }

    /// `reap.sh` as shell text to run in the session's own shell: `set --` of the arguments,
    /// then the script.
    pub(crate) fn inline(&self) -> String {
        let mut script = String::from("set --");
        for arg in self.args() {
            script.push(' ');
            text::quote_into(&mut script, &arg);
        }
        script.push('\n');
        script.push_str(self::script());
        script
    }
}

/// The definition of a shell function `name` that kills every other process of the shell
/// running it (of its process group or session) and their descendants: `reap.sh` in session
/// mode, for `$$`, with no instance to check (the caller is the shell itself, which the script
/// never signals).
pub(crate) fn own_session_function(name: &str) -> String {
    format!("{name}() {{ set -- session \"$$\" KILL '' '' '' ''\n{}}}", script())
}

/// What a run of `reap.sh` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reaped {
    /// These processes were signalled (never the shell).
    Signalled(Vec<u32>),
    /// The shell is not there any more: a running command has nothing left to signal.
    ShellGone,
    /// The container is another instance (restarted or re-created): nothing was signalled.
    Restarted,
}

impl Reaped {
    pub(crate) fn parse(stdout: &[u8]) -> Option<Reaped> {
        // The script's line is the last: a remote login may print lines of its own first.
        let text = String::from_utf8_lossy(stdout);
        let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
        let mut words = line.split_ascii_whitespace();
        match words.next()? {
            "signalled" => words.map(|p| p.parse().ok()).collect::<Option<_>>().map(Reaped::Signalled),
            "gone" => Some(Reaped::ShellGone),
            "restarted" => Some(Reaped::Restarted),
            _ => None,
        }
    }
}

/// The newest background job the shell started, and the boot time (centiseconds) when the
/// command that started it ended: the shell's children that started later are the running
/// command's, the others are background jobs to spare. Without the time (the shell could not
/// read `/proc/uptime`), children with a higher PID are taken for the command's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Watermark {
    pub(crate) last_job: u32,
    pub(crate) since: Option<u64>,
}

impl Watermark {
    /// As `reap.sh` takes it: `LAST_JOB` or `LAST_JOB:SINCE`.
    pub(crate) fn arg(&self) -> String {
        match self.since {
            Some(since) => format!("{}:{since}", self.last_job),
            None => self.last_job.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;

    use super::*;

    #[test]
    fn arguments_in_the_order_the_script_reads_them() {
        let reap = Reap {
            procs: Procs::Command(&[Signal::Int, Signal::Winch]),
            signal: Signal::Kill,
            shell: 42,
            instance: Instance { shell: Some(1234), init: None },
            watermark: Watermark { last_job: 77, since: Some(99) },
            remove: None,
        };
        assert_eq!(reap.args(), ["command", "42", "KILL", "INT WINCH", "1234:", "77:99", ""]);
        let pids = [5, 6];
        let reap = Reap { procs: Procs::Pids(&pids), remove: Some("/tmp/x y"), ..reap };
        assert_eq!(reap.args(), ["pids", "42", "KILL", "", "1234:", "", "/tmp/x y", "5", "6"]);
        let reap = Reap { procs: Procs::Environ("BOXSHELL_FEED=ab"), instance: Instance::default(), ..reap };
        assert_eq!(reap.args(), ["environ", "42", "KILL", "", ":", "BOXSHELL_FEED=ab", "/tmp/x y"]);
        assert!(reap.inline().starts_with("set -- 'environ' '42' 'KILL' '' ':' 'BOXSHELL_FEED=ab' '/tmp/x y'\n"));
        let roots = [(7, 1200)];
        let reap = Reap { procs: Procs::Tree(&roots), remove: None, ..reap };
        assert_eq!(reap.args(), ["tree", "42", "KILL", "", ":", "", "", "7:1200"]);
    }

    /// `tree` mode signals what a process started, not the process, and only while its start
    /// time is the one given.
    #[test]
    fn tree_mode_spares_the_root_and_a_root_of_another_start() {
        use std::process::{Command, Stdio};
        let mut shell = Command::new("sh")
            .arg("-c")
            .arg("sleep 100 & sleep 100 & wait")
            .process_group(0)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let root = shell.id();
        let start = |pid: u32| -> u64 {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            stat.rsplit(") ").next().unwrap().split(' ').nth(19).unwrap().parse().unwrap()
        };
        let children = |pid: u32| -> Vec<u32> {
            let read = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
            read.split_whitespace().map(|p| p.parse().unwrap()).collect()
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while children(root).len() < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let run = |roots: &[(u32, u64)]| {
            let reap = Reap {
                procs: Procs::Tree(roots),
                signal: Signal::Kill,
                shell: root,
                instance: Instance::default(),
                watermark: Watermark::default(),
                remove: None,
            };
            let out = Command::new("sh").arg("-c").arg(script()).arg("reap").args(reap.args()).output().unwrap();
            Reaped::parse(&out.stdout).unwrap()
        };
        let kids = children(root);
        assert_eq!(run(&[(root, start(root) + 1)]), Reaped::Signalled(vec![]), "another start time");
        let Reaped::Signalled(mut killed) = run(&[(root, start(root))]) else { panic!() };
        killed.sort();
        assert_eq!(killed, kids);
        // The root goes on, and sees its children end.
        let status = shell.wait().unwrap();
        assert!(status.success(), "{status:?}");
    }

    #[test]
    fn answers() {
        assert_eq!(Reaped::parse(b"signalled\n"), Some(Reaped::Signalled(vec![])));
        assert_eq!(Reaped::parse(b"signalled 12 13 \n"), Some(Reaped::Signalled(vec![12, 13])));
        assert_eq!(Reaped::parse(b"gone\n"), Some(Reaped::ShellGone));
        assert_eq!(Reaped::parse(b"restarted\n"), Some(Reaped::Restarted));
        assert_eq!(Reaped::parse(b"signalled x\n"), None);
        assert_eq!(Reaped::parse(b""), None);
        assert_eq!(Reaped::parse(b"Welcome\nsignalled 4\n\n"), Some(Reaped::Signalled(vec![4])));
        assert_eq!(Reaped::parse(b"signalled 4\nWelcome\n"), None);
    }
}
