"""Trajectory viewer: observed, predicted and (when known) true paths of recent requests."""

from __future__ import annotations

import streamlit as st

from trajops.dashboard.context import DashboardContext
from trajops.dashboard.plots import trajectory_figure
from trajops.dashboard.sources import recent_trajectories
from trajops.dashboard.views._common import (
    load,
    metres,
    mlflow_links,
    version_cell,
    version_column,
    when,
    zone,
)


def render(ctx: DashboardContext) -> None:
    st.title("Trajectories")
    cols = st.columns(2)
    limit = int(cols[0].number_input("recent agents", 1, 500, 50, key="traj_limit"))
    with_truth = cols[1].toggle("only agents with ground truth", key="traj_truth")
    found = load(
        "recent predictions",
        lambda: ctx.query(
            lambda store: recent_trajectories(store, limit=limit, with_truth=with_truth)
        ),
    )
    if found is None:
        return
    if not found:
        st.info("Nothing served yet." if not with_truth else "No feedback received yet.")
        return
    # Options are stable ids, not list positions: an auto-refresh with new traffic shifts the
    # list, and positions would then silently point at other agents.
    by_id = {(t.request_id, t.agent_key): t for t in found}
    tz = zone()
    picked = st.multiselect(
        "agents",
        list(by_id),
        default=list(by_id)[:5],
        format_func=lambda ident: by_id[ident].label(tz),
        key="traj_pick",
    )
    chosen = [by_id[ident] for ident in picked if ident in by_id]
    if not chosen:
        st.info("Pick at least one agent.")
        return
    st.pyplot(trajectory_figure(chosen), clear_figure=False)
    links = mlflow_links(ctx)
    st.dataframe(
        [
            {
                "at": when(t.created_at),
                "request": t.request_id,
                "agent (pseudonym)": t.agent_key,
                "version": version_cell(t.model_version, links),
                "variant": t.variant,
                "ADE": metres(t.ade),
                "FDE": metres(t.fde),
            }
            for t in chosen
        ],
        hide_index=True,
        column_config={"version": version_column("version", links)},
    )
