"""`POST /v1/batch-jobs` and `GET /v1/batch-jobs/{id}` on a real uvicorn server (admin scope)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests._support.api_keys import issue_key
from tests._support.batch import cv_registry, walkers
from trajops.data import write_tracks
from trajops.serving import AppOptions, create_app, serve_in_thread
from trajops.settings import Settings


@dataclass
class Api:
    http: httpx.Client
    predict_key: str
    root: Path


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    base = tmp_path_factory.mktemp("batch-api")
    uri = cv_registry(base / "registry")
    root = base / "batch"
    write_tracks(walkers(scenes=2, agents=3, steps=10), root / "in" / "tracks.parquet")
    settings = Settings(home=base / "home", tracking_uri=uri, batch_root=root)
    _, admin = issue_key(settings, scopes="admin")
    _, predict = issue_key(settings, scopes="predict", name="predict-only")
    app = create_app(settings, options=AppOptions(poll=False))
    with (
        serve_in_thread(app) as url,
        httpx.Client(base_url=url, timeout=30, headers={"X-API-Key": admin}) as http,
    ):
        yield Api(http=http, predict_key=predict, root=root)


def test_submit_and_poll_a_job(api: Api) -> None:
    r = api.http.post("/v1/batch-jobs", json={"input": "in", "output": "out/one", "workers": 1})
    assert r.status_code == 422  # unknown field: the body schema forbids extras
    r = api.http.post("/v1/batch-jobs", json={"input": "in", "output": "out/one"})
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["state"] == "queued"
    deadline = time.monotonic() + 120
    while job["state"] not in {"succeeded", "failed"} and time.monotonic() < deadline:
        time.sleep(0.5)
        job = api.http.get(f"/v1/batch-jobs/{job['id']}").json()
    assert job["state"] == "succeeded", job
    assert job["totals"]["windows"] == 2 * 3 * 3
    assert (api.root / "out" / "one" / "manifest.json").is_file()


def test_paths_outside_the_root_and_unknown_jobs(api: Api) -> None:
    r = api.http.post("/v1/batch-jobs", json={"input": "../..", "output": "out/x"})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "validation_error"
    assert str(api.root) not in r.text  # no server paths in errors
    assert api.http.get(f"/v1/batch-jobs/{'0' * 32}").status_code == 404


@pytest.mark.parametrize(
    ("body", "msg"),
    [
        ({"input": "in\x00x", "output": "out/x"}, "NUL byte"),
        ({"input": "in", "output": "out/\x00"}, "NUL byte"),
        ({"input": "in", "output": "in/out"}, "apart from the input"),
        ({"input": "in/a.txt", "output": "in"}, "apart from the input"),
    ],
)
def test_hostile_paths_are_refused_cleanly(api: Api, body: dict[str, str], msg: str) -> None:
    r = api.http.post("/v1/batch-jobs", json=body)
    assert r.status_code == 422, r.text
    assert msg in r.json()["error"]["message"]
    assert str(api.root) not in r.text


def test_batch_jobs_need_the_admin_scope(api: Api) -> None:
    r = api.http.post(
        "/v1/batch-jobs",
        json={"input": "in", "output": "out/y"},
        headers={"X-API-Key": api.predict_key},
    )
    assert r.status_code == 403
    assert not (api.root / "out" / "y").exists()
