"""Online accuracy: ADE/FDE of scored feedback per model version over time, next to the
offline (test) figure logged at training, and per scene (pseudonymised) with the miss rate."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import streamlit as st

from trajops.dashboard.context import DashboardContext
from trajops.dashboard.plots import time_chart
from trajops.dashboard.sources import accuracy_series
from trajops.dashboard.views._common import (
    chart,
    load,
    mlflow_links,
    version_cell,
    version_column,
    zone,
)
from trajops.evaluation.metrics import MISS_THRESHOLD_M

NO_SCENE = "(none)"
"""Scene cell of feedback on requests sent without a scene."""

WINDOWS = {"1 hour": ("1h", "5min"), "1 day": ("1d", "1h"), "7 days": ("7d", "6h")}


def render(ctx: DashboardContext) -> None:
    st.title("Online accuracy")
    label = st.selectbox("window", list(WINDOWS), index=0, key="accuracy_window")
    span, bucket = WINDOWS[label or "1 hour"]
    perf = load("online accuracy", lambda: ctx.client.performance(span))
    links = mlflow_links(ctx)
    if perf is not None:
        if perf["versions"]:
            st.dataframe(
                [
                    {
                        "version": version_cell(r["model_version"], links),
                        "variant": r["variant"],
                        "scored": r["n"],
                        "online ADE": r["ade"],
                        "offline ADE": r.get("test_ade"),
                        "online FDE": r["fde"],
                        "offline FDE": r.get("test_fde"),
                    }
                    for r in perf["versions"]
                ],
                hide_index=True,
                column_config={
                    "version": version_column("version", links),
                    **{
                        c: st.column_config.NumberColumn(c + " (m)", format="%.3f")
                        for c in ("online ADE", "offline ADE", "online FDE", "offline FDE")
                    },
                },
            )
        else:
            st.info("No scored feedback in this window.")
    _by_scene(ctx, span)
    window = timedelta(seconds=pd.Timedelta(span).total_seconds())
    series = load(
        "accuracy series",
        lambda: ctx.query(lambda store: accuracy_series(store, window=window, bucket=bucket)),
    )
    if series is None or series.empty:
        return
    versions = (perf or {}).get("versions", [])
    offline = {  # metric -> the offline (test) figure of each version, drawn as dashed lines
        m: {
            f"v{r['model_version']} offline": r[f"test_{m}"]
            for r in versions
            if r.get(f"test_{m}") is not None
        }
        for m in ("ade", "fde")
    }
    gap, tz = pd.Timedelta(bucket), zone()  # a bucket without scored feedback is a gap
    for metric in ("ade", "fde"):
        wide = series.pivot_table(index="at", columns="model_version", values=metric)
        wide.columns = [f"v{c} online" for c in wide.columns]
        figure = time_chart(
            wide, y_title=f"{metric.upper()} (m)", tz=tz, max_gap=gap, rules=offline[metric]
        )
        chart(figure)


def _by_scene(ctx: DashboardContext, span: str) -> None:
    """Online accuracy per scene pseudonym (``(none)``: requests sent without a scene)."""
    perf = load("online accuracy by scene", lambda: ctx.client.performance(span, by="scene"))
    if not perf or not perf["versions"]:
        return
    st.subheader("By scene")
    st.dataframe(
        [
            {
                "scene": r["scene_key"] or NO_SCENE,
                "version": f"v{r['model_version']}",
                "variant": r["variant"],
                "scored": r["n"],
                "ADE": r["ade"],
                "FDE": r["fde"],
                "miss rate": r["miss_rate"],
            }
            for r in perf["versions"]
        ],
        hide_index=True,
        column_config={
            "ADE": st.column_config.NumberColumn("ADE (m)", format="%.3f"),
            "FDE": st.column_config.NumberColumn("FDE (m)", format="%.3f"),
            "miss rate": st.column_config.NumberColumn(
                f"miss rate (FDE > {MISS_THRESHOLD_M:g} m)", format="percent"
            ),
        },
    )
