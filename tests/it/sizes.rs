//! Real sizes, on every runtime and shell: output past the cap keeps its start and its end,
//! and stdin and files of any size arrive byte for byte.

use boxshell::{Gap, Output, Stream};

use crate::ensure;
use crate::harness::{Fixture, tag};
use crate::{R, Test};

pub const TESTS: &[(&str, Test<Fixture>)] = &[
    ("output_past_the_cap_keeps_head_and_tail", output_past_the_cap_keeps_head_and_tail),
    ("stdin_of_any_size_arrives_exact", stdin_of_any_size_arrives_exact),
    ("files_of_64_mib_round_trip", files_of_64_mib_round_trip),
];

/// What `seq 1 N` prints.
fn seq(n: u32) -> Vec<u8> {
    (1..=n).flat_map(|i| format!("{i}\n").into_bytes()).collect()
}

/// `stream` kept under `cap`: its first `cap / 2` bytes and its last `cap - cap / 2`.
fn head_and_tail(stream: &[u8], cap: usize) -> (Vec<u8>, Option<Gap>) {
    if stream.len() <= cap {
        return (stream.to_vec(), None);
    }
    let head = cap / 2;
    let mut kept = stream[..head].to_vec();
    kept.extend_from_slice(&stream[stream.len() - (cap - head)..]);
    (kept, Some(Gap { at: head, dropped: (stream.len() - cap) as u64 }))
}

fn check_kept(shell: &str, what: &str, out: &Output, stdout: &[u8], stderr: &[u8], cap: usize) -> R {
    let (want_out, want_out_gap) = head_and_tail(stdout, cap);
    let (want_err, want_err_gap) = head_and_tail(stderr, cap);
    ensure!(
        out.stdout == want_out && out.stdout_gap == want_out_gap,
        "{shell}: {what}: stdout {} bytes, gap {:?}; want {} bytes, gap {want_out_gap:?}",
        out.stdout.len(),
        out.stdout_gap,
        want_out.len()
    );
    ensure!(
        out.stderr == want_err && out.stderr_gap == want_err_gap,
        "{shell}: {what}: stderr {} bytes, gap {:?}; want {} bytes, gap {want_err_gap:?}",
        out.stderr.len(),
        out.stderr_gap,
        want_err.len()
    );
    ensure!(out.truncated == (want_out_gap.is_some() || want_err_gap.is_some()), "{shell}: {what}: truncated flag");
    ensure!(out.exit_code == 0, "{shell}: {what}: exit {}", out.exit_code);
    Ok(())
}

fn output_past_the_cap_keeps_head_and_tail(fx: &Fixture) -> R {
    let _heavy = crate::harness::heavy();
    let big = seq(1_500_000); // 10.9 MB
    let small = seq(100);
    for shell in fx.shells() {
        let mut sh = fx.builder().shell(&shell).open()?;
        // Both streams past the cap at once, then one within it; caps odd and even.
        for cap in [1 << 20, 1001] {
            let out = sh.cmd("seq 1 1500000; seq 1 1500000 >&2").max_output(cap).run()?;
            check_kept(&shell, "both streams", &out, &big, &big, cap)?;
        }
        let out = sh.cmd("seq 1 1500000; seq 1 100 >&2").max_output(4096).run()?;
        check_kept(&shell, "stdout only", &out, &big, &small, 4096)?;
        // Through events, as `spawn` delivers them, and through a chunk callback.
        let out = sh.cmd("seq 1 1500000 >&2").max_output(1 << 20).spawn()?.wait()?;
        check_kept(&shell, "spawned", &out, b"", &big, 1 << 20)?;
        let mut seen = Vec::new();
        let out = sh
            .cmd("seq 1 1500000")
            .max_output(1 << 20)
            .on_chunk(|stream, bytes| {
                if stream == Stream::Stdout {
                    seen.extend_from_slice(bytes)
                }
            })
            .run()?;
        check_kept(&shell, "with a chunk callback", &out, &big, b"", 1 << 20)?;
        ensure!(seen == big, "{shell}: the callback saw {} bytes of {}", seen.len(), big.len());
        // Nothing kept, everything counted.
        let out = sh.cmd("seq 1 100").max_output(0).run()?;
        check_kept(&shell, "a cap of 0", &out, &small, b"", 0)?;
        let next = sh.exec("echo in-step")?;
        ensure!(next.stdout == b"in-step\n" && !next.truncated, "{shell}: {next:?}");
        sh.close()?;
    }
    Ok(())
}

/// `len` pseudo-random bytes (xorshift), every 4096th a `-`, which dash's and bash's `printf`
/// would take for the start of an option.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 4096 == 0 { b'-' } else { (x >> 24) as u8 }
        })
        .collect()
}

fn stdin_of_any_size_arrives_exact(fx: &Fixture) -> R {
    let _heavy = crate::harness::heavy();
    for shell in fx.shells() {
        let mut sh = fx.builder().shell(&shell).open()?;
        for len in [0, 1, 4095, 4096, 4097, 8191, 8192, 8193, 100_000, 1 << 20, 4 << 20, 64 << 20] {
            let input = data(len, len as u64 + 7);
            let out = sh.cmd("cat").stdin(input.clone()).max_output(len + 1).run()?;
            ensure!(
                out.success() && out.stdout == input,
                "{shell}: {len} bytes through cat came back as {} bytes (exit {}, stderr {:?})",
                out.stdout.len(),
                out.exit_code,
                out.stderr_str()
            );
            let count = sh.cmd("wc -c").stdin(input).run()?;
            ensure!(count.stdout_str().trim() == len.to_string(), "{shell}: wc -c says {:?}", count.stdout_str());
        }
        // Stdin does not leak into the next command.
        ensure!(sh.exec("cat; echo empty")?.stdout == b"empty\n", "{shell}: stdin leaked");
        sh.close()?;
    }
    Ok(())
}

fn files_of_64_mib_round_trip(fx: &Fixture) -> R {
    let _heavy = crate::harness::heavy();
    for shell in fx.shells() {
        let mut sh = fx.builder().shell(&shell).open()?;
        let input = data(64 << 20, 99);
        let path = format!("/tmp/boxshell big {}", tag());
        sh.write_file(&path, &input)?;
        let size = sh.exec(&format!("wc -c < {}", boxshell::quote(&path)))?;
        ensure!(size.stdout_str().trim() == (64u32 << 20).to_string(), "{shell}: size {:?}", size.stdout_str());
        let back = sh.read_file(&path)?;
        ensure!(back == input, "{shell}: read back {} bytes, not the same", back.len());
        sh.exec(&format!("rm -f {}", boxshell::quote(&path)))?.check()?;
        sh.close()?;
    }
    Ok(())
}
