"""The service against real PostgreSQL: prediction log -> feedback -> audit chain, no raw ids;
and a database that is down at startup (the service starts, spools, migrates and replays)."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, text

from tests._support.api_keys import issue_key
from tests._support.registry import build_registry
from tests._support.services import private_postgres, shared_pg_available, temp_database
from trajops.security.audit import verify_chain
from trajops.serving import AppOptions, create_app, serve_in_thread
from trajops.settings import Settings
from trajops.store import Store
from trajops.store.lifecycle import MigrationConfig
from trajops.store.models import AuditEntry, PredictionRecord

pytestmark = pytest.mark.integration

MODEL = "trajectory-forecaster"
RAW_IDS = ["pg-subject-Hk2-a", "pg-subject-Hk2-b"]
SCENE = "pg-scene-Hk2-private"


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("pg-registry")
    return build_registry(root).uri


def body(offset: float = 0.0) -> dict[str, object]:
    agents = [
        {"agent_id": a, "positions": [[0.4 * t + offset, float(i)] for t in range(8)]}
        for i, a in enumerate(RAW_IDS)
    ]
    return {"scene_id": SCENE, "agents": agents}


def wait_for(predicate: object, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def all_rows_text(store: Store) -> str:
    with store.engine.connect() as conn:
        return "\n".join(
            repr(conn.execute(text(f"SELECT * FROM {table}")).all())
            for table in ("predictions", "feedback", "audit_log")
        )


def test_predict_feedback_audit_on_postgres(
    tracking_uri: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if not shared_pg_available():
        pytest.skip("no PostgreSQL at 127.0.0.1:5432")
    caplog.set_level(logging.DEBUG, logger="trajops")
    with temp_database() as url:
        settings = Settings(
            home=tmp_path / "home",
            tracking_uri=tracking_uri,
            database_url=url,  # type: ignore[arg-type]
            log_flush_interval_s=0.05,
        )
        key_id, token = issue_key(settings, scopes="predict,feedback")
        app = create_app(settings, options=AppOptions(poll=False))
        raw = json.dumps(body()).encode()
        with (
            serve_in_thread(app) as base,
            httpx.Client(base_url=base, headers={"X-API-Key": token}, timeout=30) as http,
        ):
            r = http.post("/v1/predict", content=raw)
            assert r.status_code == 200, r.text
            request_id = r.json()["request_id"]
            truth = [[p[0] + 0.6, p[1] + 0.8] for p in r.json()["predictions"][1]["positions"]]
            feedback = {"request_id": request_id, "agent_id": RAW_IDS[1], "positions": truth}
            deadline = time.monotonic() + 10
            while (scored := http.post("/v1/feedback", json=feedback)).status_code == 404:
                assert time.monotonic() < deadline, "prediction never logged"
                time.sleep(0.05)
            assert scored.status_code == 200, scored.text
            assert scored.json()["ade"] == pytest.approx(1.0, abs=1e-3)
            assert http.get("/v1/models", headers={"X-API-Key": "tjo_bad"}).status_code == 401
            assert http.get("/readyz").json()["checks"]["store"]["ok"] is True
        # The lifespan flushed the writer on shutdown: everything is in PostgreSQL now.
        store = Store(url)
        try:
            with store.session() as s:
                preds = s.scalars(
                    select(PredictionRecord).where(PredictionRecord.request_id == request_id)
                ).all()
                audit = s.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
            assert len(preds) == 2 and {p.model_version for p in preds} == {"1"}
            assert preds[0].inputs and len(preds[0].outputs) == 12
            result = verify_chain(store)
            assert result.ok and result.checked == len(audit) >= 4, result
            by_route = {(a.route, a.status) for a in audit}
            # the refused key is one auth.failures row, written when the lifespan ended
            assert {("/v1/predict", 200), ("/v1/feedback", 200), ("*", 401)} <= by_route
            assert any(a.event == "auth.failures" and a.details["count"] == 1 for a in audit)
            predict_row = next(a for a in audit if a.route == "/v1/predict")
            assert predict_row.payload_digest == hashlib.sha256(raw).hexdigest()
            assert (predict_row.key_id, predict_row.model_version) == (key_id, "1")
            assert predict_row.request_id == request_id
            dumped = all_rows_text(store)
            with store.session() as s:
                assert s.scalar(select(func.count()).select_from(AuditEntry)) == len(audit)
        finally:
            store.dispose()
    for secret in [*RAW_IDS, SCENE, "127.0.0.1"]:
        assert secret not in dumped, f"raw identifier {secret!r} stored in PostgreSQL"
        assert secret not in caplog.text, f"raw identifier {secret!r} logged"


@pytest.mark.slow
def test_store_down_at_startup_spools_then_replays(tracking_uri: str, tmp_path: Path) -> None:
    with private_postgres() as pg:
        pg.stop()
        settings = Settings(
            home=tmp_path / "home",
            tracking_uri=tracking_uri,
            database_url=pg.url,  # type: ignore[arg-type]
            auth_enabled=False,  # keys live in the store that is down; logging is the point
            log_flush_interval_s=0.05,
        )
        options = AppOptions(
            poll=False, migrations=MigrationConfig(first_delay_s=0.2, max_delay_s=0.5)
        )
        app = create_app(settings, options=options)
        with serve_in_thread(app) as base, httpx.Client(base_url=base, timeout=30) as http:
            ready = http.get("/readyz")
            assert ready.status_code == 200, "a down store never makes the service unready"
            store_check = ready.json()["checks"]["store"]
            assert store_check["ok"] is False and store_check["status"] == "degraded"
            ids = [http.post("/v1/predict", json=body(k)).json()["request_id"] for k in range(3)]
            wait_for(
                lambda: http.get("/metrics").text.count("trajops_log_spool_backlog_rows 0.0") == 0
            )
            pg.start()
            wait_for(lambda: http.get("/readyz").json()["checks"]["store"]["ok"])
            store = Store(pg.url, run_migrations=False)
            try:

                def replayed() -> bool:
                    with store.session() as s:
                        n = s.scalar(
                            select(func.count()).where(PredictionRecord.request_id.in_(ids))
                        )
                    return n == 3 * len(RAW_IDS)

                wait_for(replayed)
                assert verify_chain(store).ok
                with store.session() as s:
                    audited = s.scalar(select(func.count()).where(AuditEntry.request_id.in_(ids)))
                assert audited == 3, "audit rows of the outage were replayed too"
            finally:
                store.dispose()
