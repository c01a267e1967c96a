//! The two reader threads of a session and where they send what they read.
//!
//! Each reader owns one pipe (the shell's stdout or stderr). While a command is running, the
//! reader scans its stream for that command's sentinel and hands the bytes before it to the
//! command's [`Sink`]; when it finds the sentinel it records the end of its stream in the route.
//! The reader that ends the second stream sends the command's [`Completion`] (how both streams
//! ended, and the output kept for it) on the command's own channel, after every byte of its
//! output went to the sink: receiving it is how the driver learns the command is done. The
//! route then drops its last sender of events, so a [`Running`](crate::Running)'s event channel
//! disconnects too.
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
//!
//! After a command was interrupted, the shell runs a recovery line that prints the command's
//! sentinels once more (see [`protocol`](super::protocol)). When the command's frame had ended
//! it already, those lines come after the command's end: each reader strips lines of that
//! sentinel from its stream until the next command's sentinel shows that none can follow.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::protocol::{MARK_LEN, Scanner};
use super::{Event, Stream};
use crate::output::{Gap, PerStream};
use crate::proc;

/// A callback that sees every byte a session's shell writes, on the reader threads.
pub(crate) type Tap = Box<dyn FnMut(Stream, &[u8]) + Send>;

/// Where a command's output goes.
#[derive(Debug, Clone)]
pub(crate) enum Sink {
    /// Sent as events; the channel disconnects once the command has ended.
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
    /// The stream closed first (the shell is gone), or the command was given up.
    Eof,
}

/// One stream's output kept up to a cap, by a reader for a [`Sink::Keep`] command or by a
/// waiter. Within the cap everything is kept. Past it, the first half of the cap is kept from
/// the start of the stream and the rest from its end (where a build log has its error); the
/// bytes between are counted and dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Kept {
    /// Everything, until the cap is passed; then the head (`cap / 2` bytes).
    bytes: Vec<u8>,
    cap: usize,
    /// Once the cap is passed. (Boxed: rare, and a `Kept` is moved about for every command.)
    over: Option<Box<Overflow>>,
}

/// The end of a stream past its cap.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Overflow {
    /// The latest `cap - cap / 2` bytes.
    tail: VecDeque<u8>,
    dropped: u64,
}

impl Kept {
    pub(crate) fn new(cap: usize) -> Kept {
        Kept { cap, ..Kept::default() }
    }

    /// Appends `data`.
    pub(crate) fn push(&mut self, data: Vec<u8>) {
        if self.over.is_none() && self.bytes.len() + data.len() <= self.cap {
            if self.bytes.is_empty() {
                self.bytes = data;
            } else {
                self.bytes.extend_from_slice(&data);
            }
            return;
        }
        let head = self.cap / 2;
        let mut data = &data[..];
        let over = self.over.get_or_insert_with(|| {
            let mut over = Box::<Overflow>::default();
            if self.bytes.len() > head {
                over.tail.extend(&self.bytes[head..]);
                self.bytes.truncate(head);
            } else {
                let fill = (head - self.bytes.len()).min(data.len());
                self.bytes.extend_from_slice(&data[..fill]);
                data = &data[fill..];
            }
            over
        });
        over.tail.extend(data);
        let excess = over.tail.len().saturating_sub(self.cap - head);
        over.tail.drain(..excess);
        over.dropped += excess as u64;
    }

    /// The bytes kept, head then tail, and where the dropped bytes were.
    pub(crate) fn finish(mut self) -> (Vec<u8>, Option<Gap>) {
        let Some(over) = self.over else { return (self.bytes, None) };
        let gap = (over.dropped > 0).then_some(Gap { at: self.bytes.len(), dropped: over.dropped });
        self.bytes.extend(over.tail);
        (self.bytes, gap)
    }

    /// Whether nothing came.
    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty() && self.over.is_none()
    }
}

