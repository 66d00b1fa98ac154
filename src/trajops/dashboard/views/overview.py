"""Overview: the state of models, traffic, accuracy, experiments, drift and alerts at a glance."""

from __future__ import annotations

from typing import Any

import streamlit as st

from trajops.dashboard.context import DashboardContext
from trajops.dashboard.sources import registry_view
from trajops.dashboard.views._common import (
    load,
    metres,
    millis,
    mlflow_links,
    noted_metric,
    scrape,
    share,
    version_markdown,
    when,
)


def render(ctx: DashboardContext) -> None:
    st.title("trajops operations")
    st.caption(f"service {ctx.client.base_url}")
    _models(ctx)
    _traffic(ctx)
    _accuracy(ctx)
    left, right = st.columns(2)
    with left:
        _experiment(ctx)
    with right:
        _drift(ctx)
    _alerts(ctx)


def _models(ctx: DashboardContext) -> None:
    st.subheader("Models")
    view = load("registry", lambda: registry_view(ctx.registry()))
    serving = load("serving process (/v1/models)", ctx.client.models)
    cols = st.columns(3)
    if view is not None:
        by_version = {v["version"]: v for v in view["versions"]}
        for col, alias in zip(cols, ("champion", "challenger"), strict=False):
            version = view["aliases"].get(alias)
            if version is None:
                col.metric(alias, "unset")
                continue
            ade = by_version.get(version, {}).get("test_ade")
            noted_metric(col, alias, f"v{version}", f"offline ADE {metres(ade)}")
        links = mlflow_links(ctx)
        if links is not None and view["aliases"]:
            aliases = sorted(view["aliases"].items())
            st.caption(" · ".join(f"{a}: {version_markdown(v, links)}" for a, v in aliases))
    if serving is not None:
        loaded = ", ".join(f"v{v['version']}" for v in serving.get("versions", [])) or "none"
        noted_metric(cols[2], "serving default", str(serving.get("default")), f"loaded {loaded}")


def _traffic(ctx: DashboardContext) -> None:
    st.subheader("Traffic (this replica)")
    figures = scrape(ctx).latest()
    if figures is None:
        return
    cols = st.columns(5)
    noted_metric(
        cols[0],
        "requests",
        f"{figures.requests:.0f}",
        "since start" if figures.span_s is None else f"in {figures.span_s:.0f} s",
    )
    rate = figures.request_rate
    cols[1].metric("request rate", "-" if rate is None else f"{rate:.2f}/s")
    noted_metric(
        cols[2],
        "p99 latency",
        millis(figures.latency_ms[0.99]),
        f"p50 {millis(figures.latency_ms[0.5])}",
    )
    cols[3].metric("error rate", share(figures.error_rate))
    cols[4].metric("cache hit rate", share(figures.cache_hit_rate))


def _accuracy(ctx: DashboardContext) -> None:
    st.subheader("Online accuracy (last hour)")
    perf = load("online accuracy", lambda: ctx.client.performance("1h"))
    if perf is None:
        return
    rows = perf["versions"]
    if not rows:
        st.info("No scored feedback in the last hour.")
        return
    cols = st.columns(min(len(rows), 4))
    for col, row in zip(cols, rows, strict=False):
        offline = row.get("test_ade")
        delta = None if offline is None else f"{row['ade'] - offline:+.3f} m vs offline"
        col.metric(
            f"v{row['model_version']} {row['variant']} ADE ({row['n']} scored)",
            metres(row["ade"]),
            delta,
            delta_color="inverse",
        )


def _experiment(ctx: DashboardContext) -> None:
    st.subheader("A/B experiment")
    found = load("experiments", ctx.client.experiments)
    if found is None:
        return
    running = [e for e in found if e["status"] == "running"]
    if not found:
        st.info("No experiment yet.")
        return
    latest: dict[str, Any] = (running or found)[0]
    st.metric(f"{latest['name']} ({latest['status']})", latest["verdict"])
    status = load("experiment status", lambda: ctx.client.experiment_status(latest["id"]))
    if status is not None:
        st.caption(
            " | ".join(
                f"{a['name']}: {a['requests']} req, ADE {metres(a['ade'])}" for a in status["arms"]
            )
        )


def _drift(ctx: DashboardContext) -> None:
    st.subheader("Input drift")
    reports = load("drift reports", lambda: ctx.client.drift_reports(limit=1))
    if reports is None:
        return
    if not reports:
        st.info("No drift run yet.")
        return
    last = reports[0]
    drifted = ", ".join(last["drifted_features"]) or "none"
    noted_metric(
        st,
        f"run {last['id']} ({last['n_current']} inputs)",
        "DRIFT" if last["dataset_drift"] else "no drift",
        f"drifted: {drifted}",
    )


def _alerts(ctx: DashboardContext) -> None:
    st.subheader("Firing alerts")
    firing = load("alerts", lambda: ctx.client.alerts(status="firing"))
    if firing is None:
        return
    if not firing:
        st.success("No alert is firing.")
        return
    st.dataframe(
        [
            {k: a[k] for k in ("severity", "rule", "key", "message", "count")}
            | {"last_seen": when(a["last_seen"])}
            for a in firing
        ],
        hide_index=True,
    )
