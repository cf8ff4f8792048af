"""PyAirbyte drives destination-trackops unmodified on its default path: a local source of
clients keyed by account code, read into PyAirbyte's default cache (lower-cased column names,
`_airbyte_*` columns added), then written to the bundled Trackops emulator, twice. Checks what
landed, and that the second run wrote nothing.

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
folder = scratch / "trackops"
folder.mkdir(parents=True, exist_ok=True)
source_rows = Path(__file__).resolve().parents[2] / "scripts" / "pyairbyte" / "source_rows.py"
CLIENTS = {"name": "clients", "primary_key": ["account_code"], "schema": {
    "type": "object",
    "properties": {
        "account_code": {"type": "string"},
        "name": {"type": "string"},
        "website": {"type": ["null", "string"]},
        "city": {"type": ["null", "string"]},
        "state": {"type": ["null", "string"]},
        "country": {"type": ["null", "string"]},
    },
}, "rows": [
    {"account_code": "PYA-1", "name": "Acme Insurance", "website": "https://acme.example", "city": "Denver", "state": "CO", "country": "US"},
    {"account_code": "PYA-2", "name": "Globex", "website": None, "city": "Toronto", "state": "on", "country": "ca"},
    {"account_code": "PYA-3", "name": "Initech", "website": None, "city": None, "state": None, "country": None},
]}

# A budget that lets the test finish in seconds.
emulator = subprocess.Popen([str(emulator_bin), "--budget-per-minute", "100000"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
try:
    base_url = emulator.stdout.readline().strip()
    assert base_url.startswith("http://127.0.0.1:"), base_url
    rejected = folder / "rejected.jsonl"
    config = {
        "base_url": base_url,
        "username": "api-integration",
        "api_token": "tk-emulator-7c41e2b9",
        "default_role_id": 3,
        "default_state": "CO",
        "default_country": "US",
        "object_storage_config": {"storage_type": "Local", "path": str(rejected)},
    }
    source = ab.get_source("source-rows", config={"streams": [CLIENTS]},
                           local_executable=source_rows, streams="*")
    destination = ab.get_destination("destination-trackops", config=config, local_executable=connector)
    destination.check()
    cache = ab.new_local_cache(cache_name="trackops", cache_dir=folder / "cache")
    origin = base_url.rsplit("/api/v1", 1)[0]
    for run in range(2):
        result = destination.write(source, cache=cache)
        print(f"PyAirbyte write result (trackops, run {run + 1}):", result)
        if run == 0:
            with urllib.request.urlopen(f"{origin}/_emulator/stats") as answer:
                writes_after_first = sum(
                    sum(by_status.values()) for label, by_status in json.load(answer).items()
                    if label.split(" ")[0] in ("POST", "PUT")
                )
    with urllib.request.urlopen(f"{origin}/_emulator/records/clients") as answer:
        clients = json.load(answer)
    landed = sorted((c["account_code"], c["name"]) for c in clients)
    print("landed:", landed)
    expected = [("PYA-1", "Acme Insurance"), ("PYA-2", "Globex"), ("PYA-3", "Initech")]
    assert landed == expected, f"expected {expected}, got {landed}"
    with urllib.request.urlopen(f"{origin}/_emulator/stats") as answer:
        writes = sum(
            sum(by_status.values()) for label, by_status in json.load(answer).items()
            if label.split(" ")[0] in ("POST", "PUT")
        )
    assert writes == writes_after_first, f"the second run changes nothing: {writes} writes after {writes_after_first}"
    assert not rejected.exists() or rejected.read_text() == "", rejected.read_text()
finally:
    emulator.terminate()
    emulator.wait()
print("PyAirbyte default path (Trackops): 3 of 3 clients landed, the second run wrote nothing")
