//! Integration tests against real engines and real tmux.
//!
//! Run with `cargo test`. `BOXSHELL_TEST_RUNTIMES=docker,podman,local,tmux,ssh` selects what runs;
//! with it set, a named runtime that does not answer fails the run. Without it, whatever
//! answers is tested and the rest is reported and marked ignored.

mod abort;
mod background;
#[cfg(feature = "cli")]
mod cli;
mod cmd_env;
mod containers;
mod faults;
mod fs;
mod harness;
mod interactive;
mod kubectl_real;
mod ops;
mod pool;
mod races;
mod remote;
mod security;
mod session;
mod sizes;
mod snapshot;
#[cfg(feature = "terminal")]
mod terminal;
mod tmux;

use std::sync::Arc;

use boxshell::Runtime;
use libtest_mimic::{Arguments, Failed, Trial};

use harness::{Fixture, TmuxFixture};

/// A test body over a fixture of type `F`.
/// What a test returns.
pub type R = Result<(), Failed>;

pub type Test<F> = fn(&F) -> R;

fn main() {
    if harness::helper_mode() {
        return;
    }
    security::capture_logs();
    let mut args = Arguments::from_args();
    // Most tests wait on containers rather than on the CPU.
    args.test_threads.get_or_insert(6);

    let required = std::env::var("BOXSHELL_TEST_RUNTIMES").ok().filter(|v| !v.trim().is_empty());
    let selected: Vec<String> = match &required {
        Some(list) => list.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
        // The ssh runtimes (`ssh`, `ssh-docker`, `docker-ssh`) run when named.
        None => ["docker", "podman", "local", "tmux", "kubectl", "custom", "custom-remote"].map(String::from).to_vec(),
    };
    let mut plan = Plan { trials: Vec::new(), required: required.is_some(), held: Held::default() };
    for name in selected {
        plan.runtime(&name);
    }
    let Plan { trials, held, .. } = plan;
    let conclusion = libtest_mimic::run(&args, trials);
    held.release();
    conclusion.exit();
}

/// Which runtimes a group of tests is for.
#[derive(Clone, Copy)]
enum Runtimes {
    All,
    /// Docker and podman, and the host.
    EngineOrLocal,
    Local,
    /// Container runtimes that say why an exec failed: the container-only tests of error
    /// kinds. A custom CLI is not known to.
    ClassifyingContainer,
    /// Docker and podman: the engines boxshell manages containers of.
    Engine,
    Docker,
}

impl Runtimes {
    fn include(self, runtime: &Runtime) -> bool {
        match self {
            Runtimes::All => true,
            Runtimes::EngineOrLocal => runtime.manages_containers() || *runtime == Runtime::Local,
            Runtimes::Local => *runtime == Runtime::Local,
            Runtimes::ClassifyingContainer => runtime.is_container() && !matches!(runtime, Runtime::Custom(_)),
            Runtimes::Engine => runtime.manages_containers(),
            Runtimes::Docker => *runtime == Runtime::Docker,
        }
    }
}

/// Tests over a runtime's fixture, and the runtimes they are for.
struct Group {
    runtimes: Runtimes,
    tests: &'static [(&'static str, Test<Fixture>)],
    /// A name between the runtime's and the test's: `docker::faults::…`.
    under: Option<&'static str>,
    /// Whether they run again in each of the fixture's other shells, as `docker-bash::…`.
    per_shell: bool,
    /// Whether they run over the remote paths to docker too (`ssh-docker`, `docker-ssh`):
    /// the core of a session and of the engine, not every case again at ssh's pace.
    remote_core: bool,
}

impl Group {
    const fn of(runtimes: Runtimes, tests: &'static [(&'static str, Test<Fixture>)]) -> Group {
        Group { runtimes, tests, under: None, per_shell: false, remote_core: false }
    }

    const fn remote_core(self) -> Group {
        Group { remote_core: true, ..self }
    }

    const fn under(self, name: &'static str) -> Group {
        Group { under: Some(name), ..self }
    }

    const fn per_shell(self) -> Group {
        Group { per_shell: true, ..self }
    }

    /// The prefix of its test names for the runtime named `runtime`.
    fn prefix(&self, runtime: &str) -> String {
        match self.under {
            Some(under) => format!("{runtime}::{under}"),
            None => runtime.to_string(),
        }
    }

    /// Its test names below the runtime's.
    fn names(&self) -> Vec<String> {
        let names = names(self.tests);
        match self.under {
            Some(under) => names.into_iter().map(|t| format!("{under}::{t}")).collect(),
            None => names,
        }
    }
}

