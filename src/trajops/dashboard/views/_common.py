"""Helpers shared by the pages: guarded loads, number and time formats, charts and links."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import streamlit as st

from trajops.dashboard import login
from trajops.dashboard.context import DashboardContext
from trajops.dashboard.live import SampleHistory, parse_metrics
from trajops.dashboard.plots import Chart, local_time
from trajops.dashboard.sources import MlflowUi, mlflow_ui, run_experiments
from trajops.errors import AuthenticationError, TrajopsError

T = TypeVar("T")


def load(what: str, read: Callable[[], T]) -> T | None:
    """``read()``, or a warning naming ``what`` failed and why (the rest of the page renders).

    A refused session (expired, ended, user disabled) signs the person out instead."""
    try:
        return read()
    except TrajopsError as exc:
        if isinstance(exc, AuthenticationError) and st.session_state.get(login.SESSION):
            login.forget()
            st.rerun()  # raises: the page starts over at the sign-in form
        st.warning(f"{what}: {exc.message}")
        return None


def noted_metric(target: Any, label: str, value: str, note: str) -> None:
    """A metric whose delta line is a plain note (no colour, no arrow where Streamlit allows)."""
    extra: dict[str, Any] = {"delta_arrow": "off"} if _ARROW_OPTION else {}
    target.metric(label, value, note, delta_color="off", **extra)


_ARROW_OPTION = "delta_arrow" in inspect.signature(st.metric).parameters  # Streamlit >= 1.50


def metres(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} m"


def share(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def millis(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def scrape(ctx: DashboardContext) -> SampleHistory:
    """Scrape ``/metrics`` once into this session's history and return the history."""
    history: SampleHistory = st.session_state.setdefault("trajops_metrics", SampleHistory())
    text = load("live metrics (/metrics)", ctx.client.metrics_text)
    if text is not None:
        history.add(parse_metrics(text))
    return history


def zone() -> tzinfo:
    """The time zone times are shown in: the browser's (Streamlit reports it once the page has
    connected), else the dashboard process's local zone (``TZ``)."""
    name = st.context.timezone if hasattr(st.context, "timezone") else None
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return datetime.now().astimezone().tzinfo or ZoneInfo("UTC")


def when(value: datetime | str | None) -> str:
    """A stored moment as local time to the second (``YYYY-MM-DD HH:MM:SS``)."""
    return local_time(value, zone())


def chart(figure: Chart) -> None:
    """Draw a :class:`~trajops.dashboard.plots.Chart` across the page's width."""
    st.vega_lite_chart(figure.data, figure.spec, width="stretch")


def mlflow_links(ctx: DashboardContext) -> MlflowUi | None:
    """Links into the MLflow UI (``TRAJOPS_DASHBOARD_MLFLOW_UI_URL``, else an http(s) tracking
    URI); None: show versions and runs as plain text."""
    return mlflow_ui(
        ui_url=ctx.config.mlflow_ui_url,
        tracking_uri=ctx.config.tracking_uri,
        model_name=ctx.config.model_name,
    )


VERSION_LINK = r"/versions/(\d+)$"
"""``LinkColumn`` display text of a version URL: the version number."""
RUN_LINK = r"/runs/([0-9a-zA-Z]+)$"
"""``LinkColumn`` display text of a run URL: the run id."""


def version_column(label: str, links: MlflowUi | None) -> Any:
    """Column config of a version column: a link into MLflow when ``links`` is known."""
    if links is None:
        return st.column_config.TextColumn(label)
    return st.column_config.LinkColumn(label, display_text=VERSION_LINK)


def version_cell(version: Any, links: MlflowUi | None) -> str:
    """A version as the table shows it: ``v3``, or its MLflow URL when links are on."""
    if version in (None, ""):
        return "-"
    return f"v{version}" if links is None else links.version_url(version)


def version_markdown(version: Any, links: MlflowUi | None, text: str | None = None) -> str:
    """``v3`` (or ``text``) as Markdown: a link into MLflow when ``links`` is known."""
    label = text or f"v{version}"
    return label if links is None else f"[{label}]({links.version_url(version)})"


@st.cache_data(ttl=3600, show_spinner=False)
def _run_experiments(
    _ctx: DashboardContext, tracking_uri: str, run_ids: tuple[str, ...]
) -> dict[str, str]:
    return run_experiments(_ctx.registry(), run_ids)  # a run never changes experiment


def run_urls(ctx: DashboardContext, links: MlflowUi, run_ids: list[str | None]) -> list[str | None]:
    """The MLflow UI page of each run (None stays None)."""
    known = tuple(sorted({r for r in run_ids if r}))
    experiments = _run_experiments(ctx, ctx.config.tracking_uri, known) if known else {}
    return [None if r is None else links.run_url(r, experiments.get(r)) for r in run_ids]
