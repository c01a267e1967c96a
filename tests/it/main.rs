//! Integration tests against real engines: every test runs once per selected runtime.
//!
//! Run with `cargo test`; select runtimes with `BOXSHELL_TEST_RUNTIMES=docker,podman,local`.

mod harness;
mod session;

use std::sync::Arc;

use boxshell::Runtime;
use libtest_mimic::{Arguments, Failed, Trial};

use harness::Fixture;

/// A test body, run once per runtime.
pub type Test = fn(&Fixture) -> Result<(), Failed>;

fn main() {
    let mut args = Arguments::from_args();
    // Most tests wait on containers rather than the CPU.
    args.test_threads.get_or_insert(6);

    let required = std::env::var("BOXSHELL_TEST_RUNTIMES").ok().filter(|v| !v.trim().is_empty());
    let names: Vec<String> = match &required {
        Some(list) => list.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
        None => vec!["docker".into(), "podman".into(), "local".into()],
    };
    let mut fixtures = Vec::new();
    let mut trials = Vec::new();
    for name in names {
        let runtime: Runtime = match name.parse() {
            Ok(r) => r,
            Err(e) => {
                trials.push(Trial::test(format!("{name}::runtime_is_known"), move || Err(e.to_string().into())));
                continue;
            }
        };
        match Fixture::new(runtime.clone()) {
            Ok(fx) => {
                let fx = Arc::new(fx);
                for (test, body) in session::TESTS.iter().copied() {
                    let f = Arc::clone(&fx);
                    trials.push(Trial::test(format!("{runtime}::{test}"), move || body(&f)));
                }
                fixtures.push(fx);
            }
            Err(reason) if required.is_some() => {
                trials.push(Trial::test(format!("{runtime}::engine_answers"), move || {
                    Err(format!("BOXSHELL_TEST_RUNTIMES names {runtime}, but: {reason}").into())
                }));
            }
            Err(reason) => {
                eprintln!("boxshell tests: {runtime} left out ({reason}); its tests are marked ignored");
                for (test, _) in session::TESTS {
                    trials.push(Trial::test(format!("{runtime}::{test}"), || Ok(())).with_ignored_flag(true));
                }
            }
        }
    }
    let conclusion = libtest_mimic::run(&args, trials);
    for fx in &fixtures {
        fx.cleanup();
    }
    conclusion.exit();
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
