"""Online accuracy from the ``feedback`` table on real stores (SQLite, and PostgreSQL where it
runs): ADE/FDE and miss rate per version and variant, per scene of the scored prediction."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, event

from tests._support.rows import prediction_rows
from tests._support.services import shared_pg_available, temp_database
from trajops.errors import NotFoundError, ValidationError
from trajops.evaluation.metrics import MISS_THRESHOLD_M
from trajops.monitoring.accuracy import (
    PredictionNotStored,
    grouping,
    online_performance,
    record_feedback,
    record_feedback_many,
)
from trajops.store import PredictionRecord, Store
from trajops.store.models import Feedback

HOUR = timedelta(hours=1)


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "postgresql",
            marks=[
                pytest.mark.integration,
                pytest.mark.skipif(not shared_pg_available(), reason="no PostgreSQL on :5432"),
            ],
        ),
    ]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 'ops.db'}")
        yield s
        s.dispose()
        return
    with temp_database() as url:
        s = Store(url)
        yield s
        s.dispose()


def _predictions(store: Store, scenes: list[str | None], *, version: str = "1") -> None:
    """One stored forecast per scene given: request ``{version}-{i}``, agent ``a{i}``, walking
    from (0, 8) one metre a step along y."""
    rows = prediction_rows(len(scenes), prefix=f"{version}-", version=version)
    with store.session() as session:
        session.add_all(
            PredictionRecord(**{**row, "scene_key": scene})
            for row, scene in zip(rows, scenes, strict=True)
        )


def _score(store: Store, i: int, off: float, *, version: str = "1") -> None:
    """Feedback for agent ``i`` of ``version``: ``off`` metres beside the forecast at every step
    (ADE = FDE = ``off``)."""
    truth = [[off, 8.0 + t] for t in range(12)]
    record_feedback(store, request_id=f"{version}-{i}", agent_key=f"a{i}", positions=truth)


def test_miss_rate_per_version_and_keys_unchanged(store: Store) -> None:
    _predictions(store, ["plaza", "plaza", None, None])
    _predictions(store, ["plaza"], version="2")
    for i, off in enumerate([0.5, 3.0, MISS_THRESHOLD_M, 2.5]):  # exactly 2 m is no miss
        _score(store, i, off)
    _score(store, 0, 1.0, version="2")
    v1, v2 = online_performance(store, window=HOUR)
    assert set(v1) == {"model_version", "variant", "n", "ade", "fde", "miss_rate"}
    assert (v1["model_version"], v1["variant"], v1["n"]) == ("1", "default", 4)
    assert v1["ade"] == pytest.approx(2.0) and v1["fde"] == pytest.approx(2.0)
    assert v1["miss_rate"] == pytest.approx(0.5)
    assert (v2["model_version"], v2["n"], v2["miss_rate"]) == ("2", 1, 0.0)


def test_by_scene_groups_by_the_scored_predictions_scene(store: Store) -> None:
    _predictions(store, ["plaza", "plaza", "station", None, None])
    for i, off in enumerate([0.5, 3.0, 1.0, 4.0, 0.2]):
        _score(store, i, off)
    rows = online_performance(store, window=HOUR, by="scene")
    assert [(r["model_version"], r["scene_key"], r["n"]) for r in rows] == [
        ("1", "plaza", 2),
        ("1", "station", 1),
        ("1", None, 2),  # sent without a scene: one group, last
    ]
    plaza, station, unknown = rows
    assert plaza["ade"] == pytest.approx(1.75) and plaza["miss_rate"] == pytest.approx(0.5)
    assert station["miss_rate"] == 0.0 and unknown["miss_rate"] == pytest.approx(0.5)
    assert unknown["fde"] == pytest.approx(2.1)
    # the scene split adds up to the per-version row
    (overall,) = online_performance(store, window=HOUR)
    assert overall["n"] == sum(r["n"] for r in rows)
    assert overall["ade"] == pytest.approx(sum(r["ade"] * r["n"] for r in rows) / overall["n"])


def test_by_scene_keeps_feedback_whose_prediction_is_gone(store: Store) -> None:
    """Feedback outlives an erased or expired prediction row: it is counted, with no scene."""
    _predictions(store, ["plaza", "plaza"])
    _score(store, 0, 0.5)
    _score(store, 1, 3.0)
    with store.session() as session:
        session.execute(delete(PredictionRecord).where(PredictionRecord.request_id == "1-1"))
    rows = online_performance(store, window=HOUR, by="scene")
    assert [(r["scene_key"], r["n"], r["miss_rate"]) for r in rows] == [
        ("plaza", 1, 0.0),
        (None, 1, 1.0),
    ]


def test_window_and_empty_store(store: Store) -> None:
    assert online_performance(store, window=HOUR, by="scene") == []
    _predictions(store, ["plaza"])
    _score(store, 0, 0.5)
    later = datetime.now(UTC) + 2 * HOUR
    assert online_performance(store, window=HOUR, now=later, by="scene") == []
    with store.session() as session:
        session.execute(delete(Feedback))
    assert online_performance(store, window=HOUR) == []


def test_feedback_score_carries_the_scene(store: Store) -> None:
    _predictions(store, ["plaza", None])
    scored = record_feedback(
        store, request_id="1-0", agent_key="a0", positions=[[0.0, 8.0], [0.0, 9.0]]
    )
    assert (scored.scene_key, scored.n_steps, scored.ade) == ("plaza", 2, 0.0)
    bare = record_feedback(store, request_id="1-1", agent_key="a1", positions=[[0.0, 8.0]])
    assert bare.scene_key is None


def test_grouping_accepts_scene_only() -> None:
    assert grouping(None) is None
    assert grouping("scene") == "scene"
    for bad in ("Scene", "agent", ""):
        with pytest.raises(ValidationError, match=r"invalid by") as caught:
            grouping(bad)
        assert caught.value.details == [{"loc": ["by"], "msg": "expected one of scene"}]


def test_rows_committed_during_the_read_are_a_wait_not_a_404(store: Store) -> None:
    """A request's rows committed by the log writer right after the feedback's first read: the
    feedback sees all of them or none (PredictionNotStored: the route waits), never a request
    without its agents (the 404 for agent 0 that CI once saw on SQLite, whose reads run
    outside a transaction)."""
    rows = prediction_rows(3, prefix="q")
    rows = [{**r, "request_id": "q", "agent_key": f"a{i}"} for i, r in enumerate(rows)]
    committed = False

    def commit_the_request(conn: object, cursor: object, statement: str, *_: object) -> None:
        nonlocal committed
        if not committed and statement.lstrip().upper().startswith("SELECT"):
            committed = True
            with store.session() as writer:  # another connection, committed at once
                writer.add_all(PredictionRecord(**r) for r in rows)

    truths = [(f"a{i}", [[0.0, 8.0]]) for i in range(3)]
    event.listen(store.engine, "after_cursor_execute", commit_the_request)
    try:
        with pytest.raises(PredictionNotStored):
            record_feedback_many(store, request_id="q", truths=truths)
    finally:
        event.remove(store.engine, "after_cursor_execute", commit_the_request)
    assert committed
    scored = record_feedback_many(store, request_id="q", truths=truths)  # the route's retry
    assert [s.ade for s in scored] == [0.0, 0.0, 0.0]
    with pytest.raises(NotFoundError, match="no prediction for agent 1"):
        record_feedback_many(store, request_id="q", truths=[("a0", [[0.0, 8.0]]), ("zz", [])])
