"""Alerts: firing first, then the recently resolved."""

from __future__ import annotations

from functools import partial

import streamlit as st

from trajops.dashboard.context import DashboardContext
from trajops.dashboard.views._common import load, when

COLUMNS = ("severity", "rule", "key", "message", "count", "first_seen", "last_seen")
TIMES = ("first_seen", "last_seen")


def render(ctx: DashboardContext) -> None:
    st.title("Alerts")
    for status, title in (("firing", "Firing"), ("resolved", "Resolved")):
        st.subheader(title)
        found = load(f"{status} alerts", partial(ctx.client.alerts, status=status, limit=200))
        if found is None:
            continue
        if not found:
            st.info(f"No {status} alert.")
            continue
        st.dataframe(
            [{k: when(a[k]) if k in TIMES else a[k] for k in COLUMNS} for a in found],
            hide_index=True,
        )
