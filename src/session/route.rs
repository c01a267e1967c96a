//! The two reader threads of a session and where they send what they read.
//!
//! Each reader owns one pipe (the shell's stdout or stderr). While a command is running, the
//! reader scans its stream for that command's sentinel and sends the bytes before it to the
//! command's channel as [`Event`]s; when it finds the sentinel it records the end of its stream
//! in [`Route`]. When both streams have ended, the route drops its last sender, so the channel
//! disconnects exactly when all of the command's output has been delivered: that disconnection
//! is how a waiter learns the command is done, even if someone else took the events.
//!
//! Output that no command claims (a background job printing between commands, or the output of
//! a command whose receiver was dropped) goes to a capped buffer that never blocks, read with
//! [`Session::read`](crate::Session::read).

use std::io::Read;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crossbeam_channel::Sender;

use super::protocol::{MARK_LEN, Scanner};
use super::{Event, Stream};
use crate::proc;

/// A callback that sees every byte a session's shell writes, on the reader threads.
pub(crate) type Tap = Box<dyn FnMut(Stream, &[u8]) + Send>;

/// How one stream of a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum End {
    /// The sentinel arrived; holds the bytes between it and its newline.
    Sentinel(Vec<u8>),
    /// The stream closed first: the shell is gone.
    Eof,
}

/// How both streams of a finished command ended.
#[derive(Debug, Clone)]
pub(crate) struct Completion {
    pub stdout: End,
    pub stderr: End,
}

/// State shared by a session and its reader threads.
pub(crate) struct Shared {
    route: Mutex<Route>,
    tap: Mutex<Option<Tap>>,
}

struct Route {
    active: Option<Active>,
    finished: Option<(u64, Completion)>,
    eof: [bool; 2],
    unread: Unread,
}

struct Active {
    seq: u64,
    marker: [u8; MARK_LEN],
    tx: Sender<Event>,
    ends: [Option<End>; 2],
}

/// Output no command claimed, capped per stream (the oldest bytes are dropped first).
#[derive(Debug, Default)]
pub(crate) struct Unread {
    pub bufs: [Vec<u8>; 2],
    pub dropped: u64,
    cap: usize,
}

impl Unread {
    fn push(&mut self, stream: Stream, bytes: &[u8]) {
        let buf = &mut self.bufs[stream as usize];
        buf.extend_from_slice(bytes);
        if buf.len() > self.cap {
            let excess = buf.len() - self.cap;
            buf.drain(..excess);
            self.dropped += excess as u64;
        }
    }
}

/// The command a reader is scanning for.
struct Current {
    seq: u64,
    scanner: Scanner,
    tx: Sender<Event>,
}

impl Shared {
    pub(crate) fn new(unread_cap: usize) -> Arc<Shared> {
        Arc::new(Shared {
            route: Mutex::new(Route {
                active: None,
                finished: None,
                eof: [false; 2],
                unread: Unread { cap: unread_cap, ..Unread::default() },
            }),
            tap: Mutex::new(None),
        })
    }

    fn route(&self) -> MutexGuard<'_, Route> {
        // A panic in another thread while holding the lock leaves the route consistent enough:
        // every update is a single assignment.
        self.route.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the output callback.
    pub(crate) fn set_tap(&self, tap: Option<Tap>) {
        *self.tap.lock().unwrap_or_else(|e| e.into_inner()) = tap;
    }

    /// Makes command `seq` the one whose output is routed to `tx`. Returns false if the shell's
    /// streams have both closed already (the command can never run).
    pub(crate) fn begin(&self, seq: u64, marker: [u8; MARK_LEN], tx: Sender<Event>) -> bool {
        let mut route = self.route();
        route.finished = None;
        let ends = route.eof.map(|eof| eof.then_some(End::Eof));
        if ends.iter().all(Option::is_some) {
            return false;
        }
        route.active = Some(Active { seq, marker, tx, ends });
        true
    }

    /// How command `seq` ended, once both its streams have.
    pub(crate) fn take_completion(&self, seq: u64) -> Option<Completion> {
        let mut route = self.route();
        match route.finished.take() {
            Some((s, c)) if s == seq => Some(c),
            other => {
                route.finished = other;
                None
            }
        }
    }

