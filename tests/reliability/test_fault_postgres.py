"""PostgreSQL stopped and restarted under steady load: no 5xx, and afterwards every served
prediction and its audit record is in the database.

The replica's operational store is a private PostgreSQL server; it is stopped (immediate mode:
connections die mid-flight) while requests flow and started again. Meanwhile the log writer
spools to disk; after recovery it replays, and the row counts equal the requests served.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests._support.faults import stored_counts
from tests._support.load import SteadyLoad, served_ids, server_errors
from tests._support.registry import build_registry
from tests._support.replica import service_settings, serving
from tests._support.services import PG_BIN, private_postgres
from tests._support.waiting import eventually
from trajops.serving import AppOptions

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(not (PG_BIN / "pg_ctl").exists(), reason="PostgreSQL 15 is not installed"),
]


def test_postgres_stopped_and_restarted_under_load(tmp_path: Path) -> None:
    registry = build_registry(tmp_path / "registry")
    with private_postgres() as pg:
        settings = service_settings(
            tmp_path / "home",
            tracking_uri=registry.uri,
            database_url=pg.url,
            api_key_cache_s=300,
        )
        with serving(settings, AppOptions(poll=False, freeze_gc=False)) as (url, http):
            key = {"X-API-Key": http.headers["X-API-Key"]}
            with SteadyLoad(url, headers=key, rate_per_s=100) as load:
                load.wait_requests(100)
                pg.stop()
                stopped_at = time.monotonic()
                load.wait_requests(200)
                ready = http.get("/readyz")
                pg.start()
                restarted_at = time.monotonic()
                load.wait_requests(100)
            outcomes = load.outcomes()
            ids = served_ids(outcomes)
            counts = eventually(
                lambda: stored_counts(pg.url, ids),
                lambda c: c == (len(ids), len(ids)),
                timeout_s=30,
                every_s=0.5,
            )
            store_after = http.get("/readyz").json()["checks"]["store"]

    assert len(outcomes) >= 400, "the load must be real"
    assert not server_errors(outcomes), server_errors(outcomes)[:3]
    failed = [o for o in outcomes if o.status != 200]
    assert not failed, f"{len(failed)} requests failed: {failed[:3]}"
    assert len([o for o in outcomes if stopped_at < o.started < restarted_at]) >= 150
    assert ready.status_code == 200, "logs spool while the store is down: still ready"
    assert ready.json()["checks"]["store"]["ok"] is False
    assert counts == (len(ids), len(ids)), "every prediction and audit row reached the store"
    assert store_after["ok"] is True
