"""The alias history: replay rules, and durable storage in a real SQLite MLflow registry."""

from __future__ import annotations

import json

import pytest

from trajops.registry.adapter import Registry
from trajops.registry.history import (
    EVENT_TAG_PREFIX,
    AliasEvent,
    lineage,
    previous_version,
    read_history,
    record_event,
)
from trajops.settings import Settings


def _event(
    action: str, to: int | None, frm: int | None = None, alias: str = "champion"
) -> AliasEvent:
    return AliasEvent.now(alias=alias, action=action, from_version=frm, to_version=to, actor="t")  # type: ignore[arg-type]


def test_promotions_stack_and_rollbacks_walk_back() -> None:
    events = [_event("promote", 1), _event("promote", 2, 1), _event("promote", 3, 2)]
    assert lineage(events, "champion") == [1, 2, 3]
    assert previous_version(events, "champion", 3) == 2
    events.append(_event("rollback", 2, 3))
    assert lineage(events, "champion") == [1, 2]
    assert previous_version(events, "champion", 2) == 1  # a second rollback goes further back
    events.append(_event("rollback", 1, 2))
    assert previous_version(events, "champion", 1) is None


def test_the_version_held_before_history_began_is_the_first_rollback_target() -> None:
    events = [_event("promote", 2, 1)]  # v1 was champion before trajops recorded anything
    assert lineage(events, "champion") == [1, 2]
    assert previous_version(events, "champion", 2) == 1


def test_repromoted_version_and_other_aliases_are_handled() -> None:
    events = [
        _event("promote", 1),
        _event("promote", 5, alias="challenger"),
        _event("promote", 2, 1),
        _event("promote", 1, 2),
    ]
    assert lineage(events, "champion") == [1, 2, 1]
    assert previous_version(events, "champion", 1) == 2
    assert lineage(events, "challenger") == [5]


def test_clear_forgets_and_outside_moves_fall_back_to_last_origin() -> None:
    events = [_event("promote", 1), _event("promote", 2, 1), _event("clear", None, 2)]
    assert lineage(events, "champion") == []
    # The alias now points at 7, set outside trajops: the last recorded origin is the answer.
    assert previous_version(events, "champion", 7) == 2


def test_events_are_stored_as_model_tags_and_survive_a_new_client(
    embedded_settings: Settings,
) -> None:
    registry = Registry.from_settings(embedded_settings)
    assert read_history(registry) == []
    registry.ensure()
    first = AliasEvent.now(
        alias="champion",
        action="promote",
        from_version=None,
        to_version=1,
        reason="go",
        actor="ann",
    )
    second = AliasEvent.now(
        alias="challenger", action="promote", from_version=None, to_version=2, actor="bob"
    )
    key = record_event(registry, first)
    record_event(registry, second)
    registry.set_model_tag(f"{EVENT_TAG_PREFIX}0000000000000-bad", "{not json")

    assert key.startswith(EVENT_TAG_PREFIX)
    assert json.loads(registry.model_tags()[key])["actor"] == "ann"
    fresh = Registry.from_settings(Settings(home=embedded_settings.home))
    history = read_history(fresh)
    assert [e.to_version for e in history] == [1, 2]  # chronological; the broken tag is skipped
    assert history[0] == first
    assert [e.actor for e in read_history(fresh, "challenger")] == ["bob"]


@pytest.mark.parametrize("bad", [{"alias": "champion"}, {"action": "promote"}])
def test_from_dict_rejects_incomplete_events(bad: dict[str, str]) -> None:
    with pytest.raises(KeyError):
        AliasEvent.from_dict(bad)
