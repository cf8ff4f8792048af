#!/usr/bin/env python3
"""A tiny Airbyte source for the PyAirbyte test: one stream of clients with camelCase columns
and a primary key (so PyAirbyte upserts), as a warehouse table would hold them. With
`{"without_active": true}` as its config, the table has `status` but no `active` column, as
most warehouses' tables do. With `{"accounts": true}`, one stream of product accounts keyed by
`id`, for Gainsight PX. With `{"customers": true}`, a customer master keyed by `name`, with a
custom field column named as the finance team wrote it ("Contract Value"), for Revnue."""
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


ACCOUNTS = [
    {"id": "PYA-1", "name": "Acme Corp", "plan": "enterprise", "numberOfEmployees": 1200, "renewalDate": "2027-03-31"},
    {"id": "PYA-2", "name": "Globex", "plan": "starter", "numberOfEmployees": None, "renewalDate": None},
    {"id": "PYA-3", "name": "Initech", "plan": None, "numberOfEmployees": 40, "renewalDate": "2026-12-31T00:00:00Z"},
]
ACCOUNTS_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "plan": {"type": ["null", "string"]},
        "numberOfEmployees": {"type": ["null", "integer"]},
        "renewalDate": {"type": ["null", "string"]},
    },
}

CUSTOMERS = [
    {"name": "Acme GmbH", "country": "Germany", "category": "Retail", "city": "Berlin", "Contract Value": 1500.5, "nda_signed_date": "2024-05-01"},
    {"name": "Globex", "country": "US", "category": None, "city": None, "Contract Value": None, "nda_signed_date": None},
    {"name": "Initrode", "country": "826", "category": "Services", "city": "London", "Contract Value": 99, "nda_signed_date": "2023-01-15"},
]
CUSTOMERS_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "country": {"type": ["null", "string"]},
        "category": {"type": ["null", "string"]},
        "city": {"type": ["null", "string"]},
        "Contract Value": {"type": ["null", "number"]},
        "nda_signed_date": {"type": ["null", "string"], "format": "date"},
    },
}


def option(name):
    """Whether the config passed with --config sets `name`."""
    if "--config" not in sys.argv:
        return False
    with open(sys.argv[sys.argv.index("--config") + 1]) as f:
        return bool(json.load(f).get(name))


def without_active():
    return option("without_active")


def emit(message):
    print(json.dumps(message), flush=True)


def main():
    command = sys.argv[1] if len(sys.argv) > 1 else "spec"
    if command == "spec":
        emit({"type": "SPEC", "spec": {"connectionSpecification": {"type": "object", "properties": {}}}})
    elif command == "check":
        emit({"type": "CONNECTION_STATUS", "connectionStatus": {"status": "SUCCEEDED"}})
    elif command == "discover" and option("customers"):
        emit({"type": "CATALOG", "catalog": {"streams": [{
            "name": "customers", "json_schema": CUSTOMERS_SCHEMA,
            "supported_sync_modes": ["full_refresh"], "source_defined_primary_key": [["name"]],
        }]}})
    elif command == "read" and option("customers"):
        for row in CUSTOMERS:
            emit({"type": "RECORD", "record": {"stream": "customers", "data": row, "emitted_at": 1763800000000}})
    elif command == "discover" and option("accounts"):
        emit({"type": "CATALOG", "catalog": {"streams": [{
            "name": "accounts", "json_schema": ACCOUNTS_SCHEMA,
            "supported_sync_modes": ["full_refresh"], "source_defined_primary_key": [["id"]],
        }]}})
    elif command == "read" and option("accounts"):
        for row in ACCOUNTS:
            emit({"type": "RECORD", "record": {"stream": "accounts", "data": row, "emitted_at": 1763800000000}})
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
