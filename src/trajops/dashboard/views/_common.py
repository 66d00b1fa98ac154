"""Helpers shared by the pages: guarded loads and number formats."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st

from trajops.dashboard.context import DashboardContext
from trajops.dashboard.live import SampleHistory, parse_metrics
from trajops.errors import TrajopsError

T = TypeVar("T")


def load(what: str, read: Callable[[], T]) -> T | None:
    """``read()``, or a warning naming ``what`` failed and why (the rest of the page renders)."""
    try:
        return read()
    except TrajopsError as exc:
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
