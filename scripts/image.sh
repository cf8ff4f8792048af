#!/usr/bin/env bash
# Builds a destination's image with podman or docker and runs it end to end against its
# emulator: spec, the launcher's `sh -c 'eval "$AIRBYTE_ENTRYPOINT …"'`, check, and a write of
# its examples. Prints the image's size.
# Usage: scripts/image.sh NAME   (clientsuccess, or a folder of destinations/)
# On a machine that cannot pull base images, ../shared/tools/offline-base-images.sh makes them.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/destinations.sh
name="${1:?usage: scripts/image.sh NAME}"
line=$(destinations | awk -v n="$name" '$1 == n')
[ -n "$line" ] || { echo "unknown destination '$name'" >&2; exit 2; }
read -r _ folder _ <<<"$line"

engine=""
if command -v podman >/dev/null && podman info >/dev/null 2>&1; then engine=podman
elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then engine=docker; fi
[ -n "$engine" ] || { echo "no container engine (podman or docker) runs here: image not built"; exit 3; }

image="airbyte/destination-$name:dev"
echo "== $engine build -f $folder/Dockerfile -t $image ."
"$engine" build --network host -f "$folder/Dockerfile" -t "$image" . >"target/image-$name.log" 2>&1 \
  || { tail -30 "target/image-$name.log"; exit 1; }
size=$("$engine" image inspect --format '{{.Size}}' "$image")

echo "== spec"
"$engine" run --rm --network none "$image" spec | grep -q '"type":"SPEC"'
echo "== the launcher's shell: sh -c 'eval \"\$AIRBYTE_ENTRYPOINT spec\"'"
"$engine" run --rm --network none --entrypoint sh "$image" -c 'eval "$AIRBYTE_ENTRYPOINT spec"' | grep -q '"type":"SPEC"'
[ "$("$engine" run --rm --network none --entrypoint id "$image" -u)" = 1000 ]

cargo build --quiet --bins -p "$( [ "$name" = clientsuccess ] && echo integration_tests || echo "$name-emulator")"
work=$(mktemp -d); chmod 777 "$work"
budget=(); target/debug/"$name"-emulator --help | grep -q -- --budget-per-minute && budget=(--budget-per-minute 100000)
target/debug/"$name"-emulator "${budget[@]}" >"$work/emulator.out" 2>/dev/null &
emulator=$!
trap 'kill $emulator 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do [ -s "$work/emulator.out" ] && break; sleep 0.1; done
base_url=$(head -1 "$work/emulator.out")
examples="$folder/examples"
if [ "$name" = clientsuccess ]; then catalog=1-catalog.json; records=1-clients.jsonl; else catalog=catalog.json; records=records.jsonl; fi
python3 - "$examples/config.json" "$base_url" >"$work/config.json" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config["base_url"] = sys.argv[2]
config["object_storage_config"] = {"storage_type": "Local", "path": "/secrets/rejected.jsonl"}
config.pop("requests_per_minute", None)
print(json.dumps(config))
PY
cp "$examples/$catalog" "$work/catalog.json"
run=("$engine" run --rm --network host -v "$work:/secrets" "$image")

echo "== check against the emulator at $base_url"
"${run[@]}" check --config /secrets/config.json </dev/null | tee "$work/check.out" | grep -q '"status":"SUCCEEDED"' \
  || { cat "$work/check.out"; exit 1; }
echo "== write of $examples/$records"
"$engine" run --rm -i --network host -v "$work:/secrets" "$image" \
  write --config /secrets/config.json --catalog /secrets/catalog.json <"$examples/$records" >"$work/write.out" \
  || { tail -5 "$work/write.out"; exit 1; }
states=$(grep -c '"type":"STATE"' "$work/write.out" || true)
[ "$states" -gt 0 ] || { tail -5 "$work/write.out"; exit 1; }
echo "image $image: $((size / 1000000)) MB; spec, the launcher's shell, uid 1000, check and a write ($states states echoed) passed"
