"""``AppState``: starlette's ``State`` with its entries also as plain attributes."""

from __future__ import annotations

from typing import Any

import pytest

from trajops.serving.app import AppState, create_app
from trajops.settings import Settings


class _CountingState(AppState):
    """Counts the reads that fall through to ``State.__getattr__``."""

    fallbacks = 0

    def __getattr__(self, key: str) -> Any:
        type(self).fallbacks += 1
        return super().__getattr__(key)


def test_entries_read_as_attributes_and_items_alike() -> None:
    state = AppState()
    state.service = "svc"
    state["monitor"] = "mon"
    assert (state.service, state.monitor) == ("svc", "mon")
    assert (state["service"], state["monitor"]) == ("svc", "mon")
    assert sorted(state) == ["monitor", "service"] and len(state) == 2
    state.service = "svc2"  # rebinding updates both views
    assert state.service == state["service"] == "svc2"
    del state.service
    del state["monitor"]
    assert len(state) == 0
    with pytest.raises(AttributeError, match="no attribute 'service'"):
        _ = state.service
    with pytest.raises(KeyError):
        _ = state["monitor"]
    assert getattr(state, "backpressure", None) is None  # the middleware's optional reads


def test_reads_do_not_fall_back_to_getattr() -> None:
    # State keeps entries in a dict behind __getattr__: every read failed the ordinary lookup
    # first. Entries of AppState are found by the ordinary lookup.
    state = _CountingState()
    state.service = object()
    for _ in range(10):
        _ = state.service
    assert _CountingState.fallbacks == 0
    assert getattr(state, "missing", None) is None and _CountingState.fallbacks == 1


def test_the_app_keeps_its_state_in_an_app_state(tmp_path: Any) -> None:
    app = create_app(Settings(home=tmp_path))
    assert type(app.state) is AppState
    assert app.state.settings.home == tmp_path
