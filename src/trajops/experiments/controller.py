"""The experiment controller: status with statistics, and the actions it leads to.

:meth:`ExperimentController.evaluate` is what runs on a schedule (inside the API or from
``trajops experiments status``): it computes every arm's metrics, the tests and the verdict,
raises a sample-ratio-mismatch alert, and acts: a guardrail breach or a significantly worse
challenger rolls back (experiment stopped, all traffic to the control, an alert, registry
aliases restored if they moved); a significantly better challenger is promoted through the
registry's gate when the experiment allows it, else the experiment stops with that verdict.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from trajops.errors import ConflictError
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
from trajops.monitoring.alerts import AlertManager, Signal
from trajops.settings import Settings
from trajops.store.db import Store

if TYPE_CHECKING:  # MLflow loads lazily
    from trajops.registry.adapter import Registry

log = logging.getLogger(__name__)

SRM_ALERT_P = 0.001
"""A sample-ratio-mismatch p-value below this raises the ``srm`` alert."""


@dataclass(frozen=True)
class ExperimentStatus:
    """Everything ``status`` shows, and what :meth:`ExperimentController.evaluate` decided."""

    experiment: ExperimentRecord
    arms: list[dict[str, Any]]
    srm_p_value: float | None
    tests: dict[str, dict[str, Any]]
    verdict: Verdict
    breaches: list[guard.Breach] = field(default_factory=list)
    action: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (non-finite numbers become ``None``)."""
        return _finite(
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


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


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


class ExperimentController:
    """Creates experiments, reports on them and acts on their verdict.

    Args:
        repository: experiments in the operational store.
        alerts: where ``srm`` and ``experiment_rollback`` alerts go (None: logged only).
        registry: the model registry (None: no alias snapshot, restore or promotion).
        promotion_tolerance: the promotion gate's tolerance.
        eval_data: the promotion gate's evaluation data (None: its simulated set).
    """

    def __init__(
        self,
        repository: ExperimentRepository,
        *,
        alerts: AlertManager | None = None,
        registry: Registry | None = None,
        promotion_tolerance: float = 0.02,
        eval_data: Path | None = None,
        actor: str | None = None,
    ) -> None:
        self.repo = repository
        self.alerts = alerts
        self.registry = registry
        self.promotion_tolerance = promotion_tolerance
        self.eval_data = eval_data
        self.actor = actor

    @classmethod
    def from_settings(
        cls, settings: Settings, store: Store, *, registry: Registry | None = None
    ) -> ExperimentController:
        """A controller on ``store`` with the configured notifiers and promotion tolerance."""
        from trajops.monitoring.notifiers import notifiers_from_settings

        alerts = AlertManager(
            store, notifiers_from_settings(settings), cooldown_s=settings.alert_cooldown_s
        )
        return cls(
            ExperimentRepository(store),
            alerts=alerts,
            registry=registry,
            promotion_tolerance=settings.promotion_tolerance,
        )

    # --- lifecycle ------------------------------------------------------------------
    def create(self, spec: ExperimentSpec) -> ExperimentRecord:
        """Store a running experiment; arms are resolved (and pinned) in the registry.

        Raises:
            ModelNotFoundError: an arm names an unknown alias or version.
            ConflictError: another experiment is running.
        """
        snapshot: dict[str, Any] = {"aliases": {}, "versions": {}}
        if self.registry is not None:
            for arm in spec.arms:
                snapshot["versions"][arm.name] = self.registry.resolve(arm.model_ref).version
            snapshot["aliases"] = self.registry.aliases()
        return self.repo.create(spec, aliases=snapshot)

    def stop(self, experiment_id: str, *, reason: str = "stopped by hand") -> ExperimentRecord:
        """End a running experiment without acting on the registry."""
        record = self.repo.get(experiment_id)
        return self.repo.end(experiment_id, status="stopped", verdict=record.verdict, reason=reason)

    def rollback(
        self, experiment_id: str, *, reason: str, verdict_now: str | None = None
    ) -> ExperimentRecord:
        """Stop, send all traffic to the control, alert, and restore moved aliases."""
        record = self.repo.get(experiment_id)
        restored = self._restore_aliases(record, reason)
        if restored:
            reason = f"{reason}; restored {', '.join(f'{a}->v{v}' for a, v in restored.items())}"
        ended = self.repo.end(
            experiment_id,
            status="rolled_back",
            verdict=verdict_now or record.verdict,
            reason=reason,
        )
        self._alert(
            Signal(
                "experiment_rollback",
                f"experiment:{experiment_id}",
                True,
                f"experiment {experiment_id} ({record.spec.name!r}) rolled back: {reason}",
                severity="critical",
                context={"experiment_id": experiment_id, "restored": restored},
            )
        )
        return ended

    def promote(
        self, experiment_id: str, *, arm: str | None = None, force: bool = False
    ) -> ExperimentRecord:
        """Promote a challenger arm's version to ``champion`` through the registry's gate.

        Raises:
            ConflictError: no registry, or the experiment was rolled back.
            PromotionRefused: the gate refused (and ``force`` is off).
        """
        from trajops.registry.promotion import promote

        record = self.repo.get(experiment_id)
        if self.registry is None:
            raise ConflictError("promotion needs the model registry")
        if record.status == "rolled_back":
            raise ConflictError(f"experiment {experiment_id} was rolled back; nothing to promote")
        chosen = record.spec.arm(arm) if arm else record.spec.challengers[0]
        version = record.aliases_at_start.get("versions", {}).get(chosen.name, chosen.model_ref)
        result = promote(
            self.registry,
            version=version,
            alias="champion",
            tolerance=self.promotion_tolerance,
            force=force,
            reason=f"experiment {experiment_id} ({record.spec.name}): {record.verdict}",
            actor=self.actor,
            eval_data=self.eval_data,
        )
        if record.active:
            self.repo.end(
                experiment_id, status="stopped", verdict=record.verdict, reason="promoting"
            )
        return self.repo.mark_promoted(
            experiment_id, f"arm {chosen.name!r} v{result.version} promoted"
        )

    # --- status and decisions --------------------------------------------------------
    def status(self, experiment_id: str) -> ExperimentStatus:
        """Arms with counts and metrics, SRM p-value, tests and the current verdict."""
        record = self.repo.get(experiment_id)
        spec = record.spec
        samples = self.repo.samples(record)
        arms = [_arm_view(spec, record.id, a.name, samples[a.name]) for a in spec.arms]
        srm = None
        if spec.mode == "split":
            srm = srm_p_value(
                [samples[a.name].units for a in spec.arms], [a.weight for a in spec.arms]
            )
        tests: dict[str, dict[str, Any]] = {}
        verdicts: list[tuple[str, Verdict, float]] = []
        expired = (datetime.now(UTC) - record.created_at).total_seconds() > spec.max_duration_s
        control = samples[spec.control.name]
        a = getattr(control, spec.metric)
        for arm in spec.challengers:
            b = getattr(samples[arm.name], spec.metric)
            arm_tests, seq = self._tests(spec, a, b)
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

    @staticmethod
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

    def evaluate(self, experiment_id: str) -> ExperimentStatus:
        """Compute the status and act on it (see the module docstring); returns what it did."""
        st = self.status(experiment_id)
        record = st.experiment
        if st.srm_p_value is not None:
            firing = st.srm_p_value < SRM_ALERT_P
            self._alert(
                Signal(
                    "srm",
                    f"experiment:{record.id}",
                    firing,
                    f"experiment {record.id}: sample ratio mismatch, p = {st.srm_p_value:.2g}",
                    severity="critical",
                    context={"experiment_id": record.id, "srm_p_value": st.srm_p_value},
                ),
                resolve=not firing,
            )
        if not record.active:
            return st
        action: str | None = None
        if st.breaches:
            reason = "guardrail breach: " + "; ".join(b.message for b in st.breaches)
            self.rollback(record.id, reason=reason, verdict_now=st.verdict)
            action = "rolled_back"
        elif st.verdict == "challenger_worse":
            self.rollback(
                record.id, reason="challenger significantly worse (mSPRT)", verdict_now=st.verdict
            )
            action = "rolled_back"
        elif (
            st.verdict == "challenger_better"
            and record.spec.auto_promote
            and self.registry is not None
        ):
            self.repo.set_verdict(record.id, st.verdict)
            best = min((v for v in _better(st)), key=lambda t: t[1])[0]
            self.promote(record.id, arm=best)
            action = "promoted"
        elif st.verdict in ("challenger_better", "inconclusive"):
            self.repo.end(
                record.id, status="stopped", verdict=st.verdict, reason=f"verdict {st.verdict}"
            )
            action = "stopped"
        else:
            self.repo.set_verdict(record.id, st.verdict)
        if action is None:
            return st
        return ExperimentStatus(
            self.repo.get(record.id),
            st.arms,
            st.srm_p_value,
            st.tests,
            st.verdict,
            st.breaches,
            action,
        )

    # --- helpers ---------------------------------------------------------------------
    def _restore_aliases(self, record: ExperimentRecord, reason: str) -> dict[str, int]:
        if self.registry is None:
            return {}
        from trajops.registry.history import AliasEvent, record_event

        before: dict[str, int] = {
            k: int(v) for k, v in record.aliases_at_start.get("aliases", {}).items()
        }
        now = self.registry.aliases()
        restored: dict[str, int] = {}
        for alias, version in before.items():
            if now.get(alias) == version:
                continue
            self.registry.set_alias(alias, version)
            record_event(
                self.registry,
                AliasEvent.now(
                    alias=alias,
                    action="rollback",
                    from_version=now.get(alias),
                    to_version=version,
                    reason=f"experiment {record.id} rolled back: {reason}",
                    actor=self.actor,
                ),
            )
            restored[alias] = version
        return restored

    def _alert(self, signal: Signal, *, resolve: bool = False) -> None:
        if self.alerts is None:
            if signal.firing:
                log.warning("%s", signal.message)
            return
        if resolve:
            self.alerts.resolve(signal.rule, signal.key)
        else:
            self.alerts.fire(signal)


def _combine(verdicts: list[tuple[str, Verdict, float]]) -> Verdict:
    found = {v for _, v, _ in verdicts}
    for v in ("challenger_worse", "continue", "challenger_better"):
        if v in found:
            return cast(Verdict, v)
    return "inconclusive"


def _better(st: ExperimentStatus) -> list[tuple[str, float]]:
    return [
        (name, float(t["msprt"]["effect"]))
        for name, t in st.tests.items()
        if t["msprt"]["p_value"] <= st.experiment.spec.alpha and t["msprt"]["effect"] < 0
    ]
