"""Trajectory viewer: observed, predicted and (when known) true paths of recent requests."""

from __future__ import annotations

import streamlit as st

from trajops.dashboard.context import DashboardContext
from trajops.dashboard.plots import trajectory_figure
from trajops.dashboard.sources import recent_trajectories
from trajops.dashboard.views._common import load, metres


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
    picked = st.multiselect(
        "agents",
        list(range(len(found))),
        default=list(range(min(5, len(found)))),
        format_func=lambda i: found[i].label,
        key="traj_pick",
    )
    chosen = [found[i] for i in picked]
    if not chosen:
        st.info("Pick at least one agent.")
        return
    st.pyplot(trajectory_figure(chosen), clear_figure=False)
    st.dataframe(
        [
            {
                "at": t.created_at,
                "request": t.request_id,
                "agent (pseudonym)": t.agent_key,
                "version": f"v{t.model_version}",
                "variant": t.variant,
                "ADE": metres(t.ade),
                "FDE": metres(t.fde),
            }
            for t in chosen
        ],
        hide_index=True,
    )
