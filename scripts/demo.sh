#!/usr/bin/env bash
# Zero-setup demo: build, start each bundled emulator, sync the examples through the real
# connector binaries, and show what landed and what was rejected.
# Usage: scripts/demo.sh [all|NAME]   (NAME: clientsuccess, or a folder of destinations/)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/destinations.sh
which="${1:-all}"
names=$(destinations | cut -d' ' -f1)
if [ "$which" != all ] && ! grep -qx -- "$which" <<<"$names"; then
  echo "unknown destination '$which': use all or one of: $(echo $names)" >&2
  exit 2
fi
echo "== building the connectors and their emulators (release; the first build takes several minutes)"
cargo build --release --workspace --bins
for name in $names; do
  if [ "$which" = all ] || [ "$which" = "$name" ]; then
    echo "##### destination-$name"
    # ClientSuccess's demo is the root's `demo`; every other destination's is NAME-demo.
    if [ "$name" = clientsuccess ]; then target/release/demo; else "target/release/$name-demo"; fi
  fi
done
