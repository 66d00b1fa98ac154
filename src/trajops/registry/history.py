"""The alias history: every move of ``champion`` / ``challenger``, who did it, when and why.

Where it lives: one *registered-model tag* per event, key ``trajops.alias_event.<ms>-<rand>``,
value the event as JSON. Tags live in the tracking backend itself (the SQLite file of the
embedded default, PostgreSQL behind an ``mlflow server`` in production), so the history is as
durable as the registry, is shared by every client of the server, and needs no extra store.
The key's millisecond timestamp orders events; the random suffix keeps two clients that write
in the same millisecond from overwriting each other.

Rollback replays the history of an alias as a stack: a promotion pushes the new version, a
rollback pops the current one, so repeated rollbacks walk further back in time.
"""

from __future__ import annotations

import getpass
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from trajops.registry.adapter import Registry

EVENT_TAG_PREFIX = "trajops.alias_event."
"""Prefix of the registered-model tags holding alias events."""

Action = Literal["promote", "rollback", "clear"]


def current_actor() -> str:
    """Who is acting: ``TRAJOPS_ACTOR`` if set (CI, Airflow), else the OS user."""
    actor = os.environ.get("TRAJOPS_ACTOR")
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return "unknown"


@dataclass(frozen=True)
class AliasEvent:
    """One move of one alias.

    Attributes:
        alias: ``champion`` or ``challenger``.
        action: ``promote`` (gated or forced), ``rollback`` or ``clear`` (alias removed).
        from_version: the version the alias pointed at before (None: unset).
        to_version: the version it points at after (None: removed).
        actor: who moved it.
        at: when, ISO 8601 UTC.
        reason: why, as given by the actor.
        forced: the promotion gate was bypassed with ``--force``.
        checks: the gate's checks (``{"name", "passed", "message"}``), empty for rollbacks.
    """

    alias: str
    action: Action
    from_version: int | None
    to_version: int | None
    actor: str
    at: str
    reason: str = ""
    forced: bool = False
    checks: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def now(
        cls,
        *,
        alias: str,
        action: Action,
        from_version: int | None,
        to_version: int | None,
        reason: str = "",
        forced: bool = False,
        checks: list[dict[str, Any]] | None = None,
        actor: str | None = None,
    ) -> AliasEvent:
        """An event happening now, by ``actor`` (default: :func:`current_actor`)."""
        return cls(
            alias=alias,
            action=action,
            from_version=from_version,
            to_version=to_version,
            actor=actor or current_actor(),
            at=datetime.now(UTC).isoformat(timespec="milliseconds"),
            reason=reason,
            forced=forced,
            checks=list(checks or []),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AliasEvent:
        return cls(
            alias=str(data["alias"]),
            action=data["action"],
            from_version=None if data.get("from_version") is None else int(data["from_version"]),
            to_version=None if data.get("to_version") is None else int(data["to_version"]),
            actor=str(data.get("actor", "unknown")),
            at=str(data.get("at", "")),
            reason=str(data.get("reason", "")),
            forced=bool(data.get("forced", False)),
            checks=list(data.get("checks", [])),
        )


def record_event(registry: Registry, event: AliasEvent) -> str:
    """Append ``event`` to the history of ``registry``'s model; returns the tag key."""
    key = f"{EVENT_TAG_PREFIX}{time.time_ns() // 1_000_000:013d}-{secrets.token_hex(3)}"
    registry.set_model_tag(key, json.dumps(event.to_dict(), sort_keys=True))
    return key


def read_history(registry: Registry, alias: str | None = None) -> list[AliasEvent]:
    """Every recorded event, oldest first; only those of ``alias`` when given."""
    if not registry.exists():
        return []
    tags = registry.model_tags()
    events = []
    for key in sorted(k for k in tags if k.startswith(EVENT_TAG_PREFIX)):
        try:
            event = AliasEvent.from_dict(json.loads(tags[key]))
        except (ValueError, KeyError, TypeError):
            continue  # a hand-edited or foreign tag must not break the history
        if alias is None or event.alias == alias:
            events.append(event)
    return events


def lineage(events: list[AliasEvent], alias: str) -> list[int]:
    """The stack of versions ``alias`` has held, oldest first, replaying promotions and rollbacks.

    A promotion pushes its version; a rollback pops back to its target; a clear empties the
    stack (there is nothing to roll back to after the alias was removed on purpose).
    """
    stack: list[int] = []
    for event in events:
        if event.alias != alias:
            continue
        if event.action == "promote" and event.to_version is not None:
            if not stack and event.from_version is not None:  # held before history began
                stack.append(event.from_version)
            stack.append(event.to_version)
        elif event.action == "rollback":
            while stack and stack[-1] != event.to_version:
                stack.pop()
            if not stack and event.to_version is not None:
                stack.append(event.to_version)
        elif event.action == "clear":
            stack.clear()
    return stack


def previous_version(events: list[AliasEvent], alias: str, current: int | None) -> int | None:
    """The version ``alias`` held before ``current``, per the history; None if there is none."""
    stack = lineage(events, alias)
    if current is not None and stack and stack[-1] == current:
        earlier = [v for v in stack[:-1] if v != current]
        return earlier[-1] if earlier else None
    # The alias was moved outside trajops: fall back to the last recorded origin.
    for event in reversed(events):
        if event.alias == alias and event.from_version not in (None, current):
            return event.from_version
    return None
