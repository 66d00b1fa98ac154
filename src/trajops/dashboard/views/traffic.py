"""Traffic: request rate, latency percentiles, error rate and cache hit rate."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import streamlit as st

from trajops.dashboard.context import DashboardContext
from trajops.dashboard.plots import time_chart
from trajops.dashboard.sources import traffic_series
from trajops.dashboard.views._common import chart, load, millis, scrape, share, zone

WINDOWS = {"15 min": ("15m", "30s"), "1 hour": ("1h", "1min"), "1 day": ("1d", "15min")}


def render(ctx: DashboardContext) -> None:
    st.title("Traffic")
    st.subheader("This replica (/metrics)")
    history = scrape(ctx)
    figures = history.latest()
    if figures is not None:
        cols = st.columns(6)
        rate = figures.request_rate
        cols[0].metric("request rate", "-" if rate is None else f"{rate:.2f}/s")
        cols[1].metric("p50 latency", millis(figures.latency_ms[0.5]))
        cols[2].metric("p95 latency", millis(figures.latency_ms[0.95]))
        cols[3].metric("p99 latency", millis(figures.latency_ms[0.99]))
        cols[4].metric("error rate", share(figures.error_rate))
        cols[5].metric("cache hit rate", share(figures.cache_hit_rate))
        span = (
            "since the process started"
            if figures.span_s is None
            else (f"over the last {figures.span_s:.0f} s")
        )
        st.caption(f"{figures.requests:.0f} requests {span}.")
        rates = history.rates()
        if rates:
            frame = pd.DataFrame(rates)
            frame["at"] = pd.to_datetime(frame["at"], unit="s", utc=True)
            # Scrapes happen while the page is open: a closed tab leaves a gap, not a slope.
            wide = frame.set_index("at")[["request_rate"]]
            chart(time_chart(wide, y_title="requests/s", tz=zone()))
    st.subheader("Every replica (audit trail)")
    label = st.selectbox("window", list(WINDOWS), index=1, key="traffic_window")
    span, bucket = WINDOWS[label or "1 hour"]
    window = timedelta(seconds=pd.Timedelta(span).total_seconds())
    series = load(
        "traffic series",
        lambda: ctx.query(lambda store: traffic_series(store, window=window, bucket=bucket)),
    )
    if series is None:
        return
    if series.empty:
        st.info("No request in this window.")
        return
    st.caption(f"{int(series['requests'].sum())} requests in the window.")
    tz, gap = zone(), pd.Timedelta(bucket)  # a missing bucket is a gap
    chart(time_chart(series[["rate_per_s"]], y_title="requests/s", tz=tz, max_gap=gap))
    latency = series[["p50_ms", "p95_ms", "p99_ms"]]
    chart(time_chart(latency, y_title="/v1/predict latency (ms)", tz=tz, max_gap=gap))
    errors = series[["error_rate"]]
    chart(time_chart(errors, y_title="share of 5xx", tz=tz, max_gap=gap, y_format=".1%"))
