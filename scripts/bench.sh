#!/usr/bin/env bash
# The benchmarks behind the README's performance figures. Prints figures; asserts nothing.
# Every connector run uses the default settings unless a line says otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins --quiet
echo "== emulator alone: bulk create at zero latency"
target/release/bench-emulator --records 300000 --runs 3
echo "== connector: bulk insert at zero latency"
target/release/bench --records 200000 --runs 3
echo "== connector: 50 ms latency, no limit (ceiling: 32 in flight)"
target/release/bench --records 300000 --runs 3 --latency-ms 50
echo "== connector: 50 ms latency, the API takes 2 requests in flight (a short sync, then a long one)"
target/release/bench --records 40000 --runs 3 --latency-ms 50 --max-in-flight 2
target/release/bench --records 100000 --runs 3 --latency-ms 50 --max-in-flight 2
echo "== connector: a budget of 20 requests a second, 50 ms latency (a short sync), then 0 ms"
target/release/bench --records 40000 --runs 3 --rate-limit 20 --latency-ms 50
target/release/bench --records 40000 --runs 3 --rate-limit 20
echo "== connector: upserts, clean, then under 5% 5xx, 2% dropped, 2% applied then failed"
# 60,000: a clean run of 20,000 takes ~1.1 s, and a faulted one cannot end before its longest
# retry chain (~15 records fail 3 times running: 0.1 + 0.2 + 0.4 s of backoff), which then
# measures that chain rather than the rate. With 9% of requests failing, 3 retries (the
# default) leave some record failing four times in a row in most runs, which ends the sync: 10.
target/release/bench --records 60000 --runs 3 --mode append_dedup
target/release/bench --records 60000 --runs 3 --mode append_dedup --max-retries 10 --error-rate 0.05 --drop-rate 0.02 --applied-then-failed-rate 0.02
echo "== connector: an empty write"
target/release/bench --records 0 --runs 7
echo "== connector: 1,000,000 records (peak RSS)"
target/release/bench --records 1000000 --runs 1
echo "== connector: 5,000 records of 50 KB each at 50 ms latency (peak RSS)"
target/release/bench --records 5000 --runs 3 --latency-ms 50 --note-bytes 50000
echo "== connector: instructions per record under callgrind (insert, then upsert)"
target/release/bench --records 100000 --runs 1 --callgrind
target/release/bench --records 100000 --runs 1 --callgrind --mode append_dedup
echo "== connector: inserts, clean, then with 5% of writes applied then failed (duplicates counted)"
target/release/bench --records 20000 --runs 3
target/release/bench --records 20000 --runs 3 --max-retries 10 --applied-then-failed-rate 0.05
