#!/usr/bin/env bash
# The benchmarks behind the README's performance figures. Prints figures; asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins --quiet
echo "== emulator alone: bulk create at zero latency"
target/release/bench-emulator --records 300000 --runs 3
echo "== connector: bulk insert at zero latency"
target/release/bench --records 200000 --runs 3
echo "== connector: 50 ms latency, max_concurrency 8"
target/release/bench --records 100000 --runs 3 --latency-ms 50 --concurrency 8
echo "== connector: 1,000,000 records (peak RSS)"
target/release/bench --records 1000000 --runs 1
echo "== connector: 5,000 records of 50 KB each at 50 ms latency (peak RSS)"
target/release/bench --records 5000 --runs 3 --latency-ms 50 --note-bytes 50000