/// The tests over each runtime's fixture, in the order they run.
const GROUPS: &[Group] = &[
    // The protocol's rules hold in every shell: the session tests again, per shell.
    Group::of(Runtimes::All, session::TESTS).per_shell().remote_core(),
    Group::of(Runtimes::All, abort::TESTS).remote_core(),
    Group::of(Runtimes::All, races::TESTS),
    Group::of(Runtimes::All, interactive::TESTS).remote_core(),
    Group::of(Runtimes::All, cmd_env::TESTS),
    Group::of(Runtimes::All, fs::TESTS),
    Group::of(Runtimes::All, background::TESTS),
    #[cfg(feature = "terminal")]
    Group::of(Runtimes::All, terminal::TESTS),
    Group::of(Runtimes::All, sizes::TESTS),
    Group::of(Runtimes::All, snapshot::TESTS),
    Group::of(Runtimes::All, pool::TESTS),
    Group::of(Runtimes::All, security::TESTS),
    Group::of(Runtimes::EngineOrLocal, faults::TESTS),
    Group::of(Runtimes::Local, interactive::LOCAL_TESTS),
    #[cfg(feature = "terminal")]
    Group::of(Runtimes::Local, terminal::LOCAL_TESTS),
    Group::of(Runtimes::Local, abort::LOCAL_TESTS),
    Group::of(Runtimes::ClassifyingContainer, session::CONTAINER_TESTS),
    Group::of(Runtimes::ClassifyingContainer, pool::CONTAINER_TESTS),
    Group::of(Runtimes::Engine, abort::ENGINE_TESTS),
    Group::of(Runtimes::Engine, races::ENGINE_TESTS),
    Group::of(Runtimes::Engine, containers::TESTS).remote_core(),
    Group::of(Runtimes::Engine, fs::ENGINE_TESTS),
    Group::of(Runtimes::Engine, faults::ENGINE_TESTS),
    Group::of(Runtimes::Docker, faults::CLI_TESTS).under("faults"),
];

/// The runtimes that reach docker remotely, through ssh: they run the groups marked
/// [`Group::remote_core`] and the ops tests of the library.
const REMOTE_DOCKER: &[&str] = &["ssh-docker", "docker-ssh"];

/// The runtimes the ops tests are for.
const OPS_RUNTIMES: Runtimes = Runtimes::Engine;
/// The tests over a runtime's fixture together with a tmux server, as `docker::ops::…`;
/// they run after [`GROUPS`]. The library's own first: the remote runtimes run only those.
const OPS_GROUPS: &[&[(&str, Test<ops::OpsFixture>)]] = &[
    ops::TESTS,
    #[cfg(feature = "cli")]
    cli::TESTS,
];

/// The names of the ops tests, below the ops prefix.
fn ops_names() -> Vec<String> {
    OPS_GROUPS.iter().flat_map(|tests| names(tests)).collect()
}

/// The names of all the tests over `runtime`'s fixture, below the runtime's name (the
/// per-shell runs aside: without a fixture, its shells are not known).
fn names_for(runtime: &Runtime) -> Vec<String> {
    let mut all: Vec<String> = GROUPS.iter().filter(|g| g.runtimes.include(runtime)).flat_map(Group::names).collect();
    if OPS_RUNTIMES.include(runtime) {
        all.extend(ops_names().into_iter().map(|t| format!("ops::{t}")));
    }
    all
}

/// The runtime named `name` and its fixture or why it has none; `Err` when no runtime has
/// that name.
fn fixture_for(name: &str) -> Result<(Runtime, Result<Fixture, String>), String> {
    let fixture = match name {
        "custom" => Fixture::custom(false),
        "custom-remote" => Fixture::custom(true),
        "kubectl" => Fixture::kubectl(),
        "ssh-docker" => Fixture::ssh_docker(),
        "docker-ssh" => Fixture::docker_over_ssh(),
        "ssh" => {
            let fixture = Fixture::ssh();
            let runtime = fixture
                .as_ref()
                .map_or(Runtime::Custom(boxshell::Custom::new("ssh", ["{target}"])), |fx| fx.runtime.clone());
            return Ok((runtime, fixture));
        }
        _ => {
            let runtime: Runtime = name.parse().map_err(|e: boxshell::Error| e.to_string())?;
            let fixture = Fixture::new(runtime.clone());
            return Ok((runtime, fixture));
        }
    };
    // These stand in over docker: with docker not answering, they are docker for the tests
    // left out.
    let runtime = fixture.as_ref().map_or(Runtime::Docker, |fx| fx.runtime.clone());
    Ok((runtime, fixture))
}

/// The fixtures the trials share, released once they have run.
#[derive(Default)]
struct Held {
    fixtures: Vec<Arc<Fixture>>,
    tmux: Vec<Arc<TmuxFixture>>,
    ops: Vec<Arc<ops::OpsFixture>>,
}

