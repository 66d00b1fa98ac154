"""The log's line format, shared by the write-ahead log, the spool and their readers.

A line holds one row (``{"table": ..., "row": {...}}``, :func:`encode_row`), or the rows of one
request column by column (``{"table": ..., "common": {...}, "columns": {...}}``,
:func:`encode_rows`: a prediction row per agent, encoded once with its arrays).
:func:`decode_line` reads either back into rows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

Row = tuple[str, dict[str, Any]]
"""(table name, column values)."""

Columns = Mapping[str, Any]
"""Column name to one value per row: a sequence, or a NumPy array along its first axis."""


def encode_row(table: str, row: dict[str, Any]) -> bytes:
    """One row as a log line (the write-ahead log's and the spool's format):
    ``{"table": ..., "row": ...}\\n``."""
    return orjson.dumps(
        {"table": table, "row": row}, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE
    )


def encode_rows(table: str, common: dict[str, Any], columns: Columns) -> bytes:
    """Rows that share ``common`` values as one log line, column by column:
    ``{"table": ..., "common": {...}, "columns": {name: [one value per row]}}\n``.

    The rows of one request (a prediction row per agent) are encoded once, with their arrays
    as arrays (NumPy columns: one entry per row along the first axis), instead of one line
    per row; the consumer expands them (:func:`expand_rows`).
    """
    return orjson.dumps(
        {"table": table, "common": common, "columns": columns},
        option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE,
    )


def column_rows(columns: Columns) -> int:
    """Rows in ``columns`` (every column must have as many; raises ``ValueError`` if not)."""
    lengths = {len(values) for values in columns.values()}
    if len(lengths) != 1:
        raise ValueError(f"columns of unequal or no length: {sorted(lengths)}")
    return lengths.pop()


def expand_rows(common: dict[str, Any], columns: Columns) -> list[dict[str, Any]]:
    """The rows of :func:`encode_rows`' ``common`` and ``columns``, one dict per row."""
    names = list(columns)
    return [
        {**common, **dict(zip(names, values, strict=True))}
        for values in zip(*(columns[name] for name in names), strict=True)
    ]


def decode_line(line: str | bytes, datetimes: Mapping[str, Sequence[str]]) -> list[Row]:
    """A log line back into its rows, with their datetimes: one row (``{"table", "row"}``)
    or the rows of one request (``{"table", "common", "columns"}``, :func:`encode_rows`).

    Args:
        datetimes: per known table, its datetime columns (ISO text in the line).

    Raises:
        KeyError: an unknown table, or a field missing; ValueError: not JSON, or ragged
            columns; TypeError: rows that are not objects.
    """
    try:
        item = orjson.loads(line)
    except orjson.JSONDecodeError:  # NaN literals or huge integers written by json.dumps
        item = json.loads(line)
    name = item["table"]
    columns_of = datetimes[name]
    if "columns" in item:
        common, columns = item["common"], item["columns"]
        if not isinstance(common, dict) or not isinstance(columns, dict):
            raise TypeError(f"rows of {name!r} are not objects")
        column_rows(columns)
        _parse_datetimes(common, columns_of)
        return [(name, row) for row in expand_rows(common, columns)]
    row = item["row"]  # a fresh dict of the parser's: no copy needed
    if not isinstance(row, dict):
        raise TypeError(f"row of {name!r} is not an object")
    _parse_datetimes(row, columns_of)
    return [(name, row)]


def _parse_datetimes(row: dict[str, Any], columns: Sequence[str]) -> None:
    for col in columns:
        value = row.get(col)
        if isinstance(value, str):
            row[col] = datetime.fromisoformat(value)
