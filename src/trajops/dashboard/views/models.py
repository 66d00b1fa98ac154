"""Models: registered versions with offline metrics, where each alias points, alias history,
and what the serving process has loaded."""

from __future__ import annotations

from typing import Any

import streamlit as st

from trajops.dashboard.context import DashboardContext
from trajops.dashboard.sources import MlflowUi, registry_view
from trajops.dashboard.views._common import (
    RUN_LINK,
    VERSION_LINK,
    load,
    mlflow_links,
    run_urls,
    version_markdown,
    when,
)
from trajops.dashboard.views.actions import flash, model_actions


def render(ctx: DashboardContext) -> None:
    st.title("Models")
    flash()
    view = load("registry", lambda: registry_view(ctx.registry()))
    links = mlflow_links(ctx)
    if view is not None:
        st.subheader("Aliases")
        if view["aliases"]:
            cols = st.columns(len(view["aliases"]))
            for col, (alias, version) in zip(cols, sorted(view["aliases"].items()), strict=True):
                col.metric(alias, f"v{version}")
            if links is not None:
                aliases = sorted(view["aliases"].items())
                st.caption(" · ".join(f"{a}: {version_markdown(v, links)}" for a, v in aliases))
        else:
            st.info("No alias is set.")
        st.subheader("Versions")
        if view["versions"]:
            st.dataframe(
                _linked(ctx, view["versions"], time="created_at"),
                hide_index=True,
                column_config={
                    "test_ade": st.column_config.NumberColumn("offline ADE (m)", format="%.3f"),
                    "test_fde": st.column_config.NumberColumn("offline FDE (m)", format="%.3f"),
                    **_link_columns(links),
                },
            )
        else:
            st.info(f"No version of {ctx.config.model_name!r} is registered yet.")
        if view["versions"]:
            model_actions(ctx, [v["version"] for v in view["versions"]])
        st.subheader("Alias history")
        if view["history"]:
            st.dataframe(
                [
                    {
                        "at": when(e["at"]),
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
            f"{when(serving.get('last_poll_at'))}"
        )
        st.dataframe(
            _linked(ctx, serving.get("versions", []), time="loaded_at"),
            hide_index=True,
            column_config=_link_columns(links),
        )
        for what, error in serving.get("errors", {}).items():
            st.error(f"{what}: {error}")


def _link_columns(links: MlflowUi | None) -> dict[str, Any]:
    if links is None:
        return {}
    return {
        "version": st.column_config.LinkColumn(display_text=VERSION_LINK),
        "run_id": st.column_config.LinkColumn(display_text=RUN_LINK),
    }


def _linked(
    ctx: DashboardContext, versions: list[dict[str, Any]], *, time: str
) -> list[dict[str, Any]]:
    """A table of versions: ``time`` as local time, versions and runs as MLflow links when
    known."""
    rows = [{**v, time: when(v.get(time))} for v in versions]
    links = mlflow_links(ctx)
    if links is None:
        return rows
    run_ids = [v.get("run_id") for v in rows]
    runs = load("runs (tracking server)", lambda: run_urls(ctx, links, run_ids))
    if runs is None:  # MLflow's run route finds the experiment itself
        runs = [r and links.run_url(r) for r in run_ids]
    for row, run in zip(rows, runs, strict=True):
        row["version"] = links.version_url(row["version"])
        row["run_id"] = run
    return rows
