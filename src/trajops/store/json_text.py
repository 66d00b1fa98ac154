"""JSON column values that arrive encoded: stored as they are, never parsed and encoded again.

The prediction log's coordinates ((T, 2) per agent) are encoded once, in the API process,
straight from the numpy array. As JSON arrays inside a log line they had cost the writer
process a parse into Python lists of floats and, at insert, SQLAlchemy's JSON type encoding
those lists again (``bench/log_writer.py``, ``pipeline``); as :class:`JsonText` they cross the
pipe as one JSON string each, and the store's JSON serializer (:mod:`trajops.store.db`) writes
the text as it is.

Which columns may carry JSON text is declared on the column (``info={JSON_TEXT: True}``, only
where a value is never a bare JSON string), so a log line stays unambiguous: in such a column,
a string is the column's JSON text, anything else a value to encode (rows spooled by earlier
versions carry arrays).
"""

from __future__ import annotations

import numpy as np
import orjson

_NUMPY = orjson.OPT_SERIALIZE_NUMPY

JSON_TEXT = "json_text"
"""``Column.info`` key of the columns whose log-line values may be :class:`JsonText`."""


class JsonText(str):
    """A JSON column's value already encoded as JSON text; the store writes it unchanged."""

    __slots__ = ()


def json_texts(array: np.ndarray) -> list[JsonText]:
    """Each entry along the first axis of ``array`` as JSON text.

    ``array`` is numeric and 3-D, e.g. ``(N, T, 2)`` coordinates. It is encoded once and the
    text cut between entries: iterating the array makes a numpy view per entry, and encoding
    the views one by one cost a one-agent request 28k more instructions in the API process
    (callgrind) than this.
    """
    if array.ndim != 3:
        raise ValueError(f"expected a 3-D array, got shape {array.shape}")
    if len(array) == 0:
        return []
    text = orjson.dumps(array, option=_NUMPY).decode()[1:-1]
    if len(array) == 1:
        return [JsonText(text)]
    # "[[a,b],[c,d]],[[e,f],[g,h]]": numbers and nulls only, so "]],[[" is only ever found
    # between two entries of the first axis.
    parts = text.split("]],[[")
    if len(parts) != len(array):  # entries without points: no boundary to cut at
        return [JsonText(orjson.dumps(item, option=_NUMPY), "utf-8") for item in array]
    last = len(parts) - 1
    return [
        JsonText(("[[" if i else "") + part + ("]]" if i < last else ""))
        for i, part in enumerate(parts)
    ]
