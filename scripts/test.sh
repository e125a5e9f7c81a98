#!/usr/bin/env bash
# Every test Warren has: formatting, lints, unit, property and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
echo "== pika smoke test (Python venv made by the script)"
cargo build --locked -p warren
bash interop/pika_smoke.sh target/debug/warren
echo "== all tests passed"
