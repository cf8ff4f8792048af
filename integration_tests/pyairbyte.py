"""PyAirbyte, a real orchestrator, drives the connector binary unmodified on its default path:
a local source read into PyAirbyte's default cache (which lower-cases column names and adds
`_airbyte_*` columns), then written to the bundled emulator. Checks what landed.

Usage: python pyairbyte.py <connector binary> <emulator binary> <scratch dir>"""
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

# Nothing may leave the machine: no registry lookups, no telemetry.
os.environ["AIRBYTE_OFFLINE_MODE"] = "1"
os.environ["DO_NOT_TRACK"] = "1"
import airbyte as ab  # noqa: E402  (after the environment it reads at import)

connector, emulator_bin, scratch = (Path(a).resolve() for a in sys.argv[1:4])
scratch.mkdir(parents=True, exist_ok=True)
source_rows = Path(__file__).resolve().parents[1] / "scripts" / "pyairbyte" / "source_rows.py"
SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "externalId": {"type": "string"},
        "npsScore": {"type": ["null", "integer"]},
        "city": {"type": ["null", "string"]},
        "siteUrl": {"type": ["null", "string"]},
        "status": {"type": ["null", "string"]},
        "active": {"type": ["null", "boolean"]},
    },
}
ROWS = [
    {"name": "Acme Corp", "externalId": "PYA-1", "status": "ACTIVE", "active": True, "npsScore": 40, "city": "Denver"},
    {"name": "Globex", "externalId": "PYA-2", "status": "ACTIVE", "active": True, "npsScore": -5, "siteUrl": "https://globex.example"},
    {"name": "Initech", "externalId": "PYA-3", "status": "TRIAL", "active": True},
]
# As most warehouses' tables hold clients: a status, no `active` column.
SCHEMA_WITHOUT_ACTIVE = {**SCHEMA, "properties": {k: v for k, v in SCHEMA["properties"].items() if k != "active"}}
ROWS_WITHOUT_ACTIVE = [
    {"name": "Acme Corp", "externalId": "PYA-1", "status": "ACTIVE"},
    {"name": "Globex", "externalId": "PYA-2", "status": "INACTIVE"},
    {"name": "Initech", "externalId": "PYA-3"},
]


def clients(schema, rows):
    return {"streams": [{"name": "clients", "primary_key": ["externalId"], "schema": schema, "rows": rows}]}


def sync(source_config, expected, label):
    """One PyAirbyte write from the local source into a fresh emulator; checks what landed."""
    emulator = subprocess.Popen([str(emulator_bin)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        base_url = emulator.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:"), base_url
        # Each sync with a cache of its own, of the default kind (DuckDB): in the one default
        # cache, the table the other sync left would lend its rows the columns this one lacks.
        folder = scratch / label
        folder.mkdir(exist_ok=True)
        cache = ab.new_local_cache(cache_name=label.replace("-", "_"), cache_dir=folder / "cache")
        rejected = folder / "rejected.jsonl"
        config = {
            "credentials": {"auth_type": "api_key", "api_key": "cs-emulator-key-5f2b9e"},
            "base_url": base_url,
            "rejected_records": {"storage_type": "Local", "path": str(rejected)},
        }
        source = ab.get_source(
            "source-warehouse",
            config=source_config,
            local_executable=source_rows,
            streams="*",
        )
        destination = ab.get_destination("destination-clientsuccess", config=config, local_executable=connector)
        destination.check()
        result = destination.write(source, cache=cache)  # PyAirbyte's default path: through a DuckDB cache
        print(f"PyAirbyte write result ({label}):", result)

        origin = base_url.rsplit("/v2", 1)[0]
        with urllib.request.urlopen(f"{origin}/_emulator/records/client") as answer:
            clients = json.load(answer)
        landed = sorted((c["externalId"], c["name"], c.get("npsScore"), c["status"], c["active"]) for c in clients)
        print("landed:", landed)
        assert landed == expected, f"expected {expected}, got {landed}"
        assert not any(k.startswith("_airbyte") for c in clients for k in c), clients
        assert not rejected.exists() or rejected.read_text() == "", rejected.read_text()
    finally:
        emulator.terminate()
        emulator.wait()


sync(clients(SCHEMA, ROWS), [
    ("PYA-1", "Acme Corp", 40, "ACTIVE", True),
    ("PYA-2", "Globex", -5, "ACTIVE", True),
    ("PYA-3", "Initech", None, "TRIAL", True),
], "with-active")
# No `active` column: PyAirbyte upserts (the stream has a primary key), and each new client
# gets the insert's defaults.
sync(clients(SCHEMA_WITHOUT_ACTIVE, ROWS_WITHOUT_ACTIVE), [
    ("PYA-1", "Acme Corp", None, "ACTIVE", True),
    ("PYA-2", "Globex", None, "INACTIVE", False),
    ("PYA-3", "Initech", None, "ACTIVE", True),
], "without-active")
print("PyAirbyte default path: 3 of 3 records landed, with and without an active column")
