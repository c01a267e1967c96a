//! What a container printed: both streams, merged in the order written.

use crate::output::{Logs, Stream};

/// Merges the two streams of `logs --timestamps` in the order written and keeps the last
/// `keep` lines. Each line starts with an RFC 3339 time and a space, which go; docker trims
/// trailing zeros off the fraction, so times are compared as (seconds, nanoseconds), and lines
/// of one instant keep the order of their stream.
///
/// A line the engine read in pieces (podman, whenever a write ends without a newline; docker,
/// past 16 KiB) holds each later piece's time too, inside the line. Those times go as well:
/// a time in the engine's format and zone, followed by a space, no earlier than the time of
/// the piece it is in (docker gives the pieces of one read one time). A time the container
/// printed itself was taken before the engine read it, so it is earlier, and stays.
pub(super) fn merge_logs(stdout: &[u8], stderr: &[u8], keep: Option<usize>) -> Logs {
    // (time, stream, line without its times)
    let mut all = Vec::new();
    for (stream, text) in [(Stream::Stdout, stdout), (Stream::Stderr, stderr)] {
        for line in text.split_inclusive(|&b| b == b'\n') {
            let (time, line) = match stamp(line) {
                Some(first) => (log_time(first.time), unstamp(line, first)),
                None => ((&line[..0], 0), line.to_vec()),
            };
            all.push((time, stream, line));
        }
    }
    // Stable: within a stream, and at equal times, the engine's order stays.
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let skip = keep.map_or(0, |n| all.len().saturating_sub(n));
    Logs::from_lines(all.into_iter().skip(skip).map(|(_, stream, line)| (stream, line)).collect())
}

/// An engine's time at the start of some bytes.
#[derive(Clone, Copy)]
struct Stamp<'a> {
    /// The time, `2026-11-21T09:22:27.96014Z`.
    time: &'a [u8],
    /// Its zone, `Z` or `+01:00`.
    zone: &'a [u8],
}

impl Stamp<'_> {
    /// With the space after it.
    fn len(&self) -> usize {
        self.time.len() + 1
    }
}

/// The engine's time `bytes` start with, followed by a space: `YYYY-MM-DDTHH:MM:SS`, a
/// fraction of 1 to 9 digits or none, and `Z` or `±HH:MM`.
fn stamp(bytes: &[u8]) -> Option<Stamp<'_>> {
    const SECONDS: &[u8] = b"0000-00-00T00:00:00";
    let digits = |b: &[u8]| b.iter().all(u8::is_ascii_digit);
    let head = bytes.get(..SECONDS.len())?;
    let shaped = head.iter().zip(SECONDS).all(|(b, s)| if *s == b'0' { b.is_ascii_digit() } else { b == s });
    if !shaped {
        return None;
    }
    let mut at = SECONDS.len();
    if bytes.get(at) == Some(&b'.') {
        let n = bytes[at + 1..].iter().take(10).take_while(|b| b.is_ascii_digit()).count();
        if !(1..=9).contains(&n) {
            return None;
        }
        at += 1 + n;
    }
    let zone = match bytes.get(at)? {
        b'Z' => &bytes[at..at + 1],
        b'+' | b'-' => {
            let zone = bytes.get(at..at + 6)?;
            (digits(&zone[1..3]) && zone[3] == b':' && digits(&zone[4..])).then_some(zone)?
        }
        _ => return None,
    };
    let end = at + zone.len();
    (bytes.get(end) == Some(&b' ')).then(|| Stamp { time: &bytes[..end], zone })
}

/// `line`, which starts with time `first`, without its times (see [`merge_logs`]).
fn unstamp(line: &[u8], first: Stamp<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    let mut piece = first;
    let mut from = first.len();
    let mut at = from + 1;
    while at + 20 < line.len() {
        match stamp(&line[at..]) {
            Some(next) if next.zone == piece.zone && log_time(next.time) >= log_time(piece.time) => {
                out.extend_from_slice(&line[from..at]);
                from = at + next.len();
                at = from + 1;
                piece = next;
            }
            _ => at += 1,
        }
    }
    out.extend_from_slice(&line[from..]);
    out
}