impl Held {
    fn release(self) {
        for fx in &self.fixtures {
            fx.cleanup();
        }
        harness::remove_temp();
        // `exit` runs no destructors: end the tmux servers now.
        drop((self.tmux, self.ops));
    }
}

struct Plan {
    trials: Vec<Trial>,
    required: bool,
    held: Held,
}

impl Plan {
    /// The trials for the runtime named `name`.
    fn runtime(&mut self, name: &str) {
        match name {
            "tmux" => return self.tmux(),
            // The real kubectl against a cluster that does not answer: no container needed.
            "kubectl" => self.kubectl_real(),
            _ => {}
        }
        match fixture_for(name) {
            Ok((runtime, Ok(fx))) => self.fixture(name, &runtime, fx),
            Ok((runtime, Err(reason))) => self.unavailable(name, &reason, names_for(&runtime)),
            Err(e) => self.trials.push(Trial::test(format!("{name}::runtime_is_known"), move || Err(e.into()))),
        }
    }

    fn tmux(&mut self) {
        match TmuxFixture::new() {
            Ok(fx) => {
                let fx = Arc::new(fx);
                self.add("tmux", &fx, tmux::TESTS);
                self.held.tmux.push(fx);
            }
            Err(reason) => self.unavailable("tmux", &reason, names(tmux::TESTS)),
        }
    }

    fn kubectl_real(&mut self) {
        match kubectl_real::Unreachable::new() {
            Ok(fx) => self.add("kubectl_real", &Arc::new(fx), kubectl_real::TESTS),
            Err(reason) => self.unavailable("kubectl_real", &reason, names(kubectl_real::TESTS)),
        }
    }

    /// The groups for `runtime` over its fixture, named `prefix`.
    fn fixture(&mut self, prefix: &str, runtime: &Runtime, fx: Fixture) {
        let fx = Arc::new(fx);
        let core_only = REMOTE_DOCKER.contains(&prefix);
        for group in GROUPS.iter().filter(|g| g.runtimes.include(runtime) && (g.remote_core || !core_only)) {
            self.add(&group.prefix(prefix), &fx, group.tests);
            if group.per_shell && !core_only {
                for (shell_name, shell) in fx.other_shells() {
                    let with = Arc::new(fx.with_shell(&shell));
                    self.add(&group.prefix(&format!("{prefix}-{shell_name}")), &with, group.tests);
                }
            }
        }
        if OPS_RUNTIMES.include(runtime) {
            // The command-line tool's tests run it as a user does, on the local engines.
            let groups = if core_only { &OPS_GROUPS[..1] } else { OPS_GROUPS };
            self.ops(&format!("{prefix}::ops"), &fx, groups);
        }
        match prefix {
            "ssh" => self.add(prefix, &fx, remote::SSH_TESTS),
            "docker-ssh" => self.add(prefix, &fx, remote::DOCKER_SSH_TESTS),
            _ => {}
        }
        self.held.fixtures.push(fx);
    }

    /// The ops tests over `fx` and a tmux server of their own.
    fn ops(&mut self, prefix: &str, fx: &Arc<Fixture>, groups: &[&[(&'static str, Test<ops::OpsFixture>)]]) {
        match TmuxFixture::new() {
            Ok(tmux) => {
                let ops_fx = Arc::new(ops::OpsFixture { containers: Arc::clone(fx), tmux });
                for tests in groups {
                    self.add(prefix, &ops_fx, tests);
                }
                self.held.ops.push(ops_fx);
            }
            Err(reason) => self.unavailable(prefix, &reason, ops_names()),
        }
    }

    fn add<F: Send + Sync + 'static>(&mut self, prefix: &str, fx: &Arc<F>, tests: &[(&'static str, Test<F>)]) {
        for &(test, body) in tests {
            let fx = Arc::clone(fx);
            self.trials.push(Trial::test(format!("{prefix}::{test}"), move || body(&fx)));
        }
    }

    /// A runtime that does not answer: a failure when it was asked for, else its tests are
    /// listed as ignored.
    fn unavailable(&mut self, prefix: &str, reason: &str, names: Vec<String>) {
        if self.required {
            let message = format!("BOXSHELL_TEST_RUNTIMES names {prefix}, but: {reason}");
            self.trials.push(Trial::test(format!("{prefix}::available"), move || Err(message.into())));
            return;
        }
        eprintln!("boxshell tests: {prefix} left out ({reason}); its tests are marked ignored");
        for test in names {
            self.trials.push(Trial::test(format!("{prefix}::{test}"), || Ok(())).with_ignored_flag(true));
        }
    }
}

/// The names of `tests`.
fn names<F>(tests: &[(&'static str, Test<F>)]) -> Vec<String> {
    tests.iter().map(|(t, _)| t.to_string()).collect()
}

/// Fails the test with a message unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+).into());
        }
    };
}
