//! A build step run inside a container from an xtask: `cargo run --example xtask -- check`.
//!
//! The shape of a `cargo xtask` binary that builds in a pinned toolchain image, with no async
//! runtime: start a throwaway container, copy the sources in, run the steps in one persistent
//! shell (so `cd` and exported variables carry from step to step), stream their output live,
//! stop at the first failure with its exit code and stderr, copy the result out.
//!
//! The steps here only need busybox, so the example runs on the local test image
//! (`scripts/setup-runtimes.sh`); a real xtask would use a Rust image and `cargo build`.
//! `BOXSHELL_IMAGE` picks another image.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use boxshell::container::{ContainerSpec, Containers};
use boxshell::{Runtime, Stream};

fn main() {
    let task = std::env::args().nth(1).unwrap_or_else(|| "check".into());
    let result = match task.as_str() {
        "check" => check(),
        _ => {
            eprintln!("usage: xtask check");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("xtask {task} failed: {e}");
        std::process::exit(1);
    }
}

fn check() -> boxshell::Result<()> {
    let runtime = Runtime::detect()?;
    let image = std::env::var("BOXSHELL_IMAGE").unwrap_or_else(|_| "boxshell-test:latest".into());
    let containers = Containers::new(runtime);
    let builder = containers
        .run(
            &ContainerSpec::new(image).name(format!("xtask-{}", std::process::id())).command(["sleep", "3600"]).init(),
        )?
        .remove_on_drop();

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    containers.copy_in(builder.name(), &root.join("src"), "/work")?;

    let mut sh =
        containers.session(builder.name()).workdir("/work").env("CI", "1").timeout(Duration::from_secs(300)).open()?;
    let steps = [
        ("inventory", "export RUST_FILES=$(find . -name '*.rs' | wc -l); echo \"$RUST_FILES Rust files\""),
        ("no-unsafe", "! grep -rn 'unsafe {' . || { echo 'unsafe code found' >&2; false; }"),
        ("line count", "echo \"$(find . -name '*.rs' | xargs cat | wc -l) lines in $RUST_FILES files\""),
        ("checksum", "find . -type f | sort | xargs sha256sum > /tmp/SHA256SUMS && wc -l < /tmp/SHA256SUMS"),
    ];
    for (name, command) in steps {
        println!("--- {name}");
        sh.cmd(command)
            .on_chunk(|stream, bytes| {
                // Live, as the step prints it.
                let _ = match stream {
                    Stream::Stdout => std::io::stdout().write_all(bytes),
                    Stream::Stderr => std::io::stderr().write_all(bytes),
                };
            })
            .run()?
            .check()?;
    }
    let sums = sh.read_file("/tmp/SHA256SUMS")?;
    let out = root.join("target").join("xtask-SHA256SUMS");
    std::fs::write(&out, &sums)
        .map_err(|e| boxshell::Error::Io { context: format!("writing {}", out.display()), source: e })?;
    println!("--- done: checksums of {} files in {}", sums.iter().filter(|&&b| b == b'\n').count(), out.display());
    sh.close()
}