    /// Ends command `seq` without its sentinels (the shell is gone but something still holds
    /// its pipes open). Later output is unclaimed.
    pub(crate) fn abandon(&self, seq: u64) {
        let mut route = self.route();
        if route.active.as_ref().is_some_and(|a| a.seq == seq) {
            route.active = None;
        }
    }

    /// Appends to the unclaimed output.
    pub(crate) fn push_unread(&self, stream: Stream, bytes: &[u8]) {
        self.route().unread.push(stream, bytes);
    }

    /// Takes the unclaimed output.
    pub(crate) fn take_unread(&self) -> Unread {
        let mut route = self.route();
        let cap = route.unread.cap;
        std::mem::replace(&mut route.unread, Unread { cap, ..Unread::default() })
    }

    /// Starts the reader thread of `stream`.
    pub(crate) fn start_reader(
        self: &Arc<Self>,
        stream: Stream,
        pipe: impl Read + Send + 'static,
        name: String,
    ) -> std::io::Result<JoinHandle<()>> {
        let shared = Arc::clone(self);
        proc::spawn_thread(name, move || {
            let mut current = None;
            if let Err(e) = proc::pump(pipe, |bytes| shared.on_chunk(stream, &mut current, bytes.to_vec())) {
                log::warn!("reading the session's {stream:?}: {e}");
            }
            if let Some(mut c) = current.take() {
                let held = c.scanner.flush();
                if !held.is_empty() {
                    shared.deliver(stream, Some(&c.tx), held);
                }
            }
            shared.eof(stream);
        })
    }

    fn on_chunk(&self, stream: Stream, current: &mut Option<Current>, mut chunk: Vec<u8>) {
        loop {
            if current.is_none() {
                *current = self.pick_up(stream);
            }
            let Some(c) = current.as_mut() else {
                self.deliver(stream, None, chunk);
                return;
            };
            let scan = c.scanner.feed(chunk);
            if !scan.data.is_empty() {
                self.deliver(stream, Some(&c.tx), scan.data);
            }
            let Some(trailer) = scan.end else { return };
            let seq = c.seq;
            *current = None;
            self.end(stream, seq, End::Sentinel(trailer));
            if scan.rest.is_empty() {
                return;
            }
            chunk = scan.rest;
        }
    }

    /// The running command, if this stream of it has not ended yet.
    fn pick_up(&self, stream: Stream) -> Option<Current> {
        let route = self.route();
        let active = route.active.as_ref()?;
        if active.ends[stream as usize].is_some() {
            return None;
        }
        Some(Current { seq: active.seq, scanner: Scanner::new(active.marker), tx: active.tx.clone() })
    }

    /// Hands `data` to the tap, then to `tx`, or to the unclaimed buffer when there is no
    /// receiver.
    fn deliver(&self, stream: Stream, tx: Option<&Sender<Event>>, data: Vec<u8>) {
        if let Some(tap) = self.tap.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            tap(stream, &data);
        }
        let unsent = match tx {
            Some(tx) => match tx.send(Event::new(stream, data)) {
                Ok(()) => return,
                Err(e) => e.into_inner().into_bytes(),
            },
            None => data,
        };
        self.push_unread(stream, &unsent);
    }

    fn end(&self, stream: Stream, seq: u64, end: End) {
        let mut route = self.route();
        let Some(active) = route.active.as_mut().filter(|a| a.seq == seq) else { return };
        active.ends[stream as usize] = Some(end);
        if let [Some(_), Some(_)] = &active.ends {
            let Some(Active { ends: [Some(stdout), Some(stderr)], .. }) = route.active.take() else {
                unreachable!("checked above")
            };
            route.finished = Some((seq, Completion { stdout, stderr }));
        }
    }

    fn eof(&self, stream: Stream) {
        let seq = {
            let mut route = self.route();
            route.eof[stream as usize] = true;
            match &route.active {
                Some(a) if a.ends[stream as usize].is_none() => a.seq,
                _ => return,
            }
        };
        self.end(stream, seq, End::Eof);
    }
}
