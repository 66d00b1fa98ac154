"""Coordinates encoded once by the API process (JsonText): stored as they are, the same text
the lists they replace were stored as, through every path a row takes to the store."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from sqlalchemy import insert

from tests._support.rows import prediction_rows
from trajops.security.anonymise import stored_coordinates
from trajops.store import PredictionRecord, Store
from trajops.store.json_text import JsonText, json_texts
from trajops.store.pipe_writer import encode_row
from trajops.store.writer import LogWriter

NUMPY = orjson.OPT_SERIALIZE_NUMPY


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7])
@pytest.mark.parametrize("t", [0, 1, 8])
def test_json_texts_encode_each_entry_of_the_first_axis(n: int, t: int) -> None:
    points = np.random.default_rng(n * 10 + t).normal(size=(n, t, 2)) * 1e3
    points[..., 0] = points[..., 0].round(2)
    if n and t:
        points[-1, -1, 1] = np.nan  # orjson writes null, as for a Python nan in a list
    texts = json_texts(points)
    assert texts == [orjson.dumps(p, option=NUMPY).decode() for p in points]
    assert all(type(text) is JsonText for text in texts)
    assert [orjson.loads(str(text)) for text in texts] == [
        orjson.loads(orjson.dumps(p.tolist())) for p in points
    ]


def test_json_texts_refuse_other_shapes() -> None:
    with pytest.raises(ValueError, match="3-D"):
        json_texts(np.zeros((8, 2)))


def _stored(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT inputs, outputs FROM predictions ORDER BY id").fetchall()


def _rows_both_ways() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The same rows with coordinates as nested lists (the API before) and as JSON text."""
    obs = np.random.default_rng(1).normal(size=(3, 8, 2)) * 100
    pred = np.random.default_rng(2).normal(size=(3, 12, 2)) * 100
    lists = prediction_rows(3)
    texts = prediction_rows(3)
    for i, (o, p) in enumerate(
        zip(stored_coordinates(obs, 3), stored_coordinates(pred, 3), strict=True)
    ):
        lists[i]["inputs"], lists[i]["outputs"] = (
            obs[i].round(3).tolist(),
            pred[i].round(3).tolist(),
        )
        texts[i]["inputs"], texts[i]["outputs"] = o, p
    return lists, texts


def test_json_text_is_stored_as_the_lists_were_on_every_sqlite_path(tmp_path: Path) -> None:
    lists, texts = _rows_both_ways()
    stores = {name: Store(f"sqlite:///{tmp_path / f'{name}.db'}") for name in
              ("lists", "bulk", "core", "pipe")}  # fmt: skip
    LogWriter(stores["lists"], tmp_path / "spool")._insert([("predictions", r) for r in lists])
    # the writer's driver-level executemany (bulk_insert)
    LogWriter(stores["bulk"], tmp_path / "spool")._insert([("predictions", r) for r in texts])
    with stores["core"].session() as session:  # a Core insert (PostgreSQL's path, fallbacks)
        session.connection().execute(insert(PredictionRecord.__table__), texts)
    # across the pipe: encoded by the API, decoded by the writer process
    pipe = LogWriter(stores["pipe"], tmp_path / "spool")
    decoded = [pipe.decode(encode_row("predictions", r)) for r in texts]
    assert all(type(row["inputs"]) is JsonText for _, row in decoded)
    pipe._insert(decoded)
    expected = _stored(tmp_path / "lists.db")
    assert expected[0][0].startswith("[[") and len(orjson.loads(expected[0][1])) == 12
    for name in ("bulk", "core", "pipe"):
        assert _stored(tmp_path / f"{name}.db") == expected, name
    with stores["pipe"].session() as session:  # and the ORM reads lists back
        stored = session.get(PredictionRecord, 1)
        assert stored is not None and stored.inputs == lists[0]["inputs"]
    for store in stores.values():
        store.dispose()


def test_spooled_json_text_and_older_spooled_lists_replay_alike(tmp_path: Path) -> None:
    lists, texts = _rows_both_ways()
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    writer = LogWriter(store, tmp_path / "spool")
    # an older version's spooled rows (arrays), then this version's (JSON text)
    writer._spool([("predictions", lists[0])])
    writer._spool([("predictions", texts[1]), ("predictions", texts[2])])
    assert writer.replay() == 3
    reference = Store(f"sqlite:///{tmp_path / 'ref.db'}")
    LogWriter(reference, tmp_path / "spool-ref")._insert([("predictions", r) for r in lists])
    assert _stored(tmp_path / "s.db") == _stored(tmp_path / "ref.db")
    store.dispose()
    reference.dispose()


def test_a_string_in_an_undeclared_json_column_stays_a_json_string(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    writer = LogWriter(store, tmp_path / "spool")
    line = orjson.dumps({"table": "alerts", "row": {"context": "[1, 2]"}})
    _, row = writer.decode(line)
    assert type(row["context"]) is str  # only declared columns carry JSON text
    store.dispose()
