#!/usr/bin/env python3
"""A tiny Airbyte source for the PyAirbyte test: one stream of clients with camelCase columns
and a primary key (so PyAirbyte upserts), as a warehouse table would hold them. With
`{"without_active": true}` as its config, the table has `status` but no `active` column, as
most warehouses' tables do."""
import json
import sys

ROWS = [
    {"name": "Acme Corp", "externalId": "PYA-1", "status": "ACTIVE", "active": True, "npsScore": 40, "city": "Denver"},
    {"name": "Globex", "externalId": "PYA-2", "status": "ACTIVE", "active": True, "npsScore": -5, "siteUrl": "https://globex.example"},
    {"name": "Initech", "externalId": "PYA-3", "status": "TRIAL", "active": True},
]
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


ROWS_WITHOUT_ACTIVE = [
    {"name": "Acme Corp", "externalId": "PYA-1", "status": "ACTIVE"},
    {"name": "Globex", "externalId": "PYA-2", "status": "INACTIVE"},
    {"name": "Initech", "externalId": "PYA-3"},
]


def without_active():
    """Whether the config passed with --config asks for the table without `active`."""
    if "--config" not in sys.argv:
        return False
    with open(sys.argv[sys.argv.index("--config") + 1]) as f:
        return bool(json.load(f).get("without_active"))


def emit(message):
    print(json.dumps(message), flush=True)


def main():
    command = sys.argv[1] if len(sys.argv) > 1 else "spec"
    if command == "spec":
        emit({"type": "SPEC", "spec": {"connectionSpecification": {"type": "object", "properties": {}}}})
    elif command == "check":
        emit({"type": "CONNECTION_STATUS", "connectionStatus": {"status": "SUCCEEDED"}})
    elif command == "discover":
        schema = json.loads(json.dumps(SCHEMA))
        if without_active():
            del schema["properties"]["active"]
        emit({"type": "CATALOG", "catalog": {"streams": [{
            "name": "clients", "json_schema": schema,
            "supported_sync_modes": ["full_refresh"], "source_defined_primary_key": [["externalId"]],
        }]}})
    elif command == "read":
        for row in ROWS_WITHOUT_ACTIVE if without_active() else ROWS:
            emit({"type": "RECORD", "record": {"stream": "clients", "data": row, "emitted_at": 1763800000000}})
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
