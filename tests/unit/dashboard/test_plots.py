"""The dashboard's charts as plain values: no line across a gap, drift scores against their
thresholds, local times to the second, and links into the MLflow UI."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pydantic
import pytest

from trajops.dashboard.plots import (
    RATIO_FLOOR,
    drift_chart,
    local_time,
    long_series,
    time_axis,
    time_chart,
)
from trajops.dashboard.sources import Trajectory, drift_ratios, mlflow_ui
from trajops.settings import Settings

PARIS = ZoneInfo("Europe/Paris")


def _joined(data: pd.DataFrame, a: float, b: float) -> bool:
    """Whether a line joins the points of values ``a`` and ``b`` (same series and segment)."""
    seg = data.set_index("value")["segment"]
    return bool(seg[a] == seg[b])


def test_a_missing_bucket_or_value_breaks_the_line() -> None:
    at = pd.date_range("2026-03-01 10:00", periods=6, freq="5min", tz="UTC")
    wide = pd.DataFrame({"p99": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0]}, index=at).drop(at[4])
    data = long_series(wide, tz=UTC, max_gap=pd.Timedelta("5min"))
    assert data["value"].tolist() == [1.0, 2.0, 4.0, 6.0]  # no value invented for the gaps
    assert _joined(data, 1.0, 2.0)
    assert not _joined(data, 2.0, 4.0)  # a NaN bucket between them
    assert not _joined(data, 4.0, 6.0)  # a missing bucket between them
    # The spec draws one line per segment, and points on every value.
    layer = time_chart(wide, y_title="ms", tz=UTC, max_gap=pd.Timedelta("5min")).spec["layer"][0]
    assert layer["encoding"]["detail"] == {"field": "segment", "type": "nominal"}
    assert layer["mark"]["type"] == "line" and layer["mark"]["point"]


def test_irregular_runs_break_at_a_long_silence_and_sparse_points_stand_alone() -> None:
    hourly = pd.to_datetime(
        ["2026-03-01 08:00", "2026-03-01 09:00", "2026-03-01 10:00", "2026-03-01 14:00"], utc=True
    )
    data = long_series(pd.DataFrame({"s": [1.0, 2.0, 3.0, 4.0]}, index=hourly), tz=UTC)
    assert _joined(data, 1.0, 3.0) and not _joined(data, 3.0, 4.0)  # 4 h after hourly runs
    sparse = pd.to_datetime(["2026-03-01 08:00", "2026-03-01 08:10", "2026-03-01 12:00"], utc=True)
    points = long_series(pd.DataFrame({"s": [1.0, np.nan, 3.0]}, index=sparse), tz=UTC)
    assert points["segment"].nunique() == len(points) == 2  # two lone points: no line at all


def test_times_are_local_wall_clock_to_the_second() -> None:
    # A SQLite store answers naive UTC with microseconds; PostgreSQL answers aware times.
    assert local_time("2026-07-01T10:00:00.500123", PARIS) == "2026-07-01 12:00:00"
    assert local_time("2026-01-01T10:00:00.5+00:00", PARIS) == "2026-01-01 11:00:00"
    assert local_time(datetime(2026, 1, 1, 23, 59, 59, 999, tzinfo=UTC), UTC) == (
        "2026-01-01 23:59:59"
    )
    assert local_time(None, PARIS) == "-"
    at = pd.to_datetime(["2026-07-01T10:00:00.500Z", "2026-07-01T10:05:00.250Z"])
    data = long_series(pd.DataFrame({"s": [1.0, 2.0]}, index=at), tz=PARIS)
    assert data["time"].tolist() == ["2026-07-01 12:00:00", "2026-07-01 12:05:00"]
    # Drawn on a UTC scale, epoch ms of the Paris wall clock read 12:00 in any browser.
    assert (
        data["t"].iloc[0] == datetime(2026, 7, 1, 12, 0, 0, 500_000, tzinfo=UTC).timestamp() * 1e3
    )


@pytest.mark.parametrize(
    ("span", "fmt"),
    [
        (pd.Timedelta(0), "%H:%M:%S"),  # one drift run: its second, not "13:07:43.500"
        (pd.Timedelta("90s"), "%H:%M:%S"),
        (pd.Timedelta("1h"), "%H:%M"),
        (pd.Timedelta("20h"), "%H:%M"),
        (pd.Timedelta("3D"), "%b %d %H:%M"),
        (pd.Timedelta("30D"), "%b %d"),
    ],
)
def test_time_axis_labels_never_show_milliseconds(span: pd.Timedelta, fmt: str) -> None:
    start = pd.Timestamp("2026-03-01 10:00:00.5", tz="UTC")
    t = pd.Series([start, start + span]).astype("int64") // 10**6
    x = time_axis(t)
    assert x["axis"]["format"] == fmt and "%L" not in fmt
    assert x["axis"]["tickMinStep"] == 1000  # no tick between two seconds
    assert x["scale"] == {"type": "utc"}  # the wall-clock time as given, in any browser


def test_drift_scores_are_divided_by_their_versions_thresholds() -> None:
    reports = [
        {
            "created_at": "2026-03-01T10:00:00.123456",
            "model_version": "1",
            "scores": {"mean_speed": 0.3, "min_neighbour_dist": 581.0, "time_step": 0.0},
        },
        {  # single-agent traffic: the neighbour features were not tested
            "created_at": "2026-03-01T11:00:00+00:00",
            "model_version": "2",
            "scores": {"mean_speed": 0.1, "time_step": 0.0},
        },
        {"created_at": "2026-03-01T12:00:00", "model_version": "9", "scores": {"mean_speed": 1}},
    ]
    thresholds = {
        "1": {"mean_speed": 0.2, "min_neighbour_dist": 0.25, "time_step": 1e-6},
        "2": {"mean_speed": 0.4, "min_neighbour_dist": 0.3, "time_step": 1e-6},
    }
    ratios = drift_ratios(reports, thresholds)
    assert len(ratios) == 2  # version 9 has no known thresholds: not drawn
    first, second = ratios.iloc[0], ratios.iloc[1]
    assert first["mean_speed"] == pytest.approx(1.5)  # drifted: above 1
    assert first["min_neighbour_dist"] == pytest.approx(2324.0)
    assert second["mean_speed"] == pytest.approx(0.25)
    assert np.isnan(second["min_neighbour_dist"])
    assert isinstance(ratios.index, pd.DatetimeIndex) and str(ratios.index.tz) == "UTC"
    figure = drift_chart(ratios, tz=UTC)
    lines, rule, label = figure.spec["layer"]
    assert rule["mark"]["type"] == "rule" and rule["data"]["values"] == [
        {"label": "threshold", "value": 1.0}
    ]
    assert label["mark"]["type"] == "text" and label["encoding"]["text"] == {"field": "label"}
    y = lines["encoding"]["y"]
    assert y["scale"] == {"type": "log", "domain": [RATIO_FLOOR, 10_000.0]}  # 2324 fits
    assert y["axis"]["values"] == [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10_000.0]
    # 0 cannot sit on a log axis: drawn at the floor, the tooltip keeps the value.
    zero = figure.data[figure.data["series"] == "time_step"]
    assert zero["value"].tolist() == [0.0, 0.0] and zero["shown"].tolist() == [RATIO_FLOOR] * 2
    assert {"field": "value", "type": "quantitative", "format": ".4~g"} in lines["encoding"][
        "tooltip"
    ]


def test_mlflow_links_from_the_setting_or_an_http_tracking_server() -> None:
    ui = mlflow_ui(ui_url="https://mlflow.example/", tracking_uri="sqlite:///x.db", model_name="m")
    assert ui is not None
    assert ui.version_url(3) == "https://mlflow.example/#/models/m/versions/3"
    assert ui.run_url("abc123", "7") == "https://mlflow.example/#/experiments/7/runs/abc123"
    assert ui.run_url("abc123") == "https://mlflow.example/#/runs/abc123"
    served = mlflow_ui(ui_url=None, tracking_uri="http://10.0.0.5:5000", model_name="traj fc/1")
    assert served is not None
    assert served.version_url("2") == "http://10.0.0.5:5000/#/models/traj%20fc%2F1/versions/2"
    assert mlflow_ui(ui_url=None, tracking_uri="sqlite:////var/mlflow.db", model_name="m") is None
    assert mlflow_ui(ui_url=None, tracking_uri="file:///srv/mlruns", model_name="m") is None


def test_mlflow_ui_setting_is_an_http_url() -> None:
    assert Settings(dashboard_mlflow_ui_url="http://ui:5000/").dashboard_mlflow_ui_url == (
        "http://ui:5000"
    )
    assert Settings(dashboard_mlflow_ui_url="").dashboard_mlflow_ui_url is None
    with pytest.raises(pydantic.ValidationError, match="not an http"):
        Settings(dashboard_mlflow_ui_url="mlflow.internal:5000")


def test_trajectory_picker_label_in_local_time() -> None:
    t = Trajectory(
        request_id="r" * 12,
        agent_key="a" * 10,
        created_at=datetime(2026, 7, 1, 10, 0, 5, 123456, tzinfo=UTC),
        model_version="3",
        variant="default",
        obs=np.zeros((8, 2)),
        pred=np.zeros((12, 2)),
        truth=None,
        ade=None,
        fde=None,
    )
    assert t.label(PARIS).startswith("12:00:05 v3 rrrrrrrr/aaaaaa")
    assert t.label().startswith("10:00:05 ")
