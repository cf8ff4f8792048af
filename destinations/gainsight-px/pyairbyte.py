"""PyAirbyte drives destination-gainsight-px unmodified on its default path: a local source of
product accounts read into PyAirbyte's default cache (lower-cased column names, `_airbyte_*`
columns added), then written to the bundled PX emulator. Checks what landed.

Usage: python pyairbyte.py <connector binary> <emulator binary> <scratch dir>"""
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

# Nothing may leave the machine: no registry lookups, no telemetry.
os.environ["AIRBYTE_OFFLINE_MODE"] = "1"
os.environ["DO_NOT_TRACK"] = "1"
import airbyte as ab  # noqa: E402  (after the environment it reads at import)

connector, emulator_bin, scratch = (Path(a).resolve() for a in sys.argv[1:4])
folder = scratch / "gainsight-px"
folder.mkdir(parents=True, exist_ok=True)
source_rows = Path(__file__).resolve().parents[2] / "scripts" / "pyairbyte" / "source_rows.py"
ACCOUNTS = {"name": "accounts", "primary_key": ["id"], "schema": {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "plan": {"type": ["null", "string"]},
        "numberOfEmployees": {"type": ["null", "integer"]},
        "renewalDate": {"type": ["null", "string"]},
    },
}, "rows": [
    {"id": "PYA-1", "name": "Acme Corp", "plan": "enterprise", "numberOfEmployees": 1200, "renewalDate": "2027-03-31"},
    {"id": "PYA-2", "name": "Globex", "plan": "starter", "numberOfEmployees": None, "renewalDate": None},
    {"id": "PYA-3", "name": "Initech", "plan": None, "numberOfEmployees": 40, "renewalDate": "2026-12-31T00:00:00Z"},
]}

emulator = subprocess.Popen([str(emulator_bin)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
try:
    base_url = emulator.stdout.readline().strip()
    assert base_url.startswith("http://127.0.0.1:"), base_url
    rejected = folder / "rejected.jsonl"
    config = {
        "api_key": "8f14e45f-ceea-467f-a0e6-7a2f1c5d3b9e",
        "base_url": base_url,
        "property_keys": ["AP-EMULATOR-2"],
        "object_storage_config": {"storage_type": "Local", "path": str(rejected)},
    }
    source = ab.get_source(
        "source-warehouse",
        config={"streams": [ACCOUNTS]},
        local_executable=source_rows,
        streams="*",
    )
    destination = ab.get_destination("destination-gainsight-px", config=config, local_executable=connector)
    destination.check()
    cache = ab.new_local_cache(cache_name="gainsight_px", cache_dir=folder / "cache")
    result = destination.write(source, cache=cache)
    print("PyAirbyte write result (gainsight-px):", result)
    with urllib.request.urlopen(f"{base_url}/_emulator/records/accounts") as answer:
        accounts = json.load(answer)
    landed = sorted((a["id"], a["name"], a["plan"], a["numberOfEmployees"], a["renewalDate"]) for a in accounts)
    print("landed:", landed)
    expected = [
        ("PYA-1", "Acme Corp", "enterprise", 1200, 1806451200000),
        ("PYA-2", "Globex", "starter", 0, 0),
        ("PYA-3", "Initech", "", 40, 1798675200000),
    ]
    assert landed == expected, f"expected {expected}, got {landed}"
    assert all(a["propertyKeys"] == ["AP-EMULATOR-2"] for a in accounts), accounts
    assert not rejected.exists() or rejected.read_text() == "", rejected.read_text()
finally:
    emulator.terminate()
    emulator.wait()
print("PyAirbyte default path (Gainsight PX): 3 of 3 accounts landed")
