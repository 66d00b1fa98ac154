"""Models: registered versions with offline metrics, where each alias points, alias history,
and what the serving process has loaded."""

from __future__ import annotations

import streamlit as st

from trajops.dashboard.context import DashboardContext
from trajops.dashboard.sources import registry_view
from trajops.dashboard.views._common import load


def render(ctx: DashboardContext) -> None:
    st.title("Models")
    view = load("registry", lambda: registry_view(ctx.registry()))
    if view is not None:
        st.subheader("Aliases")
        if view["aliases"]:
            cols = st.columns(len(view["aliases"]))
            for col, (alias, version) in zip(cols, sorted(view["aliases"].items()), strict=True):
                col.metric(alias, f"v{version}")
        else:
            st.info("No alias is set.")
        st.subheader("Versions")
        if view["versions"]:
            st.dataframe(
                view["versions"],
                hide_index=True,
                column_config={
                    "test_ade": st.column_config.NumberColumn("offline ADE (m)", format="%.3f"),
                    "test_fde": st.column_config.NumberColumn("offline FDE (m)", format="%.3f"),
                },
            )
        else:
            st.info(f"No version of {ctx.config.model_name!r} is registered yet.")
        st.subheader("Alias history")
        if view["history"]:
            st.dataframe(
                [
                    {
                        "at": e["at"],
                        "alias": e["alias"],
                        "action": e["action"],
                        "from": e["from_version"],
                        "to": e["to_version"],
                        "actor": e["actor"],
                        "forced": e["forced"],
                        "reason": e["reason"],
                    }
                    for e in reversed(view["history"])
                ],
                hide_index=True,
            )
        else:
            st.info("No alias move recorded.")
    st.subheader("Serving process")
    serving = load("serving process (/v1/models)", ctx.client.models)
    if serving is not None:
        st.write(
            f"default model: `{serving.get('default')}`; last registry poll: "
            f"{serving.get('last_poll_at') or '-'}"
        )
        st.dataframe(serving.get("versions", []), hide_index=True)
        for what, error in serving.get("errors", {}).items():
            st.error(f"{what}: {error}")
