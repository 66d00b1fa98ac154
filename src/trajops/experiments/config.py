"""Experiment definitions: arms, mode, assignment unit, statistics and guardrail settings.

Everything here is a frozen dataclass validated on construction, so a bad definition fails
with a :class:`~trajops.errors.ValidationError` naming the field before anything is stored.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from trajops.errors import ValidationError

Mode = Literal["split", "shadow"]
Unit = Literal["agent", "client", "scene"]
MODES: tuple[str, ...] = ("split", "shadow")
UNITS: tuple[str, ...] = ("agent", "client", "scene")
METRICS: tuple[str, ...] = ("ade", "fde")
_ARM_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,23}$")
_ARM_SPEC = re.compile(r"^(?P<name>[^=]+)=(?P<ref>[^:]+)(?::(?P<weight>.+))?$")


def _invalid(loc: str, msg: str) -> ValidationError:
    return ValidationError(
        f"invalid experiment: {loc}: {msg}", details=[{"loc": [loc], "msg": msg}]
    )


@dataclass(frozen=True)
class Arm:
    """One arm: a name, the model it serves (alias or version) and its traffic weight."""

    name: str
    model_ref: str
    weight: float = 50.0

    def __post_init__(self) -> None:
        if not _ARM_NAME.match(self.name):
            raise _invalid("arms", f"arm name {self.name!r} must match {_ARM_NAME.pattern}")
        if not self.model_ref.strip():
            raise _invalid("arms", f"arm {self.name!r} has no model reference")
        if not (self.weight >= 0 and self.weight < float("inf")):
            raise _invalid("arms", f"arm {self.name!r} weight must be >= 0, got {self.weight}")


def parse_arm(text: str) -> Arm:
    """Parse ``name=model_ref[:weight]`` (e.g. ``control=champion:50``).

    Raises:
        ValidationError: the text does not have that shape or the weight is not a number.
    """
    match = _ARM_SPEC.match(text.strip())
    if match is None:
        raise _invalid("arm", f"{text!r} is not name=alias_or_version[:weight]")
    weight_text = match.group("weight")
    try:
        weight = float(weight_text) if weight_text is not None else 50.0
    except ValueError:
        raise _invalid("arm", f"weight {weight_text!r} of {text!r} is not a number") from None
    return Arm(match.group("name").strip(), match.group("ref").strip(), weight)


@dataclass(frozen=True)
class Guardrails:
    """Limits the challenger must respect; a breach stops the experiment and rolls back."""

    p99_latency_ms: float = 250.0
    error_rate: float = 0.02
    invalid_rate: float = 0.01
    """Share of requests whose forecast holds NaN/inf or implausible positions."""
    min_requests: int = 50
    """Requests an arm must have served before its guardrails are judged."""

    def __post_init__(self) -> None:
        if self.p99_latency_ms <= 0:
            raise _invalid("guardrails.p99_latency_ms", "must be > 0")
        for name in ("error_rate", "invalid_rate"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise _invalid(f"guardrails.{name}", f"must be in [0, 1], got {value}")
        if self.min_requests < 1:
            raise _invalid("guardrails.min_requests", "must be >= 1")


@dataclass(frozen=True)
class ExperimentSpec:
    """What an experiment compares and how it decides.

    The first arm is the control, every other arm a challenger. ``tau`` is the standard
    deviation of the mSPRT's normal mixing prior on the difference of means, as a fraction of
    the control's mean (0.1: effects around 10 % of the control's ADE are what we look for).
    """

    name: str
    arms: tuple[Arm, ...]
    mode: Mode = "split"
    unit: Unit = "agent"
    metric: str = "ade"
    alpha: float = 0.05
    min_samples: int = 100
    """Scored feedback each arm needs before any verdict other than ``continue``."""
    max_samples: int = 20_000
    """Scored feedback per arm after which an undecided experiment is ``inconclusive``."""
    max_duration_s: float = 7 * 24 * 3600.0
    auto_promote: bool = False
    tau: float = 0.1
    guardrails: Guardrails = field(default_factory=Guardrails)

    def __post_init__(self) -> None:
        if not self.name.strip() or len(self.name) > 200:
            raise _invalid("name", "must be 1..200 characters")
        if len(self.arms) < 2:
            raise _invalid("arms", "need a control and at least one challenger")
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names):
            raise _invalid("arms", f"arm names must be unique, got {names}")
        if self.mode not in MODES:
            raise _invalid("mode", f"expected one of {', '.join(MODES)}, got {self.mode!r}")
        if self.unit not in UNITS:
            raise _invalid("unit", f"expected one of {', '.join(UNITS)}, got {self.unit!r}")
        if self.metric not in METRICS:
            raise _invalid("metric", f"expected one of {', '.join(METRICS)}, got {self.metric!r}")
        if self.mode == "split" and sum(a.weight for a in self.arms) <= 0:
            raise _invalid("arms", "weights must add up to more than 0")
        if self.mode == "shadow" and len(self.arms) != 2:
            raise _invalid("arms", "shadow mode compares exactly one control and one challenger")
        if not 0 < self.alpha < 0.5:
            raise _invalid("alpha", f"must be in (0, 0.5), got {self.alpha}")
        if self.min_samples < 2:
            raise _invalid("min_samples", "must be >= 2")
        if self.max_samples < self.min_samples:
            raise _invalid("max_samples", "must be >= min_samples")
        if self.max_duration_s <= 0:
            raise _invalid("max_duration_s", "must be > 0")
        if self.tau <= 0:
            raise _invalid("tau", "must be > 0")

    @property
    def control(self) -> Arm:
        return self.arms[0]

    @property
    def challengers(self) -> tuple[Arm, ...]:
        return self.arms[1:]

    def arm(self, name: str) -> Arm:
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise _invalid("arm", f"no arm named {name!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentSpec:
        """Rebuild a spec from :meth:`to_dict` output (as stored)."""
        data = dict(data)
        data["arms"] = tuple(Arm(**a) for a in data["arms"])
        data["guardrails"] = Guardrails(**data.get("guardrails", {}))
        return cls(**data)


def variant_name(experiment_id: str, arm: str) -> str:
    """The prediction-log ``variant`` of an arm: unique across experiments, <= 64 chars."""
    return f"{arm}@{experiment_id}"


def parse_variant(variant: str) -> tuple[str, str] | None:
    """``(experiment_id, arm)`` of a variant made by :func:`variant_name`, else ``None``."""
    arm, sep, exp = variant.partition("@")
    return (exp, arm) if sep and arm and exp else None
