"""The dashboard's figures, as plain values that tests read without Streamlit.

The trajectory viewer's figure (observed, predicted and true paths) is drawn on matplotlib's
Agg canvas without pyplot state, like :mod:`trajops.evaluation.plots`. Time series are
Vega-Lite specs with their data (:class:`Chart`): points always drawn, lines only within
unbroken stretches (never across a gap), times as local wall-clock time to the second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from trajops.dashboard.sources import Trajectory
from trajops.errors import ValidationError


def trajectory_figure(trajectories: Sequence[Trajectory], *, title: str = "") -> Figure:
    """One axes, one colour per agent: observed (solid, dots), forecast (dashed), truth (dotted).

    Each agent's path is drawn in its own coordinates (the service's metres), so agents of one
    request keep their relative positions.
    """
    if not trajectories:
        raise ValidationError("no trajectories to draw")
    fig = Figure(figsize=(7, 6))
    ax = fig.add_subplot(1, 1, 1)
    colours = [f"C{i % 10}" for i in range(len(trajectories))]
    for i, (t, colour) in enumerate(zip(trajectories, colours, strict=True)):
        first = i == 0
        ax.plot(
            t.obs[:, 0], t.obs[:, 1], "o-", color=colour, ms=3, label="observed" if first else None
        )
        # The forecast starts where the observation ends, so the two read as one path.
        px = [t.obs[-1, 0], *t.pred[:, 0]]
        py = [t.obs[-1, 1], *t.pred[:, 1]]
        ax.plot(px, py, "--", color=colour, lw=1.5, label="predicted" if first else None)
        if t.truth is not None and len(t.truth):
            tx = [t.obs[-1, 0], *t.truth[:, 0]]
            ty = [t.obs[-1, 1], *t.truth[:, 1]]
            ax.plot(tx, ty, "s:", color=colour, ms=3, lw=1.5, label="true" if first else None)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


# --- time series (Vega-Lite specs for ``st.vega_lite_chart``) -----------------------------

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
"""How the dashboard writes a moment: local time, to the second."""
GAP_FACTOR = 1.5
"""Without a known bucket, points further apart than this many typical spacings are a gap."""
RULE_COLOUR = "#555"
"""Colour of reference lines (a threshold, an offline figure)."""
RATIO_FLOOR = 0.01
"""Drift ratios below this are drawn at it (a log axis has no 0); the tooltip has the value."""
_LABELS = (
    (pd.Timedelta("2min"), "%H:%M:%S"),
    (pd.Timedelta("1D"), "%H:%M"),
    (pd.Timedelta("7D"), "%b %d %H:%M"),
)  # (longest span, label format); longer spans: "%b %d"


@dataclass(frozen=True)
class Chart:
    """A Vega-Lite chart: ``st.vega_lite_chart(chart.data, chart.spec)`` draws it."""

    data: pd.DataFrame
    spec: dict[str, Any]


def local_clock(times: pd.Series | pd.Index, tz: tzinfo) -> pd.Series:
    """Moments (aware, or naive UTC as a SQLite store answers them) as wall-clock times in
    ``tz``, naive."""
    at = pd.to_datetime(pd.Series(times), utc=True, format="ISO8601")
    return at.dt.tz_convert(tz).dt.tz_localize(None)


def local_time(value: datetime | str | None, tz: tzinfo) -> str:
    """One moment as ``YYYY-MM-DD HH:MM:SS`` in ``tz`` (``"-"`` for None)."""
    if value is None or value == "":
        return "-"
    return f"{local_clock(pd.Series([value]), tz).iloc[0]:{TIME_FORMAT}}"


def segments(at: pd.Series, present: pd.Series, *, max_gap: pd.Timedelta | None) -> pd.Series:
    """Which unbroken stretch each present point belongs to (a line joins a stretch only).

    A stretch ends at a missing value (``present`` False) and where two present points are
    more than ``max_gap`` apart (None: ``GAP_FACTOR`` times the median spacing of ``at``).

    Args:
        at: ``(N,)`` sorted times of every row of the series.
        present: ``(N,)`` whether the row has a value.
        max_gap: the longest spacing that is not a gap.

    Returns:
        ``(n_present,)`` stretch numbers from 0, on the present rows' index.
    """
    times = pd.Series(pd.to_datetime(at).to_numpy(), index=at.index)
    if max_gap is None:
        spacing = times.diff().dropna()
        if len(spacing) >= 2:
            max_gap = pd.Timedelta(spacing.median()) * GAP_FACTOR
    after_missing = (~present).cumsum()  # changes after every missing row
    kept = times[present.to_numpy()]
    gap = kept.diff() > max_gap if max_gap is not None else pd.Series(False, index=kept.index)
    broken = after_missing[present.to_numpy()].diff().fillna(0) > 0
    return (gap | broken).cumsum().astype(int)


def long_series(
    wide: pd.DataFrame, *, tz: tzinfo, max_gap: pd.Timedelta | None = None
) -> pd.DataFrame:
    """``wide`` (index: time; one column per series) as the rows a chart draws.

    Returns:
        Columns ``t`` (epoch ms of the wall-clock time in ``tz``, drawn on a UTC scale so that
        no browser shifts it again), ``time`` (that time as text), ``series``, ``value`` and
        ``segment`` (series and stretch: points of different segments are never joined).
    """
    frame = wide.sort_index()
    clock = local_clock(frame.index, tz)
    t = (clock - pd.Timestamp(0)) // pd.Timedelta(milliseconds=1)
    parts = []
    for name in frame.columns:
        values = pd.Series(pd.to_numeric(frame[name], errors="coerce").to_numpy())
        present = values.notna()
        if not present.any():
            continue
        stretch = segments(clock, present, max_gap=max_gap)
        parts.append(
            pd.DataFrame(
                {
                    "t": t[present].to_numpy(),
                    "time": clock[present].dt.strftime(TIME_FORMAT).to_numpy(),
                    "series": str(name),
                    "value": values[present].to_numpy(dtype=np.float64),
                    "segment": [f"{name}#{k}" for k in stretch],
                }
            )
        )
    columns = ["t", "time", "series", "value", "segment"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def time_axis(t_ms: pd.Series) -> dict[str, Any]:
    """The x encoding for epoch-ms wall-clock times: labels to the second at most (never
    milliseconds), ticks at least a second apart."""
    span = pd.Timedelta(milliseconds=int(t_ms.max() - t_ms.min())) if len(t_ms) else pd.Timedelta(0)
    fmt = next((label for longest, label in _LABELS if span <= longest), "%b %d")
    return {
        "field": "t",
        "type": "temporal",
        "title": None,
        "scale": {"type": "utc"},
        "axis": {"format": fmt, "tickMinStep": 1000, "labelOverlap": True},
    }  # a UTC scale formats in UTC: the wall-clock time as given


def time_chart(
    wide: pd.DataFrame,
    *,
    y_title: str,
    tz: tzinfo,
    max_gap: pd.Timedelta | None = None,
    rules: dict[str, float] | None = None,
    y_scale: dict[str, Any] | None = None,
    y_format: str | None = None,
    y_floor: float | None = None,
) -> Chart:
    """A time series chart: one colour per column of ``wide``, points always drawn, lines only
    within unbroken stretches (see :func:`segments`), times in ``tz``.

    Args:
        wide: index: times; one numeric column per series (NaN: no value).
        y_title: the y axis title (with its unit).
        tz: the time zone the times are shown in.
        max_gap: the longest spacing that is not a gap (a bucketed series: its bucket).
        rules: label -> value of horizontal lines (a threshold, an offline figure).
        y_scale: Vega-Lite scale of the y axis (e.g. ``{"type": "log"}``).
        y_format: d3 format of the y labels (e.g. ``".0%"``).
        y_floor: values below it are drawn at it (a log axis); the tooltip keeps the value.
    """
    data = long_series(wide, tz=tz, max_gap=max_gap)
    data["shown"] = data["value"] if y_floor is None else data["value"].clip(lower=y_floor)
    y: dict[str, Any] = {"field": "shown", "type": "quantitative", "title": y_title}
    if y_scale:
        y["scale"] = y_scale
    if y_format:
        y["axis"] = {"format": y_format}
    tooltip = [
        {"field": "time", "type": "nominal", "title": "time"},
        {"field": "series", "type": "nominal"},
        {"field": "value", "type": "quantitative", "format": y_format or ".4~g"},
    ]
    lines: dict[str, Any] = {
        "mark": {"type": "line", "point": {"filled": True, "size": 40}, "tooltip": True},
        "encoding": {
            "x": time_axis(data["t"]),
            "y": y,
            "color": {"field": "series", "type": "nominal", "title": None},
            "detail": {"field": "segment", "type": "nominal"},
            "tooltip": tooltip,
        },
    }
    layers = [lines]
    if rules:
        # Reference lines in one neutral colour, named on the line (not in the series legend).
        marks = {"values": [{"label": k, "value": v} for k, v in rules.items()]}
        rule_y = {"field": "value", "type": "quantitative"}
        layers += [
            {
                "data": marks,
                "mark": {"type": "rule", "color": RULE_COLOUR, "strokeDash": [6, 4]},
                "encoding": {"y": rule_y, "tooltip": [{"field": "label"}, {"field": "value"}]},
            },
            {
                "data": marks,
                "mark": {"type": "text", "color": RULE_COLOUR, "align": "left", "dx": 4, "dy": -7},
                "encoding": {"y": rule_y, "x": {"value": 0}, "text": {"field": "label"}},
            },
        ]
    spec = {"layer": layers, "height": 280, "config": {"legend": {"orient": "bottom"}}}
    return Chart(data, spec)


def drift_chart(ratios: pd.DataFrame, *, tz: tzinfo) -> Chart:
    """Per-feature drift score / threshold over runs, on a log axis with the line at 1 (at or
    above: the feature drifted), ticked at powers of ten. Ratios under :data:`RATIO_FLOOR` are
    drawn at it."""
    top = float(np.nanmax(ratios.to_numpy(dtype=np.float64), initial=1.0))
    decades = 10.0 ** np.arange(np.log10(RATIO_FLOOR), max(1, np.ceil(np.log10(top))) + 1)
    figure = time_chart(
        ratios,
        y_title="drift score / threshold (>= 1: drift)",
        tz=tz,
        rules={"threshold": 1.0},
        y_scale={"type": "log", "domain": [RATIO_FLOOR, float(decades[-1])]},
        y_floor=RATIO_FLOOR,
    )
    y = figure.spec["layer"][0]["encoding"]["y"]
    y["axis"] = {"values": [float(f"{d:.0e}") for d in decades], "format": "~g"}
    return figure
