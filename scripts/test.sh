#!/usr/bin/env bash
# The whole test suite: lint, unit and end-to-end tests, every printed line checked against
# Airbyte's official models, PyAirbyte into each destination, the metadata validated, and the
# output searched for secrets. Destinations are found by looking (scripts/destinations.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/destinations.sh
# CI builds once from clean: incremental caches only cost disk there.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

echo "== python models (.venv)"
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements.txt

echo "== cargo fmt, clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== cargo test"
rm -rf target/debug/protocol-lines target/debug/test-runs
cargo build --workspace --bins --quiet
cargo test --workspace 2>&1 | tee target/test-output.log
test "${PIPESTATUS[0]}" -eq 0

echo "== every printed line against AirbyteMessage"
.venv/bin/python scripts/validate_messages.py target/debug/protocol-lines

echo "== PyAirbyte (a real orchestrator, through a DuckDB cache as by default) into each emulator"
if [ ! -x .venv-pyairbyte/bin/python ]; then python3 -m venv .venv-pyairbyte; fi
.venv-pyairbyte/bin/pip install --quiet --disable-pip-version-check -r scripts/pyairbyte/requirements.txt
rm -rf target/pyairbyte && mkdir -p target/pyairbyte
destinations | while read -r name folder tests; do
  log="target/pyairbyte/output-$name.log"
  # Run from a scratch directory: PyAirbyte keeps its DuckDB cache and logs under the working one.
  (cd target/pyairbyte && HOME="$PWD" ../../.venv-pyairbyte/bin/python -W ignore::FutureWarning \
    "../../$tests/pyairbyte.py" "../debug/destination-$name" "../debug/$name-emulator" . \
    > "output-$name.log" 2>&1 </dev/null) || { tail -40 "$log"; exit 1; }
  grep "PyAirbyte default path" "$log"
done

echo "== each destination's metadata.yaml against ConnectorMetadataDefinitionV0"
destinations | while read -r name folder tests; do
  .venv/bin/python scripts/validate_metadata.py "$folder/metadata.yaml" "airbyte/destination-$name"
done

echo "== each docs page's settings table against its SPEC"
destinations | while read -r name folder tests; do
  page="$folder/docs/$name.md"
  [ "$name" = clientsuccess ] && page=docs/clientsuccess.md
  .venv/bin/python scripts/settings_table.py --check "$folder/spec/spec.json" "$page"
done

echo "== no secret in any output"
leaks=0
secrets=$(destinations | while read -r name folder tests; do cat "$tests/test-secrets"; done)
for secret in $secrets; do
  if grep -rlF -- "$secret" target/test-output.log target/debug/protocol-lines; then
    echo "LEAK: $secret appears in the output above"; leaks=1
  fi
done
test "$leaks" -eq 0
echo "no secret of $(echo "$secrets" | wc -l) found in $(ls target/debug/protocol-lines | wc -l) captured runs or the test log"

echo "== each destination's image, built and run end to end (scripts/image.sh)"
engine=""
if command -v podman >/dev/null && podman info >/dev/null 2>&1; then engine=podman
elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then engine=docker; fi
if [ -z "$engine" ]; then
  echo "no container engine (podman or docker) runs here: the images were not built or run"
elif ! "$engine" image inspect debian:bookworm-slim >/dev/null 2>&1 \
  || ! "$engine" image inspect "rust:$(rustc --version | awk '{print $2}' | cut -d. -f1,2)-slim-bookworm" >/dev/null 2>&1; then
  echo "$engine runs here but the base images are not present (no registry to pull them from):"
  echo "the images were not built; ../shared/tools/offline-base-images.sh makes them"
else
  destinations | while read -r name folder tests; do scripts/image.sh "$name" </dev/null | tail -1; done
fi
