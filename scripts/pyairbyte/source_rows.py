#!/usr/bin/env python3
"""A tiny Airbyte source for the PyAirbyte tests: it emits the streams its config describes,
`{"streams": [{"name", "primary_key": [...], "schema": {...}, "rows": [...]}]}`, each with its
primary key (so PyAirbyte upserts), as warehouse tables would hold them. Each destination's
`pyairbyte.py` passes its own rows."""
import json
import sys


def config():
    if "--config" not in sys.argv:
        return {"streams": []}
    with open(sys.argv[sys.argv.index("--config") + 1]) as f:
        return json.load(f)


def emit(message):
    print(json.dumps(message), flush=True)


def main():
    command = sys.argv[1] if len(sys.argv) > 1 else "spec"
    if command == "spec":
        emit({"type": "SPEC", "spec": {"connectionSpecification": {"type": "object", "properties": {}}}})
    elif command == "check":
        emit({"type": "CONNECTION_STATUS", "connectionStatus": {"status": "SUCCEEDED"}})
    elif command == "discover":
        emit({"type": "CATALOG", "catalog": {"streams": [{
            "name": s["name"], "json_schema": s["schema"], "supported_sync_modes": ["full_refresh"],
            "source_defined_primary_key": [[key] for key in s["primary_key"]],
        } for s in config()["streams"]]}})
    elif command == "read":
        for stream in config()["streams"]:
            for row in stream["rows"]:
                emit({"type": "RECORD", "record": {"stream": stream["name"], "data": row, "emitted_at": 1763800000000}})
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
