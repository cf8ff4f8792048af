"""PyAirbyte drives destination-revnue unmodified on its default path: a local source of a
customer master read into PyAirbyte's default cache (lower-cased, snake-cased column names,
`_airbyte_*` columns added), then written to the bundled Revnue emulator. Checks what landed.

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
folder = scratch / "revnue"
folder.mkdir(parents=True, exist_ok=True)
source_rows = Path(__file__).resolve().parents[2] / "scripts" / "pyairbyte" / "source_rows.py"
# A customer master keyed by name, with a custom field column named as the finance team wrote it.
CUSTOMERS = {"name": "customers", "primary_key": ["name"], "schema": {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "country": {"type": ["null", "string"]},
        "category": {"type": ["null", "string"]},
        "city": {"type": ["null", "string"]},
        "Contract Value": {"type": ["null", "number"]},
        "nda_signed_date": {"type": ["null", "string"], "format": "date"},
    },
}, "rows": [
    {"name": "Acme GmbH", "country": "Germany", "category": "Retail", "city": "Berlin", "Contract Value": 1500.5, "nda_signed_date": "2024-05-01"},
    {"name": "Globex", "country": "US", "category": None, "city": None, "Contract Value": None, "nda_signed_date": None},
    {"name": "Initrode", "country": "826", "category": "Services", "city": "London", "Contract Value": 99, "nda_signed_date": "2023-01-15"},
]}

# A budget that lets the test finish in seconds; the connector keeps to the same one.
emulator = subprocess.Popen([str(emulator_bin), "--budget-per-minute", "3000"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
try:
    base_url = emulator.stdout.readline().strip()
    assert base_url.startswith("http://127.0.0.1:"), base_url
    rejected = folder / "rejected.jsonl"
    config = {
        "api_token": "rv-emulator-5d2c9a71e4",
        "base_url": base_url,
        "requests_per_minute": 3000,
        "object_storage_config": {"storage_type": "Local", "path": str(rejected)},
    }
    source = ab.get_source(
        "source-warehouse",
        config={"streams": [CUSTOMERS]},
        local_executable=source_rows,
        streams="*",
    )
    destination = ab.get_destination("destination-revnue", config=config, local_executable=connector)
    destination.check()
    cache = ab.new_local_cache(cache_name="revnue", cache_dir=folder / "cache")
    for run in range(2):
        result = destination.write(source, cache=cache)
        print(f"PyAirbyte write result (revnue, run {run + 1}):", result)
    with urllib.request.urlopen(f"{base_url}/_emulator/records/customers") as answer:
        customers = [c for c in json.load(answer) if c["company"] == 1]
    landed = sorted(
        (c["name"], c["country"], (c["category"] or {}).get("name"), c["city"],
         ((c["template"] or {}).get("fields") or {}).get("Contract value"), c["nda_signed_date"])
        for c in customers
    )
    print("landed:", landed)
    expected = [
        ("Acme GmbH", "Germany", "Retail", "Berlin", 1500.5, "2024-05-01"),
        ("Globex", "United States of America", None, None, None, None),
        ("Initrode", "United Kingdom of Great Britain and Northern Ireland", "Services", "London", 99.0, "2023-01-15"),
    ]
    assert landed == expected, f"expected {expected}, got {landed}"
    with urllib.request.urlopen(f"{base_url}/_emulator/stats") as answer:
        stats = json.load(answer)
    posts = sum(stats.get("POST /customer", {}).values())
    patches = sum(stats.get("PATCH /customer/{id}", {}).values())
    assert (posts, patches) == (3, 0), f"the second run changes nothing: {stats}"
    assert not rejected.exists() or rejected.read_text() == "", rejected.read_text()
finally:
    emulator.terminate()
    emulator.wait()
print("PyAirbyte default path (Revnue): 3 of 3 customers landed, the second run wrote nothing")
