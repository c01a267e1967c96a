//! Integration tests against real engines and real tmux.
//!
//! Run with `cargo test`. `BOXSHELL_TEST_RUNTIMES=docker,podman,local,tmux` selects what runs;
//! with it set, a named runtime that does not answer fails the run. Without it, whatever
//! answers is tested and the rest is reported and marked ignored.

mod abort;
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
mod security;
mod session;
mod sizes;
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
        None => ["docker", "podman", "local", "tmux", "kubectl", "custom", "custom-remote"].map(String::from).to_vec(),
    };
    let mut plan = Plan { trials: Vec::new(), required: required.is_some() };
    let mut fixtures = Vec::new();
    let mut tmux_fixtures = Vec::new();
    let mut ops_fixtures = Vec::new();
    for name in selected {
        if name == "tmux" {
            match TmuxFixture::new() {
                Ok(fx) => {
                    let fx = Arc::new(fx);
                    plan.add("tmux", &fx, tmux::TESTS);
                    tmux_fixtures.push(fx);
                }
                Err(reason) => plan.unavailable("tmux", &reason, names(tmux::TESTS)),
            }
            continue;
        }
        if name == "kubectl" {
            // The real kubectl against a cluster that does not answer: no container needed.
            match kubectl_real::Unreachable::new() {
                Ok(fx) => plan.add("kubectl_real", &Arc::new(fx), kubectl_real::TESTS),
                Err(reason) => plan.unavailable("kubectl_real", &reason, names(kubectl_real::TESTS)),
            }
        }
        let fixture = match name.as_str() {
            "custom" => Some(Fixture::custom(false)),
            "custom-remote" => Some(Fixture::custom(true)),
            "kubectl" => Some(Fixture::kubectl()),
            _ => None,
        };
        let runtime: Runtime = match fixture.as_ref().map(|f| f.as_ref().map(|f| f.runtime.clone())) {
            Some(Ok(runtime)) => runtime,
            Some(Err(_)) => Runtime::Docker,
            None => match name.parse() {
                Ok(r) => r,
                Err(e) => {
                    plan.trials
                        .push(Trial::test(format!("{name}::runtime_is_known"), move || Err(e.to_string().into())));
                    continue;
                }
            },
        };
        let fixture = fixture.unwrap_or_else(|| Fixture::new(runtime.clone()));
        // A custom CLI is not known to say why an exec failed: the container-only tests of
        // error kinds are for runtimes that do.
        let classifies = !matches!(runtime, Runtime::Custom(_));
        let prefix = name.clone();
        let ops_prefix = format!("{prefix}::ops");
        match fixture {
            Ok(fx) => {
                let fx = Arc::new(fx);
                plan.add(&prefix, &fx, session::TESTS);
                // The protocol's rules hold in every shell: the session tests again, per shell.
                for (shell_name, shell) in fx.other_shells() {
                    let with = Arc::new(fx.with_shell(&shell));
                    plan.add(&format!("{prefix}-{shell_name}"), &with, session::TESTS);
                }
                plan.add(&prefix, &fx, abort::TESTS);
                plan.add(&prefix, &fx, races::TESTS);
                plan.add(&prefix, &fx, interactive::TESTS);
                plan.add(&prefix, &fx, cmd_env::TESTS);
                plan.add(&prefix, &fx, fs::TESTS);
                plan.add(&prefix, &fx, sizes::TESTS);
                plan.add(&prefix, &fx, pool::TESTS);
                plan.add(&prefix, &fx, security::TESTS);
                if runtime.manages_containers() || runtime == Runtime::Local {
                    plan.add(&prefix, &fx, faults::TESTS);
                }
                if runtime == Runtime::Local {
                    plan.add(&prefix, &fx, interactive::LOCAL_TESTS);
                    plan.add(&prefix, &fx, abort::LOCAL_TESTS);
                }
                if runtime.is_container() && classifies {
                    plan.add(&prefix, &fx, session::CONTAINER_TESTS);
                    plan.add(&prefix, &fx, pool::CONTAINER_TESTS);
                }
                if runtime.manages_containers() {
                    plan.add(&prefix, &fx, abort::ENGINE_TESTS);
                    plan.add(&prefix, &fx, races::ENGINE_TESTS);
                    plan.add(&prefix, &fx, containers::TESTS);
                    plan.add(&prefix, &fx, faults::ENGINE_TESTS);
                }
                if runtime == Runtime::Docker {
                    plan.add(&format!("{prefix}::faults"), &fx, faults::CLI_TESTS);
                }
                if runtime.manages_containers() {
                    match TmuxFixture::new() {
                        Ok(tmux) => {
                            let ops_fx = Arc::new(ops::OpsFixture { containers: Arc::clone(&fx), tmux });
                            plan.add(&ops_prefix, &ops_fx, ops::TESTS);
                            #[cfg(feature = "cli")]
                            plan.add(&ops_prefix, &ops_fx, cli::TESTS);
                            ops_fixtures.push(ops_fx);
                        }
                        Err(reason) => plan.unavailable(&ops_prefix, &reason, names(ops::TESTS)),
                    }
                }
                fixtures.push(fx);
            }
            Err(reason) => {
                let mut all = names(session::TESTS);
                all.extend(names(abort::TESTS));
                all.extend(names(races::TESTS));
                all.extend(names(interactive::TESTS));
                all.extend(names(cmd_env::TESTS));
                all.extend(names(fs::TESTS));
                all.extend(names(sizes::TESTS));
                all.extend(names(pool::TESTS));
                all.extend(names(security::TESTS));
                if runtime.manages_containers() || runtime == Runtime::Local {
                    all.extend(names(faults::TESTS));
                }
                if runtime == Runtime::Local {
                    all.extend(names(interactive::LOCAL_TESTS));
                    all.extend(names(abort::LOCAL_TESTS));
                }
                if runtime.manages_containers() {
                    all.extend(names(faults::ENGINE_TESTS));
                    all.extend(names(abort::ENGINE_TESTS));
                    all.extend(names(races::ENGINE_TESTS));
                }
                if runtime == Runtime::Docker {
                    all.extend(names(faults::CLI_TESTS).into_iter().map(|t| format!("faults::{t}")));
                }
                if runtime.is_container() && classifies {
                    all.extend(names(session::CONTAINER_TESTS));
                    all.extend(names(pool::CONTAINER_TESTS));
                }
                if runtime.manages_containers() {
                    all.extend(names(containers::TESTS));
                    all.extend(names(ops::TESTS).into_iter().map(|t| format!("ops::{t}")));
                    #[cfg(feature = "cli")]
                    all.extend(names(cli::TESTS).into_iter().map(|t| format!("ops::{t}")));
                }
                plan.unavailable(&prefix, &reason, all);
            }
        }
    }
    let conclusion = libtest_mimic::run(&args, plan.trials);
    for fx in &fixtures {
        fx.cleanup();
    }
    harness::remove_temp();
    // `exit` runs no destructors: end the tmux servers now.
    drop((tmux_fixtures, ops_fixtures));
    conclusion.exit();
}

struct Plan {
    trials: Vec<Trial>,
    required: bool,
}

impl Plan {
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
