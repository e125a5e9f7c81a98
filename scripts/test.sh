#!/usr/bin/env bash
# Every test Warren has: formatting, lints, unit, property and integration
# tests, and the interop suite with stock clients in other languages.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
echo "== interop: stock clients in Python, Node, Java, Go, C and Rust (interop/run.sh)"
bash interop/run.sh
echo "== all tests passed"
