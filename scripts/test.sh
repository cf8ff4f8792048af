#!/usr/bin/env bash
# The whole test suite: lint, unit and end-to-end tests, every printed line checked against
# Airbyte's official models, the metadata validated, and the output searched for secrets.
set -euo pipefail
cd "$(dirname "$0")/.."

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

echo "== PyAirbyte (a real orchestrator, through a DuckDB cache as by default) into the emulator"
if [ ! -x .venv-pyairbyte/bin/python ]; then python3 -m venv .venv-pyairbyte; fi
.venv-pyairbyte/bin/pip install --quiet --disable-pip-version-check -r scripts/pyairbyte/requirements.txt
rm -rf target/pyairbyte && mkdir -p target/pyairbyte
# Run from a scratch directory: PyAirbyte keeps its DuckDB cache and logs under the working one.
(cd target/pyairbyte && HOME="$PWD" ../../.venv-pyairbyte/bin/python -W ignore::FutureWarning \
  ../../scripts/pyairbyte/e2e.py ../debug/destination-clientsuccess ../debug/clientsuccess-emulator . \
  > output.log 2>&1) || { tail -40 target/pyairbyte/output.log; exit 1; }
grep "PyAirbyte default path" target/pyairbyte/output.log
(cd target/pyairbyte && HOME="$PWD" ../../.venv-pyairbyte/bin/python -W ignore::FutureWarning \
  ../../scripts/pyairbyte/e2e_gainsight_px.py ../debug/destination-gainsight-px ../debug/gainsight-px-emulator . \
  > output-gainsight-px.log 2>&1) || { tail -40 target/pyairbyte/output-gainsight-px.log; exit 1; }
grep "PyAirbyte default path" target/pyairbyte/output-gainsight-px.log
(cd target/pyairbyte && HOME="$PWD" ../../.venv-pyairbyte/bin/python -W ignore::FutureWarning \
  ../../scripts/pyairbyte/e2e_revnue.py ../debug/destination-revnue ../debug/revnue-emulator . \
  > output-revnue.log 2>&1) || { tail -40 target/pyairbyte/output-revnue.log; exit 1; }
grep "PyAirbyte default path" target/pyairbyte/output-revnue.log

echo "== each destination's metadata.yaml against ConnectorMetadataDefinitionV0"
.venv/bin/python scripts/validate_metadata.py metadata.yaml airbyte/destination-clientsuccess api.clientsuccess.com
.venv/bin/python scripts/validate_metadata.py destinations/gainsight-px/metadata.yaml \
  airbyte/destination-gainsight-px api.aptrinsic.com api-eu.aptrinsic.com api-us2.aptrinsic.com
.venv/bin/python scripts/validate_metadata.py destinations/trackops/metadata.yaml \
  airbyte/destination-trackops '*.viewcases.com'
.venv/bin/python scripts/validate_metadata.py destinations/revnue/metadata.yaml \
  airbyte/destination-revnue dashboard-api.revnue.com

echo "== no secret in any output"
leaks=0
for secret in cs-emulator-key-5f2b9e cs-emulator-pass-8d1c4a revoked-key-31337 sekrit-999 wrong-pass-4242 testing-secret \
  8f14e45f-ceea-467f-a0e6-7a2f1c5d3b9e 0c1d2e3f-4a5b-4c6d-8e7f-90a1b2c3d4e5 not-the-key-123 \
  tk-emulator-7c41e2b9 tk-wrong-31337 rv-emulator-5d2c9a71e4 rv-wrong-31337 rv-revoked-2718; do
  if grep -rlF -- "$secret" target/test-output.log target/debug/protocol-lines; then
    echo "LEAK: $secret appears in the output above"; leaks=1
  fi
done
test "$leaks" -eq 0
echo "no secret found in $(ls target/debug/protocol-lines | wc -l) captured runs or the test log"
