#!/usr/bin/env bash
# Zero-setup demo: build, start the bundled ClientSuccess emulator, sync examples/ through the
# real connector binary, and show what landed and what was rejected.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins --quiet
exec target/release/demo
