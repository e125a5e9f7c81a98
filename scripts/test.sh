#!/usr/bin/env bash
# Every test Warren has: formatting, lints, unit, property and integration
# tests, and the interop suite with stock clients in other languages.
# Each stage prints how long it took; a stage that hangs is stopped (and
# fails the run) long before CI's own limit.
set -euo pipefail
cd "$(dirname "$0")/.."

total_start=$SECONDS
stage() {
    local name=$1 limit=$2
    shift 2
    echo "== $name"
    local start=$SECONDS
    if ! timeout --kill-after=30 "$limit" "$@"; then
        echo "== FAILED: $name (after $((SECONDS - start)) s; limit $limit s)"
        exit 1
    fi
    echo "== $name: $((SECONDS - start)) s"
}

stage "cargo fmt --check" 120 cargo fmt --all --check
stage "import loops (scripts/import-loops.py)" 60 python3 scripts/import-loops.py
stage "cargo clippy" 1200 cargo clippy --workspace --all-targets --locked -- -D warnings
stage "cargo test" 1800 cargo test --workspace --locked
stage "interop: stock clients in Python, Node, Java, Go, C, Rust, Ruby, PHP and Perl (interop/run.sh)" 1200 bash interop/run.sh
echo "== all tests passed in $((SECONDS - total_start)) s"
