#!/usr/bin/env bash
# Zero-setup demo: build, start each bundled emulator, sync the examples through the real
# connector binaries, and show what landed and what was rejected.
# Usage: scripts/demo.sh [all|clientsuccess|gainsight-px|trackops|revnue]   (default: all, in turn)
set -euo pipefail
cd "$(dirname "$0")/.."
which="${1:-all}"
case "$which" in
  all|clientsuccess|gainsight-px|trackops|revnue) ;;
  *) echo "unknown destination '$which': use all, clientsuccess, gainsight-px, trackops or revnue" >&2; exit 2 ;;
esac
cargo build --release --workspace --bins --quiet
if [ "$which" = all ] || [ "$which" = clientsuccess ]; then
  echo "##### destination-clientsuccess"
  target/release/demo
fi
if [ "$which" = all ] || [ "$which" = gainsight-px ]; then
  echo "##### destination-gainsight-px"
  target/release/gainsight-px-demo
fi
if [ "$which" = all ] || [ "$which" = trackops ]; then
  echo "##### destination-trackops"
  target/release/trackops-demo
fi
if [ "$which" = all ] || [ "$which" = revnue ]; then
  echo "##### destination-revnue"
  target/release/revnue-demo
fi
