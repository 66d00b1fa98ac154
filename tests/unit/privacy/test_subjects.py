"""The data map covers the schema; erasure, access and purge reach every subject table."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from trajops.privacy import Pseudonymiser
from trajops.privacy.pseudonym import unit_hash
from trajops.privacy.retention import purge
from trajops.privacy.subjects import (
    NOT_SUBJECT_COLUMNS,
    SUBJECT_TABLES,
    erase_subject,
    export_subject,
)
from trajops.security._time import utcnow
from trajops.store import Store
from trajops.store.models import (
    Base,
    Experiment,
    ExperimentExposure,
    Feedback,
    PredictionRecord,
    ShadowPrediction,
)

PSEUDO = Pseudonymiser(b"k" * 32)
SALT = "s" * 16


def test_every_pseudonym_column_of_the_schema_is_in_the_data_map() -> None:
    """A new table or column holding a pseudonym fails here until the map says what it is."""
    unmapped = [
        f"{table.name}.{column.name}"
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if column.name.endswith("_key")
        and f"{table.name}.{column.name}" not in NOT_SUBJECT_COLUMNS
        and table.name not in SUBJECT_TABLES
    ]
    assert unmapped == []
    agent_tables = {t.name for t in Base.metadata.sorted_tables if "agent_key" in t.columns}
    assert agent_tables <= set(SUBJECT_TABLES)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'ops.db'}")


def _seed(store: Store, agent: str, *, request: str, days_old: int = 0) -> None:
    at = utcnow() - timedelta(days=days_old)
    key = PSEUDO(agent)
    with store.session() as s:
        s.add(
            PredictionRecord(
                request_id=request,
                created_at=at,
                model_name="m",
                model_version="1",
                variant="default",
                agent_key=key,
                inputs=[],
                outputs=[],
                step_s=0.4,
                latency_ms=1.0,
            )
        )
        s.add(
            Feedback(
                request_id=request,
                agent_key=key,
                created_at=at,
                model_version="1",
                variant="default",
                positions=[],
                n_steps=1,
                ade=0.1,
                fde=0.2,
            )
        )
        s.add(
            ShadowPrediction(
                experiment_id="e1",
                arm="treatment",
                request_id=request,
                agent_key=key,
                created_at=at,
                model_version="2",
                outputs=[],
            )
        )
        s.add(
            ExperimentExposure(
                experiment_id="e1",
                arm="control",
                request_id=request,
                unit_key=unit_hash(SALT, agent),
                created_at=at,
                latency_ms=1.0,
            )
        )


def _counts(store: Store) -> dict[str, int]:
    with store.session() as s:
        return {
            t: int(s.scalar(select(func.count()).select_from(m)) or 0)
            for t, (m, _) in SUBJECT_TABLES.items()
        }


def test_erase_and_export_reach_every_subject_table(store: Store) -> None:
    with store.session() as s:
        s.add(Experiment(id="e1", name="x", unit="agent", salt=SALT, spec={}))
    _seed(store, "ped-bob", request="r1")
    _seed(store, "ped-alice", request="r2")
    access = export_subject(store, PSEUDO, "ped-bob")
    assert {t: len(access[t]) for t in SUBJECT_TABLES} == dict.fromkeys(SUBJECT_TABLES, 1)
    report = erase_subject(store, PSEUDO, "ped-bob")
    assert (report.predictions, report.feedback) == (1, 1)
    assert report.experiment_rows == {
        "experiment_shadow_predictions": 1,
        "experiment_exposures": 1,
    }
    assert _counts(store) == dict.fromkeys(SUBJECT_TABLES, 1)  # only alice's rows are left
    after = export_subject(store, PSEUDO, "ped-bob")
    assert all(after[t] == [] for t in SUBJECT_TABLES) and len(after["erasures"]) == 1


def test_purge_reaches_every_subject_table(store: Store) -> None:
    _seed(store, "old", request="r-old", days_old=40)
    _seed(store, "new", request="r-new")
    report = purge(store, older_than=timedelta(days=30), audit_older_than=timedelta(days=365))
    assert (report.predictions, report.feedback, report.experiment_rows) == (1, 1, 2)
    assert _counts(store) == dict.fromkeys(SUBJECT_TABLES, 1)