/// How both streams of a finished command ended, with the output kept for it.
#[derive(Debug, Clone)]
pub(crate) struct Completion {
    pub ends: PerStream<End>,
    pub kept: PerStream<Kept>,
}

impl Completion {
    /// The end of a command whose end was never seen.
    pub(crate) fn unseen() -> Completion {
        Completion { ends: PerStream { stdout: End::Eof, stderr: End::Eof }, kept: PerStream::default() }
    }
}

/// The routing of a session's output: shared by the session and its reader threads.
pub(crate) struct Router {
    route: Mutex<Route>,
    tap: Mutex<Option<Tap>>,
    /// When the readers last delivered a command's output, in nanoseconds since `epoch`; kept
    /// only while the running command has an idle timeout (`watch_idle`).
    last_output: AtomicU64,
    watch_idle: AtomicBool,
    /// A reader waits for the caller to take a command's output (its channel is full).
    waiting: AtomicBool,
    epoch: Instant,
}

struct Route {
    active: Option<Active>,
    eof: PerStream<bool>,
    unread: Unread,
    /// The last two commands a recovery line was written for, with their sentinels. A reader
    /// is at most one command behind: the next cannot start before both streams of one ended.
    recovered: [Option<(u64, [u8; MARK_LEN])>; 2],
}

struct Active {
    seq: u64,
    marker: [u8; MARK_LEN],
    sink: Sink,
    /// Where the completion goes, once both streams have ended.
    done: Sender<Completion>,
    ends: PerStream<Option<End>>,
    kept: PerStream<Kept>,
    /// A terminal command's PTY: its output comes on stdout before the shell's own.
    terminal: Option<TerminalRoute>,
}

/// The output of a terminal command's PTY, which ends apart from the shell's streams.
struct TerminalRoute {
    kept: Kept,
    ended: bool,
    /// When both of the shell's streams had ended while the PTY had not.
    waiting_since: Option<Instant>,
}

impl Active {
    /// Whether everything of the command has ended: both streams, and its PTY.
    fn all_ended(&self) -> bool {
        self.ends.stdout.is_some() && self.ends.stderr.is_some() && self.terminal.as_ref().is_none_or(|t| t.ended)
    }

    /// Sends the command's completion (its channel holds one: the send cannot block).
    fn complete(mut self) {
        let ends = std::mem::take(&mut self.ends);
        let ends = PerStream { stdout: ends.stdout.unwrap_or(End::Eof), stderr: ends.stderr.unwrap_or(End::Eof) };
        let mut kept = self.kept;
        if let Some(mut terminal) = self.terminal.take() {
            // The command's stdout is the PTY: what the shell's stdout had comes after.
            let (shell, _) = std::mem::take(&mut kept.stdout).finish();
            if !shell.is_empty() {
                terminal.kept.push(shell);
            }
            kept.stdout = terminal.kept;
        }
        let _ = self.done.try_send(Completion { ends, kept });
    }
}

/// Output no command claimed, capped per stream (the oldest bytes are dropped first).
#[derive(Debug, Default)]
pub(crate) struct Unread {
    pub bufs: PerStream<Vec<u8>>,
    pub dropped: u64,
    cap: usize,
}

impl Unread {
    fn push(&mut self, stream: Stream, bytes: &[u8]) {
        let buf = &mut self.bufs[stream];
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

/// What one reader thread carries from chunk to chunk.
#[derive(Default)]
struct Reader {
    current: Option<Current>,
    /// The last command whose end this stream has seen.
    ended: u64,
    /// Strips sentinel lines of an interrupted command that ended before its recovery line ran.
    stale: Option<Stale>,
}

/// Removes every line of one sentinel from a stream.
struct Stale {
    marker: [u8; MARK_LEN],
    scanner: Scanner,
}

impl Stale {
    fn new(marker: [u8; MARK_LEN]) -> Stale {
        Stale { marker, scanner: Scanner::new(marker) }
    }

    /// `chunk` without the sentinel lines in it; a possible start of one is held back.
    fn filter(&mut self, mut chunk: Vec<u8>) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let scan = self.scanner.feed(chunk);
            if out.is_empty() {
                out = scan.data;
            } else {
                out.extend_from_slice(&scan.data);
            }
            if scan.end.is_none() {
                return out;
            }
            // A line dropped; more may follow.
            self.scanner = Scanner::new(self.marker);
            if scan.rest.is_empty() {
                return out;
            }
            chunk = scan.rest;
        }
    }
}

