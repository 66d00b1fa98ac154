"""Erasure, access and retention against real PostgreSQL, through the real Monitor."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select, text

from tests._support.services import shared_pg_available, temp_database
from trajops.monitoring.service import Monitor
from trajops.privacy.retention import purge
from trajops.privacy.subjects import erase_subject, export_subject
from trajops.security.audit import AuditRecord, append_audit, verify_chain
from trajops.settings import Settings
from trajops.store import Feedback, PredictionRecord
from trajops.store.models import AuditEntry

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not shared_pg_available(), reason="PostgreSQL at 127.0.0.1:5432 is not running"
    ),
]

AGENTS = ["ped-alice", "ped-bob", "ped-carol", "ped-dave"]


def _serve_three_requests(monitor: Monitor) -> None:
    rng = np.random.default_rng(0)
    for r in range(3):
        monitor.log_prediction(
            request_id=f"req-{r}", model_name="trajectory-forecaster", model_version="1",
            variant="default", agent_ids=AGENTS, scene_id="hotel",
            obs=rng.normal(size=(4, 8, 2)), pred=rng.normal(size=(4, 12, 2)),  # (N, T, 2)
            step_s=0.4, latency_ms=3.0,
        )  # fmt: skip
    monitor.writer.close()
    for r in range(3):
        for agent in ("ped-bob", "ped-carol"):
            monitor.feedback(request_id=f"req-{r}", truths=[(agent, [[0.0, 0.0]] * 4)])


def _dump(monitor: Monitor) -> str:
    """Every row of every table as JSON text."""
    with monitor.store.engine.connect() as conn:
        tables = [
            r[0]
            for r in conn.execute(text("select tablename from pg_tables where schemaname='public'"))
        ]
        return "\n".join(
            row[0]
            for t in tables
            for row in conn.execute(text(f'select row_to_json(t)::text from "{t}" t'))
        )


def test_erasure_removes_every_row_of_the_subject_and_only_those(tmp_path: Path) -> None:
    with temp_database() as url:
        settings = Settings(home=tmp_path, database_url=url)
        monitor = Monitor(settings).start()
        _serve_three_requests(monitor)
        append_audit(monitor.store, [AuditRecord(route="/v1/predict", method="POST", status=200)])
        bob = monitor.pseudonymise("ped-bob")

        access = export_subject(monitor.store, monitor.pseudonymise, "ped-bob")
        assert (len(access["predictions"]), len(access["feedback"])) == (3, 3)
        assert {p["agent_key"] for p in access["predictions"]} == {bob}
        json.dumps(access)  # JSON-ready

        dump = _dump(monitor)
        assert bob in dump and not any(a in dump for a in AGENTS)  # pseudonyms only, even before

        report = erase_subject(
            monitor.store, monitor.pseudonymise, "ped-bob", spool_dir=settings.spool_dir
        )
        assert (report.predictions, report.feedback, report.pending_spooled) == (3, 3, 0)
        with monitor.store.session() as s:
            by_agent = dict(
                s.execute(
                    select(PredictionRecord.agent_key, func.count()).group_by(
                        PredictionRecord.agent_key
                    )
                ).all()
            )
            fb_agents = set(s.scalars(select(Feedback.agent_key)))
            erasure = s.scalars(select(AuditEntry).where(AuditEntry.id == report.audit_id)).one()
        assert bob not in by_agent and len(by_agent) == 3 and set(by_agent.values()) == {3}
        assert fb_agents == {monitor.pseudonymise("ped-carol")}
        assert erasure.event == "privacy.erase"
        assert erasure.details == {
            "subject_ref": report.subject_ref,
            "predictions": 3,
            "feedback": 3,
            "experiment_shadow_predictions": 0,
            "experiment_exposures": 0,
        }

        dump = _dump(monitor)
        assert "ped-bob" not in dump and bob not in dump  # neither raw id nor the stored pseudonym
        assert verify_chain(monitor.store).ok
        after = export_subject(monitor.store, monitor.pseudonymise, "ped-bob")
        assert after["predictions"] == after["feedback"] == [] and len(after["erasures"]) == 1
        monitor.close()


def test_purge_keeps_recent_rows_and_a_verifiable_chain(tmp_path: Path) -> None:
    with temp_database() as url:
        settings = Settings(home=tmp_path, database_url=url)
        monitor = Monitor(settings).start()
        _serve_three_requests(monitor)
        append_audit(
            monitor.store, [AuditRecord(route="/v1/predict", method="POST", status=200)] * 4
        )
        with monitor.store.engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE predictions SET created_at = now() - interval '40 days' WHERE request_id = 'req-0'"
                )
            )
            conn.execute(
                text(
                    "UPDATE feedback SET created_at = now() - interval '40 days' WHERE request_id = 'req-0'"
                )
            )
        # Audit rows are kept for a year: none go, only old predictions and feedback.
        report = purge(
            monitor.store, older_than=timedelta(days=30), audit_older_than=timedelta(days=365),
        )  # fmt: skip
        assert (report.predictions, report.feedback, report.audit_rows) == (4, 2, 0)
        with monitor.store.session() as s:
            assert s.execute(select(func.count()).select_from(PredictionRecord)).scalar_one() == 8
        everything = purge(
            monitor.store, older_than=timedelta(days=30), audit_older_than=timedelta(microseconds=1)
        )
        assert everything.audit_rows == 5 and everything.anchor_id == 5
        result = verify_chain(monitor.store)
        assert (result.ok, result.checked, result.head_id) == (True, 1, 6)
        monitor.close()
