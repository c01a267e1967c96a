//! What a container printed: both streams, merged in the order written.

use crate::output::{Logs, Stream};

/// Merges the two streams of `logs --timestamps` in the order written and keeps the last
/// `keep` lines. Each line starts with an RFC 3339 time and a space, which go; docker trims
/// trailing zeros off the fraction, so times are compared as (seconds, nanoseconds), and lines
/// of one instant keep the order of their stream.
pub(super) fn merge_logs(stdout: &[u8], stderr: &[u8], keep: Option<usize>) -> Logs {
    // (time, stream, line without its time)
    let mut all = Vec::new();
    for (stream, text) in [(Stream::Stdout, stdout), (Stream::Stderr, stderr)] {
        for line in text.split_inclusive(|&b| b == b'\n') {
            let (time, rest) = match line.iter().position(|&b| b == b' ') {
                Some(i) => (&line[..i], &line[i + 1..]),
                None => (&line[..0], line),
            };
            all.push((log_time(time), stream, rest.to_vec()));
        }
    }
    // Stable: within a stream, and at equal times, the engine's order stays.
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let skip = keep.map_or(0, |n| all.len().saturating_sub(n));
    Logs::from_lines(all.into_iter().skip(skip).map(|(_, stream, line)| (stream, line)).collect())
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
}
