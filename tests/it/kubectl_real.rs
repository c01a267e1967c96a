//! Sessions through the real `kubectl` (not the stand-in), against a cluster that does not
//! answer: no cluster can run on the test machines, but kubectl reads all of its flags before
//! it dials, so what boxshell makes of the failure is what a user with a down API server sees.

use std::path::PathBuf;
use std::process::Command;

use boxshell::{Engine, Error, Kubectl, Runtime, Session};

use crate::ensure;
use crate::harness::unique;
use crate::{R, Test};

pub const TESTS: &[(&str, Test<Unreachable>)] =
    &[("open_on_an_unreachable_cluster_is_runtime_unavailable", open_on_an_unreachable_cluster_is_runtime_unavailable)];

/// A kubeconfig whose only context, `unreachable` (the current one), points at a closed port.
pub struct Unreachable {
    pub kubeconfig: PathBuf,
}

impl Unreachable {
    /// Writes the kubeconfig, once kubectl is known to run.
    pub fn new() -> Result<Unreachable, String> {
        match Command::new("kubectl").args(["version", "--client"]).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => return Err(format!("`kubectl version --client` failed: {}", out_text(&out.stderr))),
            Err(e) => {
                return Err(format!(
                    "the real kubectl is not runnable ({e}); `sudo scripts/setup-runtimes.sh` installs it"
                ));
            }
        }
        let dir = crate::harness::temp();
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let kubeconfig = dir.join(unique("kubeconfig"));
        std::fs::write(&kubeconfig, KUBECONFIG).map_err(|e| format!("{}: {e}", kubeconfig.display()))?;
        Ok(Unreachable { kubeconfig })
    }
}

/// Port 9 (discard) on loopback: nothing listens, so every dial is refused at once.
const KUBECONFIG: &str = "apiVersion: v1
kind: Config
clusters:
- name: unreachable
  cluster:
    server: https://127.0.0.1:9
    insecure-skip-tls-verify: true
users:
- name: dummy
  user:
    token: dummy-token
contexts:
- name: unreachable
  context:
    cluster: unreachable
    user: dummy
current-context: unreachable
";

fn out_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_string()
}

fn open_on_an_unreachable_cluster_is_runtime_unavailable(fx: &Unreachable) -> R {
    // A pod, and a `TYPE/NAME` that kubectl resolves to a pod itself.
    for (target, query) in [("web-0", "kubectl get pod -n jobs -o"), ("deploy/web", "kubectl get -n jobs -o name")] {
        let result = Session::builder(target)
            .runtime(
                Engine::new(Runtime::Kubectl(Kubectl::new().namespace("jobs").container("main")))
                    .env("KUBECONFIG", &fx.kubeconfig),
            )
            .open();
        let err = match result {
            Ok(_) => return Err(format!("a session opened in {target} on a cluster that does not answer").into()),
            Err(e) => e,
        };
        let Error::RuntimeUnavailable { via, command, message } = &err else {
            return Err(format!("{target}: expected RuntimeUnavailable, got {err:?}").into());
        };
        ensure!(matches!(via, boxshell::Via::Runtime(boxshell::Runtime::Kubectl(_))), "{err:?}");
        // kubectl's own words, with the address it dialled.
        ensure!(
            message.contains("The connection to the server 127.0.0.1:9 was refused"),
            "{target}: no word from kubectl about the connection: {err}"
        );
        // Every call was well-formed: kubectl got as far as dialling.
        for usage in ["unknown flag", "unknown shorthand flag", "flag needs an argument", "must be specified", "Usage:"]
        {
            ensure!(!message.contains(usage), "kubectl rejected an argv ({usage:?}): {err}");
        }
        ensure!(command.starts_with(query), "{err:?}");
    }
    Ok(())
}