/// An RFC 3339 time as (date and time to the second, nanoseconds); the zone, the same for
/// every line of one call, is left out.
fn log_time(time: &[u8]) -> (&[u8], u32) {
    const SECONDS: usize = "2006-01-02T15:04:05".len();
    if time.len() < SECONDS {
        return (time, 0);
    }
    let (seconds, rest) = time.split_at(SECONDS);
    let digits = rest.strip_prefix(b".").unwrap_or_default().iter().take_while(|b| b.is_ascii_digit());
    let nanos = digits.chain(std::iter::repeat(&b'0')).take(9).fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    (seconds, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_merge_by_time_and_keep_the_last() {
        // docker trims trailing zeros off the fraction: .5 is after .123456789.
        let stdout = b"2026-01-01T00:00:01.123456789Z a\n2026-01-01T00:00:02Z c\n2026-01-01T00:00:02.5Z e";
        let stderr = b"2026-01-01T00:00:01.5Z b\n2026-01-01T00:00:02.25Z d\n";
        let logs = merge_logs(stdout, stderr, None);
        let order: Vec<(Stream, &[u8])> = logs.lines.iter().map(|(s, l)| (*s, l.as_slice())).collect();
        assert_eq!(
            order,
            [
                (Stream::Stdout, &b"a\n"[..]),
                (Stream::Stderr, b"b\n"),
                (Stream::Stdout, b"c\n"),
                (Stream::Stderr, b"d\n"),
                (Stream::Stdout, b"e")
            ]
        );
        assert_eq!((logs.stdout.as_slice(), logs.stderr.as_slice()), (&b"a\nc\ne"[..], &b"b\nd\n"[..]));
        let tail = merge_logs(stdout, stderr, Some(2));
        assert_eq!((tail.stdout.as_slice(), tail.stderr.as_slice()), (&b"e"[..], &b"d\n"[..]));
        assert_eq!(merge_logs(b"", b"", Some(3)), Logs::default());
    }

    #[test]
    fn the_times_of_a_lines_later_pieces_go_and_times_it_printed_stay() {
        // podman: `test` and `\r\n` read apart; docker: a line past 16 KiB.
        let podman = b"2026-12-06T00:33:00.56Z up\r\n2026-12-06T00:33:00.5631Z test2026-12-06T00:33:00.563120332Z \r\n";
        assert_eq!(merge_logs(podman, b"", None).stdout, b"up\r\ntest\r\n");
        let long = "x".repeat(16 << 10);
        let docker = format!("2026-12-06T00:33:01Z {long}2026-12-06T00:33:01Z {long}2026-12-06T00:33:01.1Z !\n");
        assert_eq!(merge_logs(docker.as_bytes(), b"", None).stdout, format!("{long}{long}!\n").into_bytes());
        // Local zones, and a piece that starts with a space.
        let zoned = b"2026-12-06T01:33:00.5+01:00 a2026-12-06T01:33:00.6+01:00  b\n";
        assert_eq!(merge_logs(zoned, b"", None).stdout, b"a b\n");
        // Times the container printed: earlier than the engine's own, in another zone or
        // shape, or at the start of a piece.
        for line in [
            "2026-12-06T00:33:00.5Z 2026-12-06T00:33:00.6Z INFO up\n",
            "2026-12-06T00:33:00.5Z ts=2026-12-06T00:33:00.4Z level=info\n",
            "2026-12-06T00:33:00.5Z at 2026-12-06T00:33:00.499999999Z ok\n",
            "2026-12-06T00:33:00.5Z at 2026-12-06T01:33:00.6+01:00 ok\n",
            "2026-12-06T00:33:00.5Z at 2026-12-06T00:33:00.6Z\n",
            "2026-12-06T00:33:00.5Z at 2026-12-06 00:33:01Z ok\n",
            "2026-12-06T00:33:00.5Z at 2026-12-06T00:33:01.1234567890Z ok\n",
        ] {
            let want = line.split_once(' ').unwrap().1;
            assert_eq!(String::from_utf8(merge_logs(line.as_bytes(), b"", None).stdout).unwrap(), want);
        }
    }
}
