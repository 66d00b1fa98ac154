"""An experiment's status: per-arm metrics, sample-ratio check, statistical tests, verdict.

:func:`experiment_status` reads the arms' samples from the store and computes, per challenger,
Welch's t and Mann-Whitney U (and a paired t in shadow mode) for reporting, and the always-valid
mSPRT that decides the verdict; guardrail breaches are listed with it. It only reads: acting on
the verdict is :class:`~trajops.experiments.controller.ExperimentController`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np

from trajops._finite import finite
from trajops.experiments import guardrails as guard
from trajops.experiments.assignment import srm_p_value
from trajops.experiments.config import ExperimentSpec, variant_name
from trajops.experiments.repository import ArmSamples, ExperimentRecord, ExperimentRepository
from trajops.experiments.stats import (
    VERDICTS,
    SequentialResult,
    TestResult,
    Verdict,
    mann_whitney,
    msprt,
    paired_t,
    verdict,
    welch_t,
)


@dataclass(frozen=True)
class ExperimentStatus:
    """Everything ``status`` shows, and what the controller's ``evaluate`` decided (``action``)."""

    experiment: ExperimentRecord
    arms: list[dict[str, Any]]
    srm_p_value: float | None
    tests: dict[str, dict[str, Any]]
    verdict: Verdict
    breaches: list[guard.Breach] = field(default_factory=list)
    action: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (non-finite numbers become ``None``)."""
        return finite(
            {
                **self.experiment.to_dict(),
                "arms": self.arms,
                "srm_p_value": self.srm_p_value,
                "tests": self.tests,
                "verdict": self.verdict,
                "guardrail_breaches": [b.to_dict() for b in self.breaches],
                "action": self.action,
            }
        )


def _mean(x: np.ndarray) -> float | None:
    return float(x.mean()) if len(x) else None


def _arm_view(spec: ExperimentSpec, exp_id: str, name: str, s: ArmSamples) -> dict[str, Any]:
    arm = spec.arm(name)
    return {
        "name": name,
        "model_ref": arm.model_ref,
        "weight": arm.weight,
        "variant": variant_name(exp_id, name),
        "requests": s.requests,
        "units": s.units,
        "errors": s.errors,
        "error_rate": s.errors / s.requests if s.requests else None,
        "invalid_rate": s.invalid / s.requests if s.requests else None,
        "latency_p50_ms": float(np.percentile(s.latency_ms, 50)) if s.requests else None,
        "latency_p99_ms": guard.p99(s.latency_ms),
        "n_feedback": len(s.ade),
        "ade": _mean(s.ade),
        "fde": _mean(s.fde),
    }


def experiment_status(repository: ExperimentRepository, experiment_id: str) -> ExperimentStatus:
    """Arms with counts and metrics, SRM p-value, tests and the current verdict.

    Raises:
        NotFoundError: no experiment ``experiment_id``.
    """
    record = repository.get(experiment_id)
    spec = record.spec
    samples = repository.samples(record)
    arms = [_arm_view(spec, record.id, a.name, samples[a.name]) for a in spec.arms]
    srm = None
    if spec.mode == "split":
        srm = srm_p_value([samples[a.name].units for a in spec.arms], [a.weight for a in spec.arms])
    tests: dict[str, dict[str, Any]] = {}
    verdicts: list[tuple[str, Verdict, float]] = []
    expired = (datetime.now(UTC) - record.created_at).total_seconds() > spec.max_duration_s
    control = samples[spec.control.name]
    a = getattr(control, spec.metric)
    for arm in spec.challengers:
        b = getattr(samples[arm.name], spec.metric)
        arm_tests, seq = _tests(spec, a, b)
        tests[arm.name] = arm_tests
        v = verdict(
            seq,
            alpha=spec.alpha,
            min_samples=spec.min_samples,
            max_samples=spec.max_samples,
            expired=expired,
        )
        verdicts.append((arm.name, v, seq.effect))
    breaches = [
        br
        for arm in spec.challengers
        for br in guard.check(arm.name, samples[arm.name], spec.guardrails)
    ]
    overall = _combine(verdicts)
    if not record.active and record.verdict in VERDICTS:
        overall = cast(Verdict, record.verdict)  # an ended experiment keeps its verdict
    return ExperimentStatus(record, arms, srm, tests, overall, breaches)


def _tests(
    spec: ExperimentSpec, a: np.ndarray, b: np.ndarray
) -> tuple[dict[str, Any], SequentialResult]:
    out: dict[str, Any] = {}
    if spec.mode == "shadow" and len(a) == len(b) and len(a) >= 2:
        out["paired_t"] = paired_t(a, b, alpha=spec.alpha).to_dict()
        seq = msprt(b - a, alpha=spec.alpha, tau=spec.tau, scale=float(a.mean()) or None)
    else:
        seq = msprt(a, b, alpha=spec.alpha, tau=spec.tau)
    if len(a) >= 2 and len(b) >= 2:
        welch: TestResult = welch_t(a, b, alpha=spec.alpha)
        out["welch_t"] = welch.to_dict()
        out["mann_whitney_u"] = mann_whitney(a, b, alpha=spec.alpha).to_dict()
    out["msprt"] = seq.to_dict()
    return out, seq


def _combine(verdicts: list[tuple[str, Verdict, float]]) -> Verdict:
    found = {v for _, v, _ in verdicts}
    for v in ("challenger_worse", "continue", "challenger_better"):
        if v in found:
            return cast(Verdict, v)
    return "inconclusive"


def better_arms(st: ExperimentStatus) -> list[tuple[str, float]]:
    """Challengers significantly better than the control (mSPRT): ``(arm, effect)`` pairs."""
    return [
        (name, float(t["msprt"]["effect"]))
        for name, t in st.tests.items()
        if t["msprt"]["p_value"] <= st.experiment.spec.alpha and t["msprt"]["effect"] < 0
    ]