impl Router {
    pub(crate) fn new(unread_cap: usize) -> Arc<Router> {
        Arc::new(Router {
            route: Mutex::new(Route {
                active: None,
                eof: PerStream::default(),
                unread: Unread { cap: unread_cap, ..Unread::default() },
                recovered: [None; 2],
            }),
            tap: Mutex::new(None),
            last_output: AtomicU64::new(0),
            watch_idle: AtomicBool::new(false),
            waiting: AtomicBool::new(false),
            epoch: Instant::now(),
        })
    }

    /// Notes that a command printed (or started) now.
    fn touch(&self) {
        let nanos = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last_output.store(nanos, Ordering::Relaxed);
    }

    /// Whether a reader waits for the caller to take the running command's output: the
    /// command may be blocked on its output, not stuck.
    pub(crate) fn readers_wait(&self) -> bool {
        self.waiting.load(Ordering::Relaxed)
    }

    /// When the running command last printed something (or started, if it has not).
    pub(crate) fn last_output(&self) -> Instant {
        self.epoch + Duration::from_nanos(self.last_output.load(Ordering::Relaxed))
    }

    /// Notes that a recovery line for command `seq` was written: lines of its sentinel that
    /// come after its end are not output.
    pub(crate) fn recovering(&self, seq: u64, marker: [u8; MARK_LEN]) {
        let mut route = self.route();
        if route.recovered[0].is_some_and(|(s, _)| s != seq) {
            route.recovered[1] = route.recovered[0];
        }
        route.recovered[0] = Some((seq, marker));
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

    /// Makes command `seq` the one whose output goes to `sink`. With `watch_idle`, when it
    /// last printed is kept ([`last_output`](Router::last_output)). Returns where its
    /// [`Completion`] will come, or `None` if the shell's streams have both closed already
    /// (the command can never run).
    pub(crate) fn begin(
        &self,
        seq: u64,
        marker: [u8; MARK_LEN],
        sink: Sink,
        watch_idle: bool,
        terminal: bool,
    ) -> Option<Receiver<Completion>> {
        let mut route = self.route();
        let ends = route.eof.map(|eof| eof.then_some(End::Eof));
        if ends.stdout.is_some() && ends.stderr.is_some() {
            return None;
        }
        let (done, completion) = crossbeam_channel::bounded(1);
        let terminal = terminal.then(|| TerminalRoute {
            kept: Kept::new(if let Sink::Keep(cap) = sink { cap } else { 0 }),
            ended: false,
            waiting_since: None,
        });
        route.active = Some(Active { seq, marker, sink, done, ends, kept: PerStream::default(), terminal });
        drop(route);
        self.watch_idle.store(watch_idle, Ordering::Relaxed);
        if watch_idle {
            self.touch();
        }
        Some(completion)
    }

    /// Ends command `seq` without its sentinels (the shell is gone but something still holds
    /// its pipes open): its completion says both streams closed. Later output is unclaimed.
    pub(crate) fn abandon(&self, seq: u64) {
        let abandoned = self.route().active.take_if(|a| a.seq == seq);
        if let Some(mut active) = abandoned {
            active.ends = PerStream { stdout: Some(End::Eof), stderr: Some(End::Eof) };
            active.complete();
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
            let mut reader = Reader::default();
            if let Err(e) = proc::pump(pipe, |bytes| shared.on_chunk(stream, &mut reader, bytes.to_vec())) {
                log::warn!("reading the session's {stream:?}: {e}");
            }
            shared.on_eof(stream, reader);
        })
    }

