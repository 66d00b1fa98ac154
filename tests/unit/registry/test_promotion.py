"""Gated promotion and rollback against a real SQLite MLflow registry (no mocks).

The module's registry (``template`` in ``conftest.py``) holds four real versions: constant
velocity (v1), a fitted ridge model (v2), the same ridge model with its intercept damaged by
0.5 m (v3) and a version whose forecaster artifact was deleted (v4); each test works on its
own copy of the database.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from trajops.errors import (
    ConflictError,
    ModelNotFoundError,
    PromotionRefused,
    TrackingUnavailable,
    ValidationError,
)
from trajops.registry.adapter import Registry
from trajops.registry.history import read_history
from trajops.registry.promotion import EvalSetConfig, promote, rollback
from trajops.settings import Settings

TOL = 0.02
EVAL = EvalSetConfig(n_scenes=1, n_agents=12, n_steps=100)


@pytest.fixture
def registry(gate_home: Path) -> Registry:
    return Registry.from_settings(Settings(home=gate_home))


def _promote(registry: Registry, version: int, **kw: object) -> object:
    return promote(registry, version=version, tolerance=TOL, config=EVAL, **kw)  # type: ignore[arg-type]


def test_first_promotion_passes_every_check_and_is_recorded(registry: Registry) -> None:
    result = promote(registry, version="v2", tolerance=TOL, reason="best", actor="ann", config=EVAL)
    assert result.changed and result.previous is None
    assert [c.name for c in result.checks] == ["loads", "smoke", "not_worse"]
    assert all(c.passed for c in result.checks)
    assert registry.aliases() == {"champion": 2}
    [event] = read_history(registry)
    assert (event.alias, event.action, event.to_version, event.actor, event.reason) == (
        "champion",
        "promote",
        2,
        "ann",
        "best",
    )
    assert registry.get_version(2).tags["gate.champion.passed"] == "True"


def test_worse_candidate_is_refused_and_nothing_changes(registry: Registry) -> None:
    _promote(registry, 2)
    with pytest.raises(PromotionRefused) as info:
        _promote(registry, 3)
    assert [d["loc"] for d in info.value.details] == [["checks", "not_worse"]]
    assert "tolerance 2.0%" in info.value.message
    assert registry.aliases() == {"champion": 2}
    assert len(read_history(registry)) == 1


def test_force_promotes_a_refused_candidate_and_records_it(registry: Registry) -> None:
    _promote(registry, 2)
    result = _promote(registry, 3, force=True, reason="hotfix")
    assert registry.aliases() == {"champion": 3}
    event = read_history(registry)[-1]
    assert event.forced and event.from_version == 2 and event.reason == "hotfix"
    assert {c["name"]: c["passed"] for c in event.checks}["not_worse"] is False
    assert result.champion_ade is not None and result.candidate_ade > result.champion_ade  # type: ignore[attr-defined]


def test_a_version_that_does_not_load_is_refused_even_with_force(registry: Registry) -> None:
    with pytest.raises(PromotionRefused, match="loads"):
        _promote(registry, 4)
    with pytest.raises(PromotionRefused, match="does not load"):
        _promote(registry, 4, force=True)
    assert registry.aliases() == {}
    assert read_history(registry) == []


def test_challenger_needs_no_accuracy_check_and_is_cleared_on_promotion(registry: Registry) -> None:
    _promote(registry, 2)
    result = _promote(registry, 3, alias="challenger")
    assert [c.name for c in result.checks] == ["loads", "smoke"]
    assert registry.aliases() == {"champion": 2, "challenger": 3}
    _promote(registry, 1, alias="challenger")
    _promote(registry, 1, force=True)  # cv is worse than ridge here: forced
    assert registry.aliases() == {"champion": 1}
    assert read_history(registry)[-1].action == "clear"


def test_rollback_restores_the_previous_champion_step_by_step(registry: Registry) -> None:
    _promote(registry, 1)
    _promote(registry, 2)
    _promote(registry, 3, force=True)
    assert rollback(registry, reason="bad ADE online").version == 2
    assert rollback(registry).version == 1
    with pytest.raises(ConflictError, match="no earlier champion"):
        rollback(registry)
    assert registry.aliases() == {"champion": 1}
    actions = [(e.action, e.from_version, e.to_version) for e in read_history(registry, "champion")]
    assert actions[-2:] == [("rollback", 3, 2), ("rollback", 2, 1)]


def test_promoting_the_current_champion_again_changes_nothing(registry: Registry) -> None:
    _promote(registry, 2)
    again = _promote(registry, 2)
    assert not again.changed
    assert len(read_history(registry)) == 1


def test_unknown_names_fail_clearly_and_leave_aliases(registry: Registry) -> None:
    _promote(registry, 2)
    with pytest.raises(ModelNotFoundError, match="no version 42"):
        _promote(registry, 42)
    with pytest.raises(ModelNotFoundError, match="no version with alias 'nope'"):
        registry.resolve("nope")
    with pytest.raises(ValidationError, match="unknown alias"):
        _promote(registry, 1, alias="production")
    with pytest.raises(ModelNotFoundError, match="not set"):
        rollback(registry, alias="challenger")
    assert registry.aliases() == {"champion": 2}
    assert registry.resolve("champion").version == 2


def test_an_unknown_registered_model_is_reported_as_such(registry: Registry) -> None:
    other = Registry(registry.client, "no-such-model")
    assert other.list_versions() == []
    with pytest.raises(ModelNotFoundError, match="no registered model 'no-such-model'"):
        other.resolve("champion")
    with pytest.raises(ModelNotFoundError):
        rollback(other)


def test_an_unreachable_tracking_server_fails_fast(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, tracking_uri="http://127.0.0.1:9")
    start = time.monotonic()
    with pytest.raises(TrackingUnavailable, match="unreachable"):
        Registry.from_settings(settings)
    assert time.monotonic() - start < 10
