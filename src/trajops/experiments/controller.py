"""The experiment controller: creating and stopping experiments, and acting on their status.

:meth:`ExperimentController.evaluate` is what runs on a schedule (inside the API or from
``trajops experiments status``): it takes the status (every arm's metrics, the tests and the
verdict, :mod:`trajops.experiments.status`), raises a sample-ratio-mismatch alert, and acts:
a guardrail breach or a significantly worse challenger rolls back (experiment stopped, all
traffic to the control, an alert, registry aliases restored if they moved); a significantly
better challenger is promoted through the registry's gate when the experiment allows it, else
the experiment stops with that verdict.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trajops.errors import ConflictError
from trajops.experiments.config import ExperimentSpec
from trajops.experiments.repository import ExperimentRecord, ExperimentRepository
from trajops.experiments.status import ExperimentStatus, better_arms, experiment_status
from trajops.monitoring.alerts import AlertManager, Signal
from trajops.settings import Settings
from trajops.store.db import Store

if TYPE_CHECKING:  # MLflow loads lazily
    from trajops.registry.adapter import Registry

log = logging.getLogger(__name__)

SRM_ALERT_P = 0.001
"""A sample-ratio-mismatch p-value below this raises the ``srm`` alert."""


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
        return experiment_status(self.repo, experiment_id)

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
            best = min((v for v in better_arms(st)), key=lambda t: t[1])[0]
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
