"""`make faults`' table: each fault test's cost, in lost and doubled digests and recovery time.

FAULT_TABLE=var/faults.jsonl pytest -m faults
python -m testing.fault_table var/faults.jsonl
"""

import collections
import json
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Row:
    fault: str
    readers: int
    lost: int
    doubled: int
    copies_at_most: int
    recovered_after: float

    @classmethod
    def measure(
        cls, fault: str, expected: list[str], received: Iterable[str], fault_at: float
    ) -> "Row":
        counts = collections.Counter(received)
        return cls(
            fault=fault,
            readers=len(expected),
            lost=sum(1 for email in expected if counts[email] == 0),
            doubled=sum(1 for email in expected if counts[email] > 1),
            copies_at_most=max((counts[email] for email in expected), default=0),
            recovered_after=round(time.monotonic() - fault_at, 1),
        )


def append(row: Row) -> None:
    path = os.environ.get("FAULT_TABLE")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps(asdict(row)) + "\n")


def markdown(rows: list[Row]) -> str:
    lines = [
        "| fault | readers | lost | doubled | most copies | all delivered after |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.fault} | {r.readers} | {r.lost} | {r.doubled} | {r.copies_at_most} "
        f"| {r.recovered_after} s |"
        for r in rows
    ]
    return "\n".join(lines)


def main() -> None:
    path = Path(sys.argv[1])
    rows = [Row(**json.loads(line)) for line in path.read_text().splitlines() if line]
    print(markdown(rows))


if __name__ == "__main__":
    main()
