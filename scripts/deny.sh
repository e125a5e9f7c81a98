#!/usr/bin/env bash
# Checks the dependency graph against deny.toml: licenses, banned crates and
# sources. These checks work offline; installs cargo-deny on first use.
# Advisories need the RustSec database from GitHub (not reachable here):
# where it is, run `cargo deny check advisories`.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo-deny >/dev/null; then
    cargo install --locked cargo-deny
fi
exec cargo deny --offline check licenses bans sources
