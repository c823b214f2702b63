"""Every CSV the project writes is safe to open in a spreadsheet (subscriptions.csvfiles)."""

import io
import re
from pathlib import Path

import pytest

from subscriptions import csvfiles

ROOT = Path(__file__).resolve().parents[2]
# The project's own code; a CSV written anywhere in it must go through subscriptions.csvfiles.
PACKAGES = [
    "config",
    "newsletter",
    "delivery",
    "subscriptions",
    "dashboard",
    "demo_checkout",
    "bench",
]
CSV_WRITER = re.compile(
    r"\bcsv\s*\.\s*(?:writer|DictWriter)\b"
    r"|from\s+csv\s+import\s+[^\n]*\b(?:writer|DictWriter)\b"
)


def test_every_csv_writer_is_the_safe_one():
    writers = [
        str(path.relative_to(ROOT))
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "/tests/" not in str(path) and CSV_WRITER.search(path.read_text())
    ]
    assert writers == ["subscriptions/csvfiles.py"]


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+33 1 23 45 67 89", "'+33 1 23 45 67 89"),
        ("-2", "'-2"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("Ada", "Ada"),
        ("a=b", "a=b"),
        ("", ""),
        (-3, -3),
        (-2.5, -2.5),
        (None, None),
    ],
)
def test_text_that_would_start_a_formula_is_written_as_text(cell, written):
    assert csvfiles.safe_cell(cell) == written


def test_the_writer_escapes_every_cell_of_every_row():
    out = io.StringIO()
    writer = csvfiles.writer(out)
    writer.writerow(["=A1", 1])
    writer.writerows([["@B2", -1], ["ok", None]])
    assert out.getvalue().splitlines() == ["'=A1,1", "'@B2,-1", "ok,"]
