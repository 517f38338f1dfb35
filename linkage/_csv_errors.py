"""Arrow CSV errors in words that never quote the file's content.

pyarrow's CSV messages end with the offending row or value (``Expected 1 columns, got 2:
<the row>``, ``invalid value '<the value>'``): record data, which must never reach a
terminal or a log. :func:`csv_problem` says what is wrong, and where when it can find it.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

_ROW_COUNT_RE = re.compile(r"Expected (\d+) columns, got (\d+)")
_COLUMN_RE = re.compile(r"In CSV column #(\d+)")
_CONVERSION_RE = re.compile(r"conversion error to (\w+)")


def csv_problem(exc: BaseException, path: str | Path | None = None, delimiter: str = ",") -> str:
    """What is wrong with a CSV file, from a pyarrow CSV error, in words that never quote the
    file's content (Arrow's messages end with the offending row or value: record data).
    With ``path``, a wrong field count is located by a slow scan (error path only): the
    1-based data row (header excluded)."""
    msg = str(exc)
    m = _ROW_COUNT_RE.search(msg)
    if m:
        want, got = int(m.group(1)), int(m.group(2))
        row = _first_row_with_fields(Path(path), delimiter, want) if path is not None else None
        where = f"row {row}: " if row is not None else ""
        return f"malformed CSV: {where}{got} fields where the header has {want}"
    if "utf8" in msg.lower() or "utf-8" in msg.lower():
        return "not valid UTF-8 text (is it a CSV file? save it as UTF-8)"
    if "straddl" in msg:
        return "malformed CSV: a field too large to read (an unclosed quote?)"
    col = _COLUMN_RE.search(msg)
    conv = _CONVERSION_RE.search(msg)
    if conv:
        where = f" in column {int(col.group(1)) + 1}" if col else ""
        return f"a value{where} is not a valid {conv.group(1)}"
    return "malformed CSV"


def _first_row_with_fields(path: Path, delimiter: str, want: int) -> int | None:
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as fh:
            for i, row in enumerate(csv.reader(fh, delimiter=delimiter)):
                if row and len(row) != want and i > 0:
                    return i  # data rows count from 1, the header is line 0
    except (OSError, csv.Error):
        return None
    return None
