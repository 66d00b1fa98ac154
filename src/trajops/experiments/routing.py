"""Routing of live traffic into the running experiment (used by the serving hot path).

:class:`ExperimentRouter` keeps the running experiment in memory and picks the arm of a
request from its unit id; :func:`exposure_row` builds the rows the asynchronous log writer
stores. With ``refresh_s`` set, :meth:`ExperimentRouter.route` re-reads the store when its copy
is older than that (scripts, jobs); the API passes ``refresh_s=None`` and calls
:meth:`~ExperimentRouter.refresh` from a background task instead, so the hot path never does
I/O. Either way every replica follows a stop or rollback within one refresh period.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from trajops.experiments.assignment import assign
from trajops.experiments.config import Arm, variant_name
from trajops.experiments.repository import ExperimentRecord, ExperimentRepository
from trajops.privacy.pseudonym import unit_hash


@dataclass(frozen=True)
class Route:
    """Where one request goes.

    Attributes:
        model_ref: the version (pinned at creation) or alias serving the request.
        variant: the prediction-log variant (``<arm>@<experiment id>``).
        shadow_ref / shadow_arm: the challenger scoring a copy of the request (shadow mode).
    """

    experiment_id: str
    arm: str
    model_ref: str
    variant: str
    unit_key: str
    shadow_arm: str | None = None
    shadow_ref: str | None = None


class ExperimentRouter:
    """Routes requests while an experiment runs; ``route`` returns None when none does."""

    def __init__(self, repository: ExperimentRepository, *, refresh_s: float | None = 2.0) -> None:
        self.repo = repository
        self.refresh_s = refresh_s
        self._current: ExperimentRecord | None = None
        self._loaded_at = -float("inf")

    def refresh(self) -> ExperimentRecord | None:
        """Re-read the running experiment from the store (blocking I/O)."""
        self._current = self.repo.running()
        self._loaded_at = time.monotonic()
        return self._current

    def current(self) -> ExperimentRecord | None:
        """The running experiment; re-read when stale and ``refresh_s`` is set."""
        if self.refresh_s is not None and time.monotonic() - self._loaded_at >= self.refresh_s:
            self.refresh()
        return self._current

    def invalidate(self) -> None:
        """Forget the cached experiment (after this process stopped or created one)."""
        self._loaded_at = -float("inf")

    @staticmethod
    def _ref(record: ExperimentRecord, arm: Arm) -> str:
        pinned = record.aliases_at_start.get("versions", {}).get(arm.name)
        return str(pinned) if pinned is not None else arm.model_ref

    def arm_refs(self) -> set[str]:
        """The references the running experiment's arms serve (versions pinned at start)."""
        record = self._current
        if record is None:
            return set()
        return {self._ref(record, arm) for arm in record.spec.arms}

    def route(self, unit_id: str | None) -> Route | None:
        """The arm for ``unit_id`` (agent, client or scene id, per the experiment's unit).

        Requests without a unit id go to the control and are not counted in the experiment.
        """
        record = self.current()
        if record is None or unit_id is None:
            return None
        spec = record.spec
        key = unit_hash(record.salt, unit_id)
        if spec.mode == "shadow":
            control, challenger = spec.arms[0], spec.arms[1]
            return Route(
                record.id,
                control.name,
                self._ref(record, control),
                variant_name(record.id, control.name),
                key,
                shadow_arm=challenger.name,
                shadow_ref=self._ref(record, challenger),
            )
        arm = assign(record.salt, unit_id, spec.arms)
        return Route(
            record.id, arm.name, self._ref(record, arm), variant_name(record.id, arm.name), key
        )


def exposure_row(
    route: Route,
    *,
    request_id: str,
    arm: str | None = None,
    shadow: bool = False,
    n_agents: int,
    latency_ms: float,
    error: bool = False,
    invalid: bool = False,
) -> dict[str, Any]:
    """One ``experiment_exposures`` row for the log writer (or :meth:`record_exposure`)."""
    return {
        "experiment_id": route.experiment_id,
        "arm": arm or route.arm,
        "shadow": shadow,
        "request_id": request_id,
        "unit_key": route.unit_key,
        "created_at": datetime.now(UTC),
        "n_agents": n_agents,
        "latency_ms": latency_ms,
        "error": error,
        "invalid": invalid,
    }
