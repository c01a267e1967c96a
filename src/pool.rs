//! A pool of sessions keyed by container, for hosts that keep a shell per container for hours
//! (agent sandboxes): reuse, replacement of dead sessions, idle reaping, metrics.
//!
//! # Design note
//!
//! Each container has a slot. A caller takes the slot's session out for as long as it holds
//! the [`Pooled`] guard and puts it back when the guard drops; a second caller for the same
//! container waits on the slot's condition variable meanwhile. So commands on one container
//! never interleave, callers on different containers never wait for each other, the map of
//! slots is locked only for a lookup, and a session is never opened twice for one container
//! (only the caller holding the slot opens). Reaping looks only at sessions that are in their
//! slot, so it cannot take one that is in use.
//!
//! ```no_run
//! # fn main() -> boxshell::Result<()> {
//! use std::time::Duration;
//! use boxshell::pool::Pool;
//! use boxshell::{Runtime, Session};
//!
//! let pool = Pool::builder(|container: &str| Session::builder(container).runtime(Runtime::Docker))
//!     .idle_timeout(Duration::from_secs(600))
//!     .reap_every(Duration::from_secs(30))
//!     .build();
//! let out = pool.get_or_create("sandbox-7")?.exec("ls /work")?;
//! for s in pool.list() {
//!     println!("{} {} commands, idle {:?}", s.container, s.commands, s.idle);
//! }
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, Sender};

use crate::error::Result;
use crate::runtime::Runtime;
use crate::session::{Metrics, Session, SessionBuilder};

type Factory = dyn Fn(&str) -> SessionBuilder + Send + Sync;

/// Sessions keyed by container, shared by many threads. Cheap to clone (a handle); the
/// background reaper, if any, stops when the last handle is dropped, and the sessions are
/// closed then.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("sessions", &self.list().len()).finish_non_exhaustive()
    }
}

/// Configures a [`Pool`]; made by [`Pool::builder`].
#[must_use]
pub struct PoolBuilder {
    factory: Box<Factory>,
    idle_timeout: Option<Duration>,
    reap_every: Option<Duration>,
    restore_on_replace: bool,
}

struct Inner {
    factory: Box<Factory>,
    idle_timeout: Option<Duration>,
    restore_on_replace: bool,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    /// Dropped with the pool: tells the reaper thread to stop.
    _stop_reaper: Option<Sender<()>>,
}

#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
    returned: Condvar,
}

#[derive(Default)]
struct SlotState {
    /// The session, when it is in the slot (not taken by a caller).
    session: Option<Session>,
    in_use: bool,
    /// Callers waiting for the session.
    waiting: usize,
    /// Close the session when it comes back instead of keeping it.
    close_on_return: bool,
    /// What `list` shows while the session is out.
    last: Option<PooledStatus>,
    /// The session's state when it was last handed back (with `restore_on_replace`).
    snapshot: Option<crate::ShellState>,
    /// The session came back dead: the next one replaces it.
    died: bool,
}

/// One pooled session, as [`Pool::list`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PooledStatus {
    /// The session's id.
    pub id: uuid::Uuid,
    /// The container (the key it is pooled under).
    pub container: String,
    /// Its runtime.
    pub runtime: Runtime,
    /// Whether its shell was alive when last looked at.
    pub alive: bool,
    /// Whether a caller is using it now.
    pub in_use: bool,
    /// Commands run.
    pub commands: u64,
    /// Total time spent running commands.
    pub busy: Duration,
    /// Time since it was opened.
    pub uptime: Duration,
    /// Time since its last command (zero while in use).
    pub idle: Duration,
}

impl PoolBuilder {
    /// Closes sessions idle for longer than this, on [`Pool::reap_idle`] and in the background
    /// reaper. Default: never.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// Runs [`Pool::reap_idle`] on a background thread at this interval, until the pool is
    /// dropped. Needs an idle timeout to do anything.
    pub fn reap_every(mut self, interval: Duration) -> Self {
        self.reap_every = Some(interval);
        self
    }

    /// Carries a session's shell state over to the session that replaces it when it has died
    /// (its container restarted, its shell exited): the pool takes a
    /// [`snapshot`](Session::snapshot) each time a session is handed back, and the replacement
    /// is opened with [`SessionBuilder::restore`] of the last one; a log line says so. A
    /// snapshot is one command of the session, some 6 ms for a bash session with 100 variables
    /// (docs/PERFORMANCE.md): the price of each hand-back, so it is off by default.
    pub fn restore_on_replace(mut self, on: bool) -> Self {
        self.restore_on_replace = on;
        self
    }

