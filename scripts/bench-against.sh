#!/usr/bin/env bash
# Runs the session bench of a base commit and of the working tree alternately, ROUNDS times
# each, so both see the same machine; prints each run's table under a heading.
#
#   scripts/bench-against.sh COMMIT [ROUNDS]      # e.g. scripts/bench-against.sh main~3 2
#
# BOXSHELL_BENCH_RUNTIMES picks the runtimes, as for `cargo bench`.
set -euo pipefail
base=${1:?usage: scripts/bench-against.sh COMMIT [ROUNDS]}
rounds=${2:-2}
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
git worktree add -q --detach "$dir" "$base"
trap 'git worktree remove --force "$dir"' EXIT
# A target directory of the base's own under target/, so neither build undoes the other.
base_target=$PWD/target/bench-base
(cd "$dir" && CARGO_TARGET_DIR=$base_target cargo bench -q --bench session --no-run 2>/dev/null)
cargo bench -q --bench session --no-run 2>/dev/null
for i in $(seq 1 "$rounds"); do
    echo "## round $i: $base ($(git rev-parse --short "$base"))"
    (cd "$dir" && CARGO_TARGET_DIR=$base_target cargo bench -q --bench session 2>/dev/null)
    echo "## round $i: working tree"
    cargo bench -q --bench session 2>/dev/null
done
