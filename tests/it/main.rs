//! Integration tests against real engines and real tmux.
//!
//! Run with `cargo test`. `BOXSHELL_TEST_RUNTIMES=docker,podman,local,tmux` selects what runs;
//! with it set, a named runtime that does not answer fails the run. Without it, whatever
//! answers is tested and the rest is reported and marked ignored.

mod containers;
mod harness;
mod ops;
mod session;
mod tmux;

use std::sync::Arc;

use boxshell::Runtime;
use libtest_mimic::{Arguments, Failed, Trial};

use harness::{Fixture, TmuxFixture};

/// A test body over a fixture of type `F`.
pub type Test<F> = fn(&F) -> Result<(), Failed>;

fn main() {
    if harness::helper_mode() {
        return;
    }
    let mut args = Arguments::from_args();
    // Most tests wait on containers rather than on the CPU.
    args.test_threads.get_or_insert(6);

    let required = std::env::var("BOXSHELL_TEST_RUNTIMES").ok().filter(|v| !v.trim().is_empty());
    let names: Vec<String> = match &required {
        Some(list) => list.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
        None => ["docker", "podman", "local", "tmux"].map(String::from).to_vec(),
    };
    let mut plan = Plan { trials: Vec::new(), required: required.is_some() };
    let mut fixtures = Vec::new();
    let mut tmux_fixtures = Vec::new();
    let mut ops_fixtures = Vec::new();
    for name in names {
        if name == "tmux" {
            match TmuxFixture::new() {
                Ok(fx) => {
                    let fx = Arc::new(fx);
                    plan.add("tmux", &fx, tmux::TESTS);
                    tmux_fixtures.push(fx);
                }
                Err(reason) => plan.unavailable("tmux", &reason, tmux::TESTS.iter().map(|(t, _)| *t).collect()),
            }
            continue;
        }
        let runtime: Runtime = match name.parse() {
            Ok(r) => r,
            Err(e) => {
                plan.trials.push(Trial::test(format!("{name}::runtime_is_known"), move || Err(e.to_string().into())));
                continue;
            }
        };
        match Fixture::new(runtime.clone()) {
            Ok(fx) => {
                let fx = Arc::new(fx);
                let prefix = runtime.name();
                plan.add(prefix, &fx, session::TESTS);
                if runtime.is_container() {
                    plan.add(prefix, &fx, session::CONTAINER_TESTS);
                    plan.add(prefix, &fx, containers::TESTS);
                    let ops_prefix = format!("{prefix}::ops");
                    match TmuxFixture::new() {
                        Ok(tmux) => {
                            let ops_fx = Arc::new(ops::OpsFixture { containers: Arc::clone(&fx), tmux });
                            plan.add(&ops_prefix, &ops_fx, ops::TESTS);
                            ops_fixtures.push(ops_fx);
                        }
                        Err(reason) => {
                            plan.unavailable(&ops_prefix, &reason, ops::TESTS.iter().map(|(t, _)| *t).collect())
                        }
                    }
                }
                fixtures.push(fx);
            }
            Err(reason) => {
                let mut names: Vec<&'static str> = session::TESTS.iter().map(|(t, _)| *t).collect();
                if runtime.is_container() {
                    names.extend(session::CONTAINER_TESTS.iter().map(|(t, _)| *t));
                    names.extend(containers::TESTS.iter().map(|(t, _)| *t));
                    names.extend(ops::TESTS.iter().map(|(t, _)| *t));
                }
                plan.unavailable(runtime.name(), &reason, names);
            }
        }
    }
    let conclusion = libtest_mimic::run(&args, plan.trials);
    for fx in &fixtures {
        fx.cleanup();
    }
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
    fn unavailable(&mut self, prefix: &str, reason: &str, names: Vec<&'static str>) {
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

/// Fails the test with a message unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+).into());
        }
    };
}