    /// Builds the pool (and starts the reaper thread, if asked for).
    ///
    /// # Panics
    /// If the reaper thread cannot be started (the system is out of threads).
    pub fn build(self) -> Pool {
        let (stop, stopped) = match self.reap_every {
            Some(_) => {
                let (tx, rx) = crossbeam_channel::bounded::<()>(0);
                (Some(tx), Some(rx))
            }
            None => (None, None),
        };
        let inner = Arc::new(Inner {
            factory: self.factory,
            idle_timeout: self.idle_timeout,
            restore_on_replace: self.restore_on_replace,
            slots: Mutex::new(HashMap::new()),
            _stop_reaper: stop,
        });
        if let (Some(interval), Some(stopped)) = (self.reap_every, stopped) {
            let weak: Weak<Inner> = Arc::downgrade(&inner);
            crate::proc::spawn_thread("boxshell-pool-reaper".into(), move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    let Some(inner) = weak.upgrade() else { break };
                    let reaped = Pool { inner }.reap_idle();
                    if reaped > 0 {
                        log::info!("pool reaper closed {reaped} idle sessions");
                    }
                }
            })
            .expect("starting the pool's reaper thread");
        }
        Pool { inner }
    }
}

impl Pool {
    /// A pool whose sessions are opened from `factory(container)`: a [`SessionBuilder`] with
    /// the runtime, shell, environment and timeouts they should have.
    pub fn builder(factory: impl Fn(&str) -> SessionBuilder + Send + Sync + 'static) -> PoolBuilder {
        PoolBuilder { factory: Box::new(factory), idle_timeout: None, reap_every: None, restore_on_replace: false }
    }

    /// The live session of `container`, opened if there is none, replaced (with a warning
    /// logged) if its shell has died. Blocks while another caller uses that container's
    /// session; commands on one container never interleave.
    ///
    /// # Errors
    /// The errors of [`SessionBuilder::open`] when a session has to be opened.
    pub fn get_or_create(&self, container: &str) -> Result<Pooled<'_>> {
        let slot = self.slot(container);
        let session = {
            let mut state = lock(&slot.state);
            state.waiting += 1;
            while state.in_use {
                state = slot.returned.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            state.waiting -= 1;
            state.in_use = true;
            state.close_on_return = false;
            (state.session.take(), std::mem::take(&mut state.died))
        };
        let (mut session, mut replaced) = session;
        // The slot is ours now: nobody else can open a session for this container meanwhile.
        if let Some(s) = &mut session
            && !s.is_alive()
        {
            log::warn!("the session in {container} ({}) has died; opening a new one", s.id());
            session = None;
            replaced = true;
        }
        let snapshot = if replaced { lock(&slot.state).snapshot.clone() } else { None };
        let mut session = match session {
            Some(s) => s,
            None => match self.open(container, snapshot) {
                Ok(s) => s,
                Err(e) => {
                    self.give_back(container, &slot, None);
                    return Err(e);
                }
            },
        };
        lock(&slot.state).last = Some(describe(container, &mut session, true));
        Ok(Pooled { pool: self, container: container.to_string(), slot, session: Some(session) })
    }

    /// Closes the session of `container`; if a caller is using it, it is closed when the
    /// caller is done. Returns whether there was one.
    pub fn close(&self, container: &str) -> bool {
        let Some(slot) = lock(&self.inner.slots).get(container).cloned() else { return false };
        let session = {
            let mut state = lock(&slot.state);
            if state.in_use {
                state.close_on_return = true;
                return true;
            }
            state.last = None;
            state.snapshot = None;
            state.session.take()
        };
        match session {
            Some(s) => {
                close_logged(s);
                true
            }
            None => false,
        }
    }

    /// Closes every session (those in use, when their callers are done).
    pub fn close_all(&self) {
        let containers: Vec<String> = lock(&self.inner.slots).keys().cloned().collect();
        for container in containers {
            self.close(&container);
        }
    }

    /// Closes the sessions that are not in use and have been idle for longer than the idle
    /// timeout; returns how many. Without an idle timeout, does nothing.
    pub fn reap_idle(&self) -> usize {
        let Some(limit) = self.inner.idle_timeout else { return 0 };
        let mut idle = Vec::new();
        for (container, slot) in &self.slots() {
            let mut state = lock(&slot.state);
            if !state.in_use && state.session.as_ref().is_some_and(|s| s.metrics().idle() > limit) {
                log::info!("closing the session in {container}, idle for more than {limit:?}");
                state.last = None;
                idle.extend(state.session.take());
            }
        }
        let count = idle.len();
        idle.into_iter().for_each(close_logged);
        self.prune();
        count
    }

