//! The sentinel scanner, fed any byte stream cut at any points, must find exactly what the
//! reference model finds in the whole stream.
//!
//! Input: one byte (how many cut points follow), the cut points (two bytes each), 32 bytes of
//! token, then the stream.

#![no_main]

use boxshell::fuzzing::{marker, model, scan_in_pieces};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else { return };
    let n = usize::from(n % 32);
    if rest.len() < n * 2 + 32 {
        return;
    }
    let (cuts, rest) = rest.split_at(n * 2);
    let (seed, stream) = rest.split_at(32);
    let cuts: Vec<usize> = cuts.chunks(2).map(|c| usize::from(u16::from_le_bytes([c[0], c[1]]))).collect();
    let marker = marker(seed);
    // Let the fuzzer build streams around the real sentinel: a byte 0xff stands for it.
    let mut expanded = Vec::with_capacity(stream.len() + 64);
    for &b in stream {
        if b == 0xff {
            expanded.extend_from_slice(&marker);
        } else {
            expanded.push(b);
        }
    }
    assert_eq!(scan_in_pieces(&expanded, &cuts, marker), model(&expanded, &marker));
    let every: Vec<usize> = (0..=expanded.len()).collect();
    assert_eq!(scan_in_pieces(&expanded, &every, marker), model(&expanded, &marker));
});