    fn on_chunk(&self, stream: Stream, reader: &mut Reader, mut chunk: Vec<u8>) {
        loop {
            if reader.current.is_none() {
                self.pick_up(stream, reader);
            }
            if let Some(stale) = reader.stale.as_mut() {
                chunk = stale.filter(chunk);
                if chunk.is_empty() {
                    return;
                }
            }
            let Some(c) = reader.current.as_mut() else {
                self.tap(stream, &chunk);
                self.push_unread(stream, &chunk);
                return;
            };
            let scan = c.scanner.feed(chunk);
            if !scan.data.is_empty() {
                self.deliver(stream, c, scan.data);
            }
            let Some(trailer) = scan.end else { return };
            let mut rest = scan.rest;
            if let Some(mut stale) = reader.stale.take() {
                // This command's sentinel came after the recovery line: no stale line follows,
                // and what the filter held back comes after the sentinel.
                rest.extend(stale.scanner.flush());
            }
            if let Some(c) = reader.current.take() {
                reader.ended = c.seq;
                reader.stale = self.end(stream, c.seq, End::Sentinel(trailer), c.kept);
            }
            if rest.is_empty() {
                return;
            }
            chunk = rest;
        }
    }

    fn on_eof(&self, stream: Stream, mut reader: Reader) {
        let held = reader.stale.take().map(|mut s| s.scanner.flush()).unwrap_or_default();
        if !held.is_empty() {
            match reader.current.as_mut() {
                Some(c) => {
                    let scan = c.scanner.feed(held);
                    if !scan.data.is_empty() {
                        self.deliver(stream, c, scan.data);
                    }
                }
                None => self.push_unread(stream, &held),
            }
        }
        let current = match reader.current {
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
            route.eof[stream] = true;
            match (&route.active, current) {
                (Some(a), Some((seq, kept))) if a.seq == seq => Some((seq, kept)),
                (Some(a), _) if a.ends[stream].is_none() => Some((a.seq, Kept::default())),
                _ => None,
            }
        };
        if let Some((seq, kept)) = ended {
            self.end(stream, seq, End::Eof, kept);
        }
    }

    /// Takes up the running command, if this stream of it has not ended yet, and the
    /// stripping of a recovery line for the command this stream ended last.
    fn pick_up(&self, stream: Stream, reader: &mut Reader) {
        let route = self.route();
        if reader.stale.is_none() {
            reader.stale = Self::stale_in(&route, reader.ended);
        }
        let Some(active) = route.active.as_ref() else { return };
        if active.ends[stream].is_some() {
            return;
        }
        let kept = match active.sink {
            Sink::Keep(cap) => Kept::new(cap),
            _ => Kept::default(),
        };
        reader.current =
            Some(Current { seq: active.seq, scanner: Scanner::new(active.marker), sink: active.sink.clone(), kept });
    }

    fn stale_in(route: &Route, ended: u64) -> Option<Stale> {
        route.recovered.iter().flatten().find(|(seq, _)| *seq == ended).map(|&(_, marker)| Stale::new(marker))
    }

