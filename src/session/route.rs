//! The two reader threads of a session and where they send what they read.
//!
//! Each reader owns one pipe (the shell's stdout or stderr). While a command is running, the
//! reader scans its stream for that command's sentinel and hands the bytes before it to the
//! command's [`Sink`]; when it finds the sentinel it records the end of its stream in the route.
//! When both streams have ended, the route drops the command's last sender, so the command's
//! channel disconnects exactly when all of its output has been delivered: that disconnection is
//! how a waiter learns the command is done, even if someone else took the events.
//!
//! A command's output goes to one of three sinks:
//! - [`Sink::Events`]: a bounded channel of [`Event`]s, for [`Running`](crate::Running) and chunk
//!   callbacks; a full channel makes the reader wait, which pushes back on the container.
//! - [`Sink::Keep`]: kept by the reader itself up to a cap and handed over at the end, so a
//!   plain `exec` wakes the caller once, not once per chunk.
//! - [`Sink::Unread`]: the session's unread buffer, for commands nobody waits on (`send`).
//!
//! Output that no command claims (a background job printing between commands, the output of a
//! command whose receiver was dropped) also goes to the unread buffer, which is capped and
//! never blocks, and is read with [`Session::read`](crate::Session::read).

use std::io::Read;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crossbeam_channel::Sender;

use super::protocol::{MARK_LEN, Scanner};
use super::{Event, Stream};
use crate::proc;

/// A callback that sees every byte a session's shell writes, on the reader threads.
pub(crate) type Tap = Box<dyn FnMut(Stream, &[u8]) + Send>;

/// Where a command's output goes.
#[derive(Debug, Clone)]
pub(crate) enum Sink {
    /// Sent as events; the sender is also what signals the end.
    Events(Sender<Event>),
    /// Kept by the readers, up to this many bytes per stream.
    Keep(usize),
    /// Appended to the session's unread buffer.
    Unread,
}

/// How one stream of a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum End {
    /// The sentinel arrived; holds the bytes between it and its newline.
    Sentinel(Vec<u8>),
    /// The stream closed first: the shell is gone.
    Eof,
}

/// Output kept up to a cap: by a reader for a [`Sink::Keep`] command, or by a waiter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Kept {
    pub bytes: Vec<u8>,
    pub truncated: bool,
}

impl Kept {
    /// Appends `data`, keeping at most `cap` bytes; what does not fit marks it truncated.
    pub(crate) fn push(&mut self, cap: usize, data: Vec<u8>) {
        let room = cap.saturating_sub(self.bytes.len());
        if data.len() > room {
            self.truncated = true;
            self.bytes.extend_from_slice(&data[..room]);
        } else if self.bytes.is_empty() {
            self.bytes = data;
        } else {
            self.bytes.extend_from_slice(&data);
        }
    }

    /// `self`, or `other`'s bytes when `self` has none; truncated if either is.
    pub(crate) fn or(mut self, other: Kept) -> Kept {
        if self.bytes.is_empty() {
            self.bytes = other.bytes;
        }
        self.truncated |= other.truncated;
        self
    }
}

/// How both streams of a finished command ended, with the output kept for it.
#[derive(Debug, Clone)]
pub(crate) struct Completion {
    pub stdout: End,
    pub stderr: End,
    pub kept: [Kept; 2],
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
    sink: Sink,
    /// Dropped when both streams have ended: disconnects the command's channel.
    _done: Sender<Event>,
    ends: [Option<End>; 2],
    kept: [Kept; 2],
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

/// The command a reader is scanning for, and what it kept of its stream.
struct Current {
    seq: u64,
    scanner: Scanner,
    sink: Sink,
    kept: Kept,
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

    /// Makes command `seq` the one whose output goes to `sink`; dropping `done` (once both
    /// streams have ended) signals its end. Returns false if the shell's streams have both
    /// closed already (the command can never run).
    pub(crate) fn begin(&self, seq: u64, marker: [u8; MARK_LEN], sink: Sink, done: Sender<Event>) -> bool {
        let mut route = self.route();
        route.finished = None;
        let ends = route.eof.map(|eof| eof.then_some(End::Eof));
        if ends.iter().all(Option::is_some) {
            return false;
        }
        route.active = Some(Active { seq, marker, sink, _done: done, ends, kept: Default::default() });
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
            shared.on_eof(stream, current);
        })
    }

    fn on_chunk(&self, stream: Stream, current: &mut Option<Current>, mut chunk: Vec<u8>) {
        loop {
            if current.is_none() {
                *current = self.pick_up(stream);
            }
            let Some(c) = current.as_mut() else {
                self.tap(stream, &chunk);
                self.push_unread(stream, &chunk);
                return;
            };
            let scan = c.scanner.feed(chunk);
            if !scan.data.is_empty() {
                self.deliver(stream, c, scan.data);
            }
            let Some(trailer) = scan.end else { return };
            if let Some(c) = current.take() {
                self.end(stream, c.seq, End::Sentinel(trailer), c.kept);
            }
            if scan.rest.is_empty() {
                return;
            }
            chunk = scan.rest;
        }
    }

    fn on_eof(&self, stream: Stream, current: Option<Current>) {
        let current = match current {
            Some(mut c) => {
                let held = c.scanner.flush();
                if !held.is_empty() {
                    self.deliver(stream, &mut c, held);
                }
                Some((c.seq, c.kept))
            }
            None => None,
        };
        let ended = {
            let mut route = self.route();
            route.eof[stream as usize] = true;
            match (&route.active, current) {
                (Some(a), Some((seq, kept))) if a.seq == seq => Some((seq, kept)),
                (Some(a), _) if a.ends[stream as usize].is_none() => Some((a.seq, Kept::default())),
                _ => None,
            }
        };
        if let Some((seq, kept)) = ended {
            self.end(stream, seq, End::Eof, kept);
        }
    }

    /// The running command, if this stream of it has not ended yet.
    fn pick_up(&self, stream: Stream) -> Option<Current> {
        let route = self.route();
        let active = route.active.as_ref()?;
        if active.ends[stream as usize].is_some() {
            return None;
        }
        Some(Current {
            seq: active.seq,
            scanner: Scanner::new(active.marker),
            sink: active.sink.clone(),
            kept: Kept::default(),
        })
    }

    fn tap(&self, stream: Stream, data: &[u8]) {
        if let Some(tap) = self.tap.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            tap(stream, data);
        }
    }

    /// Hands a command's output to the tap, then to its sink.
    fn deliver(&self, stream: Stream, c: &mut Current, data: Vec<u8>) {
        self.tap(stream, &data);
        match &c.sink {
            Sink::Events(tx) => {
                if let Err(e) = tx.send(Event::new(stream, data)) {
                    // Nobody listens any more: keep it for `read`.
                    self.push_unread(stream, e.into_inner().bytes());
                }
            }
            &Sink::Keep(cap) => c.kept.push(cap, data),
            Sink::Unread => self.push_unread(stream, &data),
        }
    }

    fn end(&self, stream: Stream, seq: u64, end: End, kept: Kept) {
        let mut route = self.route();
        let Some(active) = route.active.as_mut().filter(|a| a.seq == seq) else { return };
        active.ends[stream as usize] = Some(end);
        active.kept[stream as usize] = kept;
        if let [Some(_), Some(_)] = &active.ends {
            let Some(Active { ends: [Some(stdout), Some(stderr)], kept, .. }) = route.active.take() else {
                unreachable!("checked above")
            };
            route.finished = Some((seq, Completion { stdout, stderr, kept }));
        }
    }
}
