"""A version spelled as the CLI accepts it (``2``, ``v2``, ``V2``, ``02``) names one version over
HTTP too: one loaded model, one cache entry, one ``model_version`` in the prediction log, one
default; and loading it writes no MLflow progress bar into the server's log."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from tests._support.api_keys import issue_key
from tests._support.app_fixtures import make_settings, registry
from tests._support.cli import CliRunner, cli
from tests._support.registry import RegistryInfo
from tests._support.waiting import eventually
from trajops.serving import AppOptions, create_app, serve_in_thread
from trajops.store import Store
from trajops.store.models import PredictionRecord

__all__ = ["cli", "registry"]

pytestmark = pytest.mark.e2e

SPELLINGS = ("2", "v2", "V2", "02", "v002")
BODY = {"agents": [{"agent_id": "ped-1", "positions": [[0.4 * i, 0.1 * i] for i in range(8)]}]}


def test_the_cli_reads_every_spelling_as_the_version(
    registry: RegistryInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: CliRunner
) -> None:
    monkeypatch.setenv("TRAJOPS_TRACKING_URI", registry.uri)
    monkeypatch.setenv("TRAJOPS_HOME", str(tmp_path / "home"))
    for spelling in (*SPELLINGS, "challenger"):
        shown = cli("models", "show", spelling, "--json")
        assert shown.code == 0, shown.stderr
        assert shown.json()["version"] == 2, spelling


def test_http_reads_every_spelling_as_one_version(
    registry: RegistryInfo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # Unset, as for a server started outside the CLI: the pool turns MLflow's bars off itself.
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "true")
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    settings = make_settings(registry, tmp_path / "home")
    _, token = issue_key(settings, scopes="admin")
    app = create_app(settings, options=AppOptions(poll=False))
    capfd.readouterr()
    request_ids = []
    with (
        serve_in_thread(app) as url,
        httpx.Client(base_url=url, timeout=30, headers={"X-API-Key": token}) as http,
    ):
        answers = []
        for spelling in (*SPELLINGS, "challenger"):
            r = http.post("/v1/predict", json={**BODY, "model": spelling})
            assert r.status_code == 200, r.text
            answers.append(r.json())
            request_ids.append(r.headers["x-request-id"])
        assert {a["model"]["version"] for a in answers} == {"2"}
        assert [a["cached"] for a in answers] == [False] + [True] * len(SPELLINGS), (
            "one cache entry for every spelling and the alias"
        )
        loaded = [v["version"] for v in http.get("/v1/models").json()["versions"]]
        assert loaded.count("2") == 1, loaded

        for spelling, version in (("v2", "2"), ("V01", "1"), ("champion", "champion")):
            r = http.put("/v1/models/default", json={"model": spelling})
            assert r.status_code == 200, r.text
            assert r.json()["default"] == version
        default = http.post("/v1/predict", json=BODY).json()["model"]
        assert (default["version"], default["alias"]) == ("1", "champion")
        assert http.put("/v1/models/default", json={"model": "v7"}).status_code == 404

    store = Store(settings.resolved_database_url)
    try:

        def logged() -> list[str]:
            with store.session() as s:
                query = select(PredictionRecord.model_version).where(
                    PredictionRecord.request_id.in_(request_ids)
                )
                return list(s.execute(query).scalars())

        versions = eventually(logged, lambda rows: len(rows) == len(request_ids))
    finally:
        store.dispose()
    assert versions == ["2"] * len(request_ids)
    assert "Downloading artifacts" not in capfd.readouterr().err