    fn tap(&self, stream: Stream, data: &[u8]) {
        if let Some(tap) = self.tap.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            tap(stream, data);
        }
    }

    /// Hands a command's output to the tap, then to its sink.
    fn deliver(&self, stream: Stream, c: &mut Current, data: Vec<u8>) {
        if self.watch_idle.load(Ordering::Relaxed) {
            self.touch();
        }
        self.tap(stream, &data);
        match &c.sink {
            Sink::Events(tx) => self.send(tx, stream, data),
            Sink::Keep(_) => c.kept.push(data),
            Sink::Unread => self.push_unread(stream, &data),
        }
    }

    /// Sends a command's output as an event, waiting while the caller does not keep up; keeps
    /// it as unread output when nobody listens any more.
    fn send(&self, tx: &Sender<Event>, stream: Stream, data: Vec<u8>) {
        let sent = match tx.try_send(Event::new(stream, data)) {
            Err(TrySendError::Full(ev)) => {
                // The caller does not keep up: the command waits for it, and is not
                // idle meanwhile.
                self.waiting.store(true, Ordering::Relaxed);
                let sent = tx.send(ev).map_err(|e| e.into_inner());
                self.waiting.store(false, Ordering::Relaxed);
                if self.watch_idle.load(Ordering::Relaxed) {
                    self.touch();
                }
                sent
            }
            Err(TrySendError::Disconnected(ev)) => Err(ev),
            Ok(()) => Ok(()),
        };
        if let Err(ev) = sent {
            // Nobody listens any more: keep it for `read`.
            self.push_unread(stream, ev.bytes());
        }
    }

    /// Output of command `seq`'s PTY, delivered as its stdout.
    #[cfg(feature = "terminal")]
    pub(crate) fn terminal_output(&self, seq: u64, data: Vec<u8>) {
        let mut route = self.route();
        let Some(active) = route.active.as_mut().filter(|a| a.seq == seq) else {
            drop(route);
            return self.push_unread(Stream::Stdout, &data);
        };
        if self.watch_idle.load(Ordering::Relaxed) {
            self.touch();
        }
        let sink = active.sink.clone();
        if let (Sink::Keep(_), Some(terminal)) = (&sink, active.terminal.as_mut()) {
            terminal.kept.push(data);
            return;
        }
        drop(route);
        self.tap(Stream::Stdout, &data);
        match sink {
            Sink::Events(tx) => self.send(&tx, Stream::Stdout, data),
            _ => self.push_unread(Stream::Stdout, &data),
        }
    }

    /// The PTY of command `seq` has ended: all its output was delivered.
    pub(crate) fn terminal_end(&self, seq: u64) {
        let mut route = self.route();
        if let Some(terminal) = route.active.as_mut().filter(|a| a.seq == seq).and_then(|a| a.terminal.as_mut()) {
            terminal.ended = true;
        }
        let done = route.active.take_if(|a| a.seq == seq && a.all_ended());
        drop(route);
        if let Some(active) = done {
            active.complete();
        }
    }

    /// Whether both of the shell's streams of command `seq` ended at least `grace` ago while its
    /// PTY has not: the PTY's end is not coming.
    pub(crate) fn terminal_overdue(&self, seq: u64, grace: Duration) -> bool {
        let route = self.route();
        let since = route.active.as_ref().filter(|a| a.seq == seq).and_then(|a| a.terminal.as_ref()?.waiting_since);
        since.is_some_and(|since| since.elapsed() >= grace)
    }

    /// Records that `stream` of command `seq` ended; returns the filter for the command's
    /// recovery line, if one was written.
    fn end(&self, stream: Stream, seq: u64, end: End, kept: Kept) -> Option<Stale> {
        let mut route = self.route();
        let stale = Self::stale_in(&route, seq);
        let Some(active) = route.active.as_mut().filter(|a| a.seq == seq) else { return stale };
        active.ends[stream] = Some(end);
        active.kept[stream] = kept;
        if let Some(terminal) =
            active.terminal.as_mut().filter(|_| active.ends.stdout.is_some() && active.ends.stderr.is_some())
        {
            terminal.waiting_since.get_or_insert_with(Instant::now);
        }
        let done = route.active.take_if(|a| a.all_ended());
        drop(route);
        if let Some(active) = done {
            active.complete();
        }
        stale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(cap: usize, pieces: &[&[u8]]) -> (Vec<u8>, Option<Gap>) {
        let mut k = Kept::new(cap);
        for p in pieces {
            k.push(p.to_vec());
        }
        k.finish()
    }

    #[test]
    fn kept_holds_everything_within_the_cap() {
        assert_eq!(kept(10, &[b"abc", b"defghij"]), (b"abcdefghij".to_vec(), None));
        assert_eq!(kept(10, &[]), (Vec::new(), None));
    }

    #[test]
    fn kept_past_the_cap_holds_head_and_tail() {
        let stream: Vec<u8> = (0..100u8).collect();
        let want = |cap: usize| {
            let head = cap / 2;
            let mut v = stream[..head].to_vec();
            v.extend_from_slice(&stream[100 - (cap - head)..]);
            (v, Some(Gap { at: head, dropped: (100 - cap) as u64 }))
        };
        for cap in [0, 1, 2, 9, 10, 11, 99] {
            // Whole, in pieces of every size, and a first piece bigger than the cap.
            assert_eq!(kept(cap, &[&stream]), want(cap), "cap {cap}");
            for size in 1..12 {
                let pieces: Vec<&[u8]> = stream.chunks(size).collect();
                assert_eq!(kept(cap, &pieces), want(cap), "cap {cap}, pieces of {size}");
            }
        }
    }

    /// The two sentinel lines of `marker`, as the shell's streams carry them.
    #[cfg(feature = "terminal")]
    fn sentinels(marker: &[u8; MARK_LEN]) -> (Vec<u8>, Vec<u8>) {
        let mut out = marker.to_vec();
        out.extend_from_slice(b"\n");
        let mut err = marker.to_vec();
        err.extend_from_slice(b" 0 0\n");
        (out, err)
    }

    #[cfg(feature = "terminal")]
    #[test]
    fn a_terminal_command_completes_once_its_pty_has_ended_too() {
        let marker = *b"\x1fbx0123456789abcdef0123456789abcdef";
        let (out, err) = sentinels(&marker);
        for pty_first in [false, true] {
            let router = Router::new(1 << 10);
            let done = router.begin(1, marker, Sink::Keep(8), false, true).expect("streams open");
            let (mut r_out, mut r_err) = (Reader::default(), Reader::default());
            router.terminal_output(1, b"screen".to_vec());
            router.on_chunk(Stream::Stdout, &mut r_out, b"shell".to_vec());
            if pty_first {
                router.terminal_output(1, b" more".to_vec());
                router.terminal_end(1);
            }
            router.on_chunk(Stream::Stdout, &mut r_out, out.clone());
            router.on_chunk(Stream::Stderr, &mut r_err, err.clone());
            if !pty_first {
                assert!(done.try_recv().is_err(), "complete before the PTY ended");
                assert!(router.terminal_overdue(1, Duration::ZERO));
                assert!(!router.terminal_overdue(1, Duration::from_secs(60)));
                router.terminal_output(1, b" more".to_vec());
                router.terminal_end(1);
            }
            let completion = done.try_recv().expect("complete");
            // The PTY's output first, capped as a stream is, then the shell's stdout.
            let (stdout, gap) = completion.kept.stdout.finish();
            assert_eq!(stdout, b"screhell", "pty first: {pty_first}");
            assert_eq!(gap.map(|g| (g.at, g.dropped)), Some((4, 8)));
            // Later output of the PTY is nobody's: unread.
            router.terminal_output(1, b"late".to_vec());
            assert_eq!(router.take_unread().bufs.stdout, b"late");
        }
    }

    #[test]
    fn stale_lines_are_stripped_wherever_the_reads_cut() {
        let marker = *b"\x1fbx0123456789abcdef0123456789abcdef";
        let mut stream = b"before".to_vec();
        stream.extend_from_slice(&marker);
        stream.extend_from_slice(b" 130 0\nbetween");
        stream.extend_from_slice(&marker);
        stream.extend_from_slice(b"\nafter\x1fbx");
        for size in 1..stream.len() {
            let mut stale = Stale::new(marker);
            let mut out = Vec::new();
            for piece in stream.chunks(size) {
                out.extend(stale.filter(piece.to_vec()));
            }
            out.extend(stale.scanner.flush());
            assert_eq!(out, b"beforebetweenafter\x1fbx", "pieces of {size}");
        }
    }
}
