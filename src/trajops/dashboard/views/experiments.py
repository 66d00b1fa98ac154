"""A/B experiments: arms, traffic shares, per-arm metrics with intervals, tests and verdict."""

from __future__ import annotations

from typing import Any

import streamlit as st

from trajops.dashboard.context import DashboardContext
from trajops.dashboard.sources import arm_intervals
from trajops.dashboard.views._common import load, metres, mlflow_links, number, version_markdown
from trajops.dashboard.views.actions import end_experiment, flash, start_experiment


def render(ctx: DashboardContext) -> None:
    st.title("A/B experiments")
    flash()
    found = load("experiments", ctx.client.experiments)
    if found is None:
        return
    if not any(e["status"] == "running" for e in found):
        with st.expander("Start an experiment", expanded=not found):
            start_experiment(ctx)
    if not found:
        st.info("No experiment yet: start one here or with `trajops experiments create`.")
        return
    labels = {f"{e['name']} ({e['status']}, {e['id']})": e["id"] for e in found}
    chosen = st.selectbox("experiment", list(labels), index=0, key="experiment")
    status = load("experiment status", lambda: ctx.client.experiment_status(labels[chosen or ""]))
    if status is not None:
        _show(ctx, status)
        end_experiment(ctx, status)


def _show(ctx: DashboardContext, status: dict[str, Any]) -> None:
    spec = status["spec"]
    cols = st.columns(4)
    cols[0].metric("verdict", status["verdict"])
    cols[1].metric("status", status["status"])
    cols[2].metric("mode / unit", f"{spec['mode']} / {spec['unit']}")
    srm = status.get("srm_p_value")
    cols[3].metric("SRM p-value", number(srm, 4))
    if status.get("reason"):
        st.caption(f"reason: {status['reason']}")
    arms = status["arms"]
    names = [a["name"] for a in arms]
    intervals = load(
        "per-arm intervals",
        lambda: ctx.query(
            lambda store: arm_intervals(
                store,
                experiment_id=status["id"],
                arms=names,
                metric=spec["metric"],
                alpha=spec["alpha"],
            )
        ),
    )
    by_arm = {row["arm"]: row for row in intervals or []}
    total_weight = sum(a["weight"] for a in arms) or 1.0
    total_requests = sum(a["requests"] for a in arms) or 0
    level = f"{100 * (1 - spec['alpha']):.0f}%"
    st.subheader(f"Arms ({spec['metric'].upper()}, {level} intervals)")
    rows = []
    for a in arms:
        ci = by_arm.get(a["name"], {})
        low, high = ci.get("ci_low"), ci.get("ci_high")
        rows.append(
            {
                "arm": a["name"],
                "model": a["model_ref"],
                "target share": f"{100 * a['weight'] / total_weight:.1f}%",
                "observed share": (
                    f"{100 * a['requests'] / total_requests:.1f}%" if total_requests else "-"
                ),
                "requests": a["requests"],
                "feedback": a["n_feedback"],
                spec["metric"]: metres(a[spec["metric"]]),
                "interval": "-" if low is None else f"[{low:.3f}, {high:.3f}]",
                "p99 latency (ms)": a["latency_p99_ms"],
                "error rate": a["error_rate"],
            }
        )
    st.dataframe(rows, hide_index=True)
    _model_links(ctx, arms)
    st.subheader("Tests (challenger - control; positive: challenger worse)")
    tests = [
        {
            "arm": arm,
            "test": name,
            "effect": t.get("effect"),
            "interval": (
                f"[{t['ci_low']:.3f}, {t['ci_high']:.3f}]"
                if t.get("ci_low") is not None and t.get("ci_high") is not None
                else "-"
            ),
            "p-value": t.get("p_value"),
        }
        for arm, by_test in status["tests"].items()
        for name, t in by_test.items()
    ]
    st.dataframe(tests, hide_index=True)
    for breach in status.get("guardrail_breaches", []):
        st.error(f"guardrail breach: {breach['message']}")


def _model_links(ctx: DashboardContext, arms: list[dict[str, Any]]) -> None:
    """Each arm's model as a link into MLflow (an alias: the version it points at now)."""
    links = mlflow_links(ctx)
    if links is None:
        return
    aliases: dict[str, int] = {}
    if any(not str(a["model_ref"]).isdigit() for a in arms):
        aliases = load("aliases (model registry)", lambda: ctx.registry().aliases()) or {}
    parts = []
    for a in arms:
        ref = str(a["model_ref"])
        version = ref if ref.isdigit() else aliases.get(ref)
        text = f"v{version}" if ref.isdigit() else f"{ref} (v{version})"
        shown = ref if version is None else version_markdown(version, links, text)
        parts.append(f"{a['name']}: {shown}")
    st.caption("models in MLflow: " + " · ".join(parts))
