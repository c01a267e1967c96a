//! The end of a session: noticing that its shell exited, ending what the shell left running,
//! and closing (`close` and `Drop`).

use std::time::{Duration, Instant};

use super::Session;
use super::shell::Life;
use crate::error::{Error, Result};
use crate::proc;
use crate::reap::{Procs, Reap, Signal, UNSHADOWED};
use crate::state::State;
use crate::text;

impl Session {
    /// [`Error::ShellExited`], with the shell's exit code when known.
    pub(super) fn shell_exited(&self) -> Error {
        Error::ShellExited { via: self.engine.via(), container: self.target.clone(), code: self.shell.exit_code() }
    }

    /// Records that the shell has exited: reaps the exec client (within the close timeout)
    /// and, when the container can be reached, ends whatever the shell left running.
    pub(super) fn mark_dead(&mut self, code: Option<i32>, reachable: bool) {
        let closing = match self.shell.life() {
            Life::Live => false,
            Life::Closing => true,
            Life::Exited { .. } | Life::Closed => return,
        };
        let code = code.or(self.shell.reap_client(self.timeouts.close));
        log::info!("the shell of session {} in {} exited (code {code:?})", self.id, self.target);
        // A shell that ends while closing is cleaned up by `close` itself. One that cannot be
        // reached (paused container, engine gone) is not signalled again now: `close` tries.
        let cleanup_owed = !closing && (!reachable || self.reap_leftovers().is_err());
        self.shell.set_life(Life::Exited { code, cleanup_owed });
    }

    /// Kills what the shell left behind (background jobs outliving `exit`), and its temporary
    /// files. A container that is gone or stopped has nothing left.
    fn reap_leftovers(&self) -> Result<()> {
        match self.signaller.signal(Procs::Session, Signal::Kill, self.scratch.existing()) {
            Ok(_) | Err(Error::ContainerNotFound { .. }) => Ok(()),
            // A stopped container has no processes left; a paused one still has them all.
            Err(Error::ContainerNotRunning { state, .. }) if state != State::Paused => Ok(()),
            Err(e) => {
                log::warn!("cleaning up after the session in {}: {e}", self.target);
                Err(e)
            }
        }
    }

    /// Ends the shell and everything it started, once: `close` and `Drop`.
    pub(super) fn shutdown(&mut self) -> Result<()> {
        let result = match self.shell.set_life(Life::Closing) {
            Life::Closed | Life::Closing => {
                self.shell.set_life(Life::Closed);
                return Ok(());
            }
            Life::Exited { cleanup_owed: true, .. } => self.reap_leftovers(),
            Life::Exited { .. } => Ok(()),
            Life::Live if self.pending.is_none() => self.clean_exit(),
            Life::Live => self.kill_session(),
        };
        self.shell.set_life(Life::Closed);
        self.end_background();
        self.join_threads();
        log::info!("session {} in {} closed", self.id, self.target);
        result
    }

    /// Has an idle shell clean up after itself, as a command: no second exec needed. As the
    /// leader of its own process group (an exec makes it one, and so does this library for a
    /// local shell), it is then told to end the group, itself included, with one signal, which
    /// the kernel delivers atomically with respect to fork. Otherwise it finds what it started
    /// in /proc (slow in a crowded container: busybox reads one byte per system call) and
    /// exits. Falls back to [`kill_session`](Session::kill_session).
    fn clean_exit(&mut self) -> Result<()> {
        let close = self.timeouts.close;
        match self.cmd(self.clean_up_script()).timeout(close).max_output(4096).run() {
            Ok(out) if out.success() && self.shell.life() == Life::Closing => {
                let last = if out.stdout == b"leader\n" { "\\command kill -s KILL 0\n" } else { "\\command exit 0\n" };
                let _ = self.shell.write(last.as_bytes(), &self.target);
                // The container is clean; only the client may be slow to go.
                self.shell.end_client(close);
                Ok(())
            }
            _ => self.kill_session(),
        }
    }

    /// The clean-up command of [`clean_exit`](Session::clean_exit): prints `leader` when the
    /// shell leads its process group, else ends what the shell started itself.
    fn clean_up_script(&self) -> String {
        // At close the user's aliases and functions may go: none then changes what runs. The
        // rest is read after they went (aliases are expanded as a line is read).
        let mut script = format!(
            "\\command unalias -a 2>/dev/null; \\command unset -f {UNSHADOWED} 2>/dev/null\nset +eu; IFS=' '; "
        );
        if let Some(dir) = self.scratch.existing() {
            script.push_str("\\command rm -rf -- ");
            text::quote_into(&mut script, dir);
            script.push_str("; ");
        }
        script.push_str(
            "if \\command read -r l </proc/$$/stat; then set -- ${l##*) }; fi; \
             if [ \"${3-}\" = \"$$\" ]; then echo leader; else ",
        );
        let reap = Reap {
            procs: Procs::Session,
            signal: Signal::Kill,
            shell: self.signaller.pid,
            instance: self.signaller.instance,
            watermark: Default::default(),
            remove: None,
        };
        script.push_str(&reap.inline());
        script.push_str("\nfi");
        script
    }

    /// Kills the shell and its processes from outside, then the exec client.
    fn kill_session(&mut self) -> Result<()> {
        let result = self.reap_leftovers();
        self.shell.end_client(self.timeouts.close);
        result
    }

    /// Ends the watch, and waits briefly for it and the reader threads; readers end at EOF.
    /// One that does not (a process that escaped the session still holds a pipe) is left to
    /// end on its own, as is a watch still waiting for a signalling exec.
    fn join_threads(&mut self) {
        self.watch.close();
        let deadline = Instant::now() + Duration::from_secs(1);
        proc::poll_until(deadline, proc::QUICK_POLL, || self.threads.iter().all(|r| r.is_finished()));
        for thread in self.threads.drain(..) {
            if thread.is_finished() {
                let _ = thread.join();
            } else {
                let name = thread.thread().name().unwrap_or_default().to_string();
                log::warn!("thread {name} of session {} is still blocked; leaving it to end on its own", self.id);
            }
        }
    }
}
