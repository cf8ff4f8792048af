"""Checks every line the connector printed during the tests against Airbyte's official
AirbyteMessage model (airbyte-protocol-models-pdv2). Fails on any invalid line, and on no lines
at all, so it cannot pass by checking nothing."""

import pathlib
import sys
from collections import Counter

from airbyte_protocol.models import AirbyteMessage


def main(folder: str, require_every_type: bool = True) -> int:
    files = sorted(pathlib.Path(folder).glob("*.jsonl"))
    counts: Counter = Counter()
    failures = []
    for path in files:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                message = AirbyteMessage.model_validate_json(line)
                counts[message.type.value] += 1
            except Exception as error:  # noqa: BLE001 - report every kind of failure
                failures.append(f"{path.name}:{number}: {error}\n    {line[:300]}")
    total = sum(counts.values())
    print(f"validated {total} lines from {len(files)} connector runs against AirbyteMessage: "
          + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    for failure in failures:
        print("INVALID", failure)
    if failures:
        print(f"{len(failures)} invalid lines")
        return 1
    if total == 0:
        print("no lines were validated: the tests produced no connector output")
        return 1
    if not require_every_type:
        return 0
    for required in ("SPEC", "CONNECTION_STATUS", "DESTINATION_CATALOG", "STATE", "LOG", "TRACE"):
        if counts[required] == 0:
            print(f"no {required} message was validated")
            return 1
    return 0


if __name__ == "__main__":
    # --any: lines of whatever types (a fuzz run prints only STATE and LOG).
    sys.exit(main(sys.argv[1], "--any" not in sys.argv[2:]))
