"""The Streamlit app: ``streamlit run`` executes this file (``trajops dashboard`` does it).

Configuration comes from ``TRAJOPS_*`` variables (the dashboard's own ``TRAJOPS_DASHBOARD_*``
plus the store and registry settings the service uses). Importing this module has no side
effect; Streamlit runs it as ``__main__``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import streamlit as st

from trajops.dashboard import login
from trajops.dashboard.context import DashboardConfig, DashboardContext
from trajops.dashboard.views import (
    accuracy,
    alerts,
    drift,
    experiments,
    models,
    overview,
    people,
    traffic,
    trajectories,
)
from trajops.settings import Settings

PAGES: dict[str, tuple[str, Callable[[DashboardContext], None]]] = {
    "overview": ("Overview", overview.render),
    "models": ("Models", models.render),
    "traffic": ("Traffic", traffic.render),
    "accuracy": ("Online accuracy", accuracy.render),
    "experiments": ("A/B experiments", experiments.render),
    "drift": ("Drift", drift.render),
    "alerts": ("Alerts", alerts.render),
    "trajectories": ("Trajectories", trajectories.render),
    "people": ("People and keys", people.render),
}  # URL path -> (title, render function); a comment: Streamlit "magic" would show a string
ADMIN_PAGES = frozenset({"people"})


@st.cache_resource(show_spinner=False)
def _context(config: DashboardConfig) -> DashboardContext:
    return DashboardContext(config)


def context() -> DashboardContext:
    """This process's context for the settings in the environment (one per configuration)."""
    return _context(DashboardConfig.from_settings(Settings()))


def run_page(name: str) -> None:
    """Render one page by URL path (what each navigation entry calls; tests call it directly)."""
    ctx = login.current(context())
    if ctx is None:  # signed out meanwhile (expired, or in another tab)
        st.rerun()
        return
    render = PAGES[name][1]
    refresh = ctx.config.refresh_s
    if refresh > 0:
        # Only the page body re-runs on the timer: the navigation and widgets keep their state.
        st.fragment(render, run_every=refresh)(ctx)
    else:
        render(ctx)


def main() -> None:
    """Page config, navigation and the selected page."""
    st.set_page_config(page_title="trajops operations", layout="wide")
    ctx = login.current(context())
    if ctx is None:
        login.render(context())
        return
    pages = [
        st.Page(partial(run_page, name), title=title, url_path=name, default=name == "overview")
        for name, (title, _) in PAGES.items()
        if name not in ADMIN_PAGES or ctx.can("admin")
    ]
    page = st.navigation(pages)
    with st.sidebar:
        st.caption("trajops operations dashboard")
        login.sidebar(ctx)
        if st.button("Refresh now", key="refresh"):
            st.rerun()
    page.run()


if __name__ == "__main__":
    main()
