"""Every dashboard page under Streamlit's AppTest, against a real served app on loopback (real
SQLite store and MLflow registry) that has seen traffic through an A/B experiment, scored
feedback, a drift run and firing alerts. Each page must show the service's own numbers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from tests._support.api_keys import issue_key
from tests._support.mlflow_uris import restored_mlflow_uris
from tests._support.waiting import eventually
from tests.unit.dashboard._scenario import OFFLINE, Traffic, dashboard_registry, send_traffic
from trajops.serving import AppOptions, create_app, serve_in_thread
from trajops.settings import Settings

APP = Path(__file__).resolve().parents[3] / "src" / "trajops" / "dashboard" / "app.py"


@dataclass(frozen=True)
class Service:
    url: str
    http: httpx.Client
    traffic: Traffic
    tracking_uri: str


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("dashboard")
    with restored_mlflow_uris(), pytest.MonkeyPatch.context() as env:
        reg, windows = dashboard_registry(root / "registry")
        settings = Settings(
            home=root / "home",
            tracking_uri=reg.uri,
            log_flush_interval_s=0.05,
            drift_min_inputs=10,
            alert_interval_s=0.3,
            alert_p99_latency_ms=0.001,  # any traffic breaks it: the latency alert fires
            alert_min_feedback=1,
            experiment_interval_s=0,  # the experiment stays running
            rate_limit_burst=10_000,
        )
        _, token = issue_key(settings, scopes="admin")
        app = create_app(settings, options=AppOptions(poll=False))
        with (
            serve_in_thread(app) as url,
            httpx.Client(base_url=url, timeout=60, headers={"X-API-Key": token}) as http,
        ):
            traffic = send_traffic(http, windows)
            eventually(  # the service's alert job has fired both rules
                lambda: {
                    a["rule"]
                    for a in http.get("/v1/monitoring/alerts?status=firing").json()["alerts"]
                },
                lambda rules: {"latency_p99", "accuracy_degradation"} <= rules,
                timeout_s=20,
                every_s=0.2,
            )
            for var in ("TRAJOPS_DATABASE_URL", "TRAJOPS_REGISTRY_URI", "MLFLOW_TRACKING_URI"):
                env.delenv(var, raising=False)
            env.setenv("TRAJOPS_HOME", str(settings.home))
            env.setenv("TRAJOPS_TRACKING_URI", reg.uri)
            env.setenv("TRAJOPS_DASHBOARD_API_URL", url)
            env.setenv("TRAJOPS_DASHBOARD_API_KEY", token)
            env.setenv("TRAJOPS_DASHBOARD_REFRESH_S", "0")
            env.setenv("TRAJOPS_DASHBOARD_LOGIN", "false")  # sign-in: test_login.py
            yield Service(url, http, traffic, reg.uri)


def _page_script(name: str) -> None:
    from trajops.dashboard.app import run_page

    run_page(name)


def page(name: str) -> AppTest:
    """Run one page; it must render without an exception or a failed source."""
    at = AppTest.from_function(_page_script, args=(name,), default_timeout=90)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.warning, [w.value for w in at.warning]
    return at


def metrics(at: AppTest) -> dict[str, tuple[str, str | None]]:
    return {m.label: (m.value, m.delta) for m in at.metric}


def charts(at: AppTest) -> list[tuple[dict[str, Any], pd.DataFrame]]:
    """Each Vega-Lite chart of the page: its spec and the rows it draws."""
    out = []
    for element in at.get("vega_lite_chart"):
        proto = element.proto  # type: ignore[attr-defined]
        data = pa.ipc.open_stream(proto.data.data).read_pandas() if proto.data.data else None
        out.append((json.loads(proto.spec), data))
    return out


def test_overview_shows_every_area(service: Service) -> None:
    at = page("overview")
    shown = metrics(at)
    assert shown["champion"] == ("v1", f"offline ADE {OFFLINE['1'][0]:.3f} m")
    assert shown["challenger"] == ("v2", f"offline ADE {OFFLINE['2'][0]:.3f} m")
    requests_value, _ = shown["requests"]
    assert int(requests_value) >= service.traffic.predictions  # plus feedback, experiments...
    assert shown["cache hit rate"][0].endswith("%")
    assert shown["p99 latency"][0].endswith(" ms")
    expected = service.traffic.ade_by_version_variant()
    online = {label: value for label, (value, _) in shown.items() if label.endswith("scored)")}
    assert len(online) == len(expected) >= 2
    for (version, variant), ade in expected.items():
        label = next(k for k in online if k.startswith(f"v{version} {variant} ADE"))
        shown_ade = online[label]
        assert shown_ade.endswith(" m")  # 3 decimals: 0.6875 may print as 0.687 or 0.688
        assert float(shown_ade.removesuffix(" m")) == pytest.approx(ade, abs=0.0011)
    assert shown["cv-v1-vs-v2 (running)"][0] == "continue"
    report = service.traffic.drift_report_id
    assert any(label.startswith(f"run {report} (40 inputs)") for label in shown)
    firing = at.dataframe[0].value
    assert {"latency_p99", "accuracy_degradation"} <= set(firing["rule"])


def test_models_page_versions_aliases_history(service: Service) -> None:
    at = page("models")
    assert metrics(at) == {"challenger": ("v2", ""), "champion": ("v1", "")}
    versions, history, serving = (d.value for d in at.dataframe)
    assert list(versions["version"]) == [1, 2]
    assert list(versions["test_ade"]) == [OFFLINE["1"][0], OFFLINE["2"][0]]
    assert list(versions["aliases"]) == ["champion", "challenger"]
    assert history.iloc[0][["alias", "action", "to", "actor"]].tolist() == [
        "champion",
        "promote",
        1,
        "tests",
    ]
    assert {str(v) for v in serving["version"]} == {"1", "2"}  # both arms loaded


def test_traffic_page_live_and_stored_series(service: Service) -> None:
    at = page("traffic")
    shown = metrics(at)
    assert set(shown) >= {"request rate", "p50 latency", "p95 latency", "p99 latency"}
    p50, p99 = (float(shown[k][0].removesuffix(" ms")) for k in ("p50 latency", "p99 latency"))
    assert 0 < p50 <= p99
    assert shown["error rate"][0] == "0.0%"
    stored = next(c.value for c in at.caption if c.value.endswith("requests in the window."))
    # every predict and feedback call left an audit row (plus the experiment and drift calls)
    assert int(stored.split()[0]) >= 2 * service.traffic.predictions
    at.selectbox(key="traffic_window").select("15 min").run()
    assert not at.exception


def test_accuracy_page_online_next_to_offline(service: Service) -> None:
    at = page("accuracy")
    table = at.dataframe[0].value
    expected = service.traffic.ade_by_version_variant()
    assert len(table) == len(expected)
    for row in table.itertuples(index=False):
        version = row.version.removeprefix("v")
        assert row._3 == pytest.approx(expected[(version, row.variant)])  # online ADE
        assert row._4 == pytest.approx(OFFLINE[version][0])  # offline ADE
    assert sum(table["scored"]) == len(service.traffic.feedback)
    scenes = at.dataframe[1].value  # per scene pseudonym, "(none)" for requests without one
    cols = ["scene", "version", "variant", "scored", "ADE"]
    assert list(scenes.columns) == [*cols, "FDE", "miss rate"]
    shown = sorted(
        (s != "(none)", v.removeprefix("v"), var, n, round(ade, 6))
        for s, v, var, n, ade in scenes[cols].itertuples(index=False)
    )
    expected_scenes = sorted(
        (scene is not None, version, variant, n, round(ade, 6))
        for (scene, version, variant), (n, ade) in service.traffic.by_scene().items()
    )
    assert shown == expected_scenes
    assert not {"plaza", "station"} & set(scenes["scene"])  # pseudonyms, never the raw ids
    assert set(scenes["miss rate"]) == {0.0}  # every error is 0.5 m or 1 m


def test_experiments_page_arms_intervals_verdict(service: Service) -> None:
    at = page("experiments")
    shown = metrics(at)
    assert shown["verdict"][0] == "continue"
    assert shown["status"][0] == "running"
    arms = at.dataframe[0].value
    assert list(arms["arm"]) == ["control", "treatment"]
    assert list(arms["target share"]) == ["50.0%", "50.0%"]
    assert sum(arms["requests"]) == service.traffic.predictions
    assert sum(arms["feedback"]) == len(service.traffic.feedback)
    for row in arms.itertuples(index=False):
        if row.feedback >= 2:
            low, high = (float(x) for x in row.interval.strip("[]").split(","))
            assert low < float(row.ade.removesuffix(" m")) < high
    tests = at.dataframe[1].value
    assert {"welch_t", "mann_whitney_u", "msprt"} <= set(tests["test"])


def test_drift_page_scores_and_report(service: Service) -> None:
    at = page("drift")
    runs = at.dataframe[0].value
    assert list(runs["id"]) == [service.traffic.drift_report_id]
    assert list(runs["inputs"]) == [40]
    assert at.selectbox(key="drift_report").value == service.traffic.drift_report_id
    # One-agent requests against a crowd's reference: no neighbour seen, no density drift.
    report = service.http.get("/v1/monitoring/drift?limit=1").json()["reports"][0]
    assert not {"neighbour_count_2m", "min_neighbour_dist"} & set(report["scores"])
    assert not {"neighbour_count_2m", "min_neighbour_dist"} & set(runs["drifted features"])
    assert runs["at"].str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d").all()  # to the second
    # Scores are drawn against their thresholds: score / threshold, a line at 1.
    ((spec, data),) = charts(at)
    lines, rule, _ = spec["layer"]
    assert rule["data"]["values"] == [{"label": "threshold", "value": 1.0}]
    assert "%L" not in lines["encoding"]["x"]["axis"]["format"]
    assert set(data["series"]) == set(report["scores"])
    ratio = data.set_index("series")["value"]
    thresholds = _reference_thresholds(service)
    for feature, score in report["scores"].items():
        assert ratio[feature] == pytest.approx(score / thresholds[feature])
    # the Evidently report of the selected run is embedded as it is served
    html = service.http.get(f"/v1/monitoring/drift/{service.traffic.drift_report_id}/report")
    assert html.status_code == 200
    iframes = at.get("iframe")
    assert len(iframes) == 1
    assert iframes[0].proto.srcdoc == html.text  # type: ignore[attr-defined]


def _reference_thresholds(service: Service) -> dict[str, float]:
    from mlflow import MlflowClient

    from tests._support.registry import MODEL
    from trajops.monitoring.reference import load_reference
    from trajops.registry.adapter import Registry

    uri = service.tracking_uri
    registry = Registry(MlflowClient(uri, uri), MODEL, uri=uri)
    return dict(load_reference(registry, "1").calibration.thresholds)


def test_versions_and_runs_link_to_the_mlflow_ui(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAJOPS_DASHBOARD_MLFLOW_UI_URL", "https://mlflow.example/")
    at = page("models")
    versions = at.dataframe[0].value
    model = "/#/models/trajectory-forecaster/versions/"
    assert list(versions["version"]) == [f"https://mlflow.example{model}{v}" for v in (1, 2)]
    assert all(
        url.startswith("https://mlflow.example/#/experiments/") and url.endswith(f"/runs/{run}")
        for url, run in zip(versions["run_id"], _run_ids(service), strict=True)
    )
    assert "https://mlflow.example" + model + "1" in " ".join(c.value for c in at.caption)
    drift = page("drift").dataframe[0].value
    assert list(drift["model"]) == [f"https://mlflow.example{model}1"]
    monkeypatch.delenv("TRAJOPS_DASHBOARD_MLFLOW_UI_URL")
    assert list(page("drift").dataframe[0].value["model"]) == ["v1"]  # no UI known: no link


def _run_ids(service: Service) -> list[str]:
    from mlflow import MlflowClient

    from tests._support.registry import MODEL

    client = MlflowClient(service.tracking_uri, service.tracking_uri)
    return [str(client.get_model_version(MODEL, str(v)).run_id) for v in (1, 2)]


def test_alerts_page(service: Service) -> None:
    at = page("alerts")
    firing = at.dataframe[0].value
    assert {"latency_p99", "accuracy_degradation"} <= set(firing["rule"])
    assert (firing["count"] >= 1).all()
    assert [i.value for i in at.info] == ["No resolved alert."]


def test_trajectories_page_draws_recent_requests(service: Service) -> None:
    at = page("trajectories")
    assert len(at.multiselect(key="traj_pick").value) == 5
    table = at.dataframe[0].value
    assert len(table) == 5
    assert set(table["ADE"]) <= {"0.500 m", "1.000 m"}  # truth = forecast + a known offset
    at.toggle(key="traj_truth").set_value(True).run()
    assert not at.exception


def test_unreachable_service_is_a_clear_warning(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAJOPS_DASHBOARD_API_URL", "http://127.0.0.1:9")
    at = AppTest.from_function(_page_script, args=("alerts",), default_timeout=60)
    at.run()
    assert not at.exception
    assert at.warning and all("unreachable" in w.value for w in at.warning)


def test_full_app_navigation_starts_on_overview(service: Service) -> None:
    at = AppTest.from_file(str(APP), default_timeout=90)
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["trajops operations"]