    /// Every session in the pool: id, container, runtime, alive, commands, busy time, uptime,
    /// idle time.
    pub fn list(&self) -> Vec<PooledStatus> {
        let mut list: Vec<PooledStatus> = self
            .slots()
            .iter()
            .filter_map(|(container, slot)| {
                let mut state = lock(&slot.state);
                let in_use = state.in_use;
                match state.session.as_mut() {
                    Some(s) => Some(describe(container, s, false)),
                    None => state.last.clone().filter(|_| in_use),
                }
            })
            .collect();
        list.sort_by(|a, b| a.container.cmp(&b.container));
        list
    }

    /// The slots as they are now, so that each can be locked without holding the map.
    fn slots(&self) -> Vec<(String, Arc<Slot>)> {
        lock(&self.inner.slots).iter().map(|(k, v)| (k.clone(), Arc::clone(v))).collect()
    }

    /// Opens a session in `container`, with `snapshot` restored in it if given.
    fn open(&self, container: &str, snapshot: Option<crate::ShellState>) -> Result<Session> {
        let builder = (self.inner.factory)(container);
        match snapshot {
            Some(state) => {
                let session = builder.restore(state).open()?;
                log::info!(
                    "the session replacing the one in {container} ({}) has its predecessor's shell state",
                    session.id()
                );
                Ok(session)
            }
            None => builder.open(),
        }
    }

    fn slot(&self, container: &str) -> Arc<Slot> {
        Arc::clone(lock(&self.inner.slots).entry(container.to_string()).or_default())
    }

    /// Puts a session back into its slot (or closes it) and wakes a waiting caller.
    fn give_back(&self, container: &str, slot: &Slot, session: Option<Session>) {
        let unwanted = {
            let mut state = lock(&slot.state);
            let close = std::mem::take(&mut state.close_on_return);
            let (keep, unwanted) = if close { (None, session) } else { (session, None) };
            state.session = keep;
            state.last = None;
            unwanted
        };
        if let Some(s) = unwanted {
            log::debug!("closing the session in {container}, as asked while it was in use");
            close_logged(s);
        }
        lock(&slot.state).in_use = false;
        slot.returned.notify_one();
    }

    /// Forgets slots with no session that nobody uses or waits for.
    fn prune(&self) {
        lock(&self.inner.slots).retain(|_, slot| {
            let state = lock(&slot.state);
            state.in_use || state.waiting > 0 || state.session.is_some()
        });
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let slots = std::mem::take(self.slots.get_mut().unwrap_or_else(|e| e.into_inner()));
        for slot in slots.into_values() {
            if let Some(s) = lock(&slot.state).session.take() {
                close_logged(s);
            }
        }
    }
}

fn describe(container: &str, s: &mut Session, in_use: bool) -> PooledStatus {
    let m: Metrics = s.metrics();
    PooledStatus {
        id: s.id(),
        container: container.to_string(),
        runtime: s.runtime().clone(),
        alive: s.is_alive(),
        in_use,
        commands: m.commands,
        busy: m.busy,
        uptime: m.uptime(),
        idle: if in_use { Duration::ZERO } else { m.idle() },
    }
}

fn close_logged(s: Session) {
    let (id, target) = (s.id(), s.target().to_string());
    if let Err(e) = s.close() {
        log::warn!("closing session {id} in {target}: {e}");
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A session taken from the pool; it goes back when this is dropped. Derefs to [`Session`].
pub struct Pooled<'p> {
    pool: &'p Pool,
    container: String,
    slot: Arc<Slot>,
    session: Option<Session>,
}

impl std::fmt::Debug for Pooled<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pooled").field("container", &self.container).field("session", &self.session).finish()
    }
}

// `session` is `None` only inside `drop`, which takes it to hand it back.
impl Deref for Pooled<'_> {
    type Target = Session;
    fn deref(&self) -> &Session {
        self.session.as_ref().expect("a pooled session is present until dropped")
    }
}

impl DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Session {
        self.session.as_mut().expect("a pooled session is present until dropped")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let Some(mut session) = self.session.take() else { return };
        let died = !session.is_alive();
        let closing = died || lock(&self.slot.state).close_on_return;
        if closing {
            lock(&self.slot.state).died = died;
            // Closed before the slot is freed, so no new session overlaps the old one.
            close_logged(session);
            self.pool.give_back(&self.container, &self.slot, None);
        } else {
            if self.pool.inner.restore_on_replace {
                match session.snapshot() {
                    Ok(state) => lock(&self.slot.state).snapshot = Some(state),
                    Err(e) => log::debug!("no snapshot of the session in {}: {e}", self.container),
                }
            }
            self.pool.give_back(&self.container, &self.slot, Some(session));
        }
    }
}
