"""Alert rules and their state: de-duplication, cool-down, resolution, notification."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from trajops.monitoring.notifiers import Notifier
from trajops.settings import Settings
from trajops.store.db import Store
from trajops.store.models import Alert

RULES = (
    "drift",
    "accuracy_degradation",
    "latency_p99",
    "error_rate",
    "model_load_failure",
    "srm",
    "experiment_rollback",
    "pipeline_failure",  # raised by the Airflow failure callback (pipelines.failure)
)


@dataclass(frozen=True)
class Signal:
    """One rule's verdict for one key (e.g. a model version)."""

    rule: str
    key: str
    firing: bool
    message: str
    severity: str = "warning"
    context: dict[str, Any] = field(default_factory=dict)


@dataclass
class HealthSnapshot:
    """What the rules look at; ``None`` means 'not measured', which never fires."""

    drift_persistent: bool | None = None
    drifted_features: list[str] = field(default_factory=list)
    online_ade: dict[str, tuple[int, float]] = field(default_factory=dict)
    """model version -> (n feedback, online ADE)."""
    offline_ade: dict[str, float] = field(default_factory=dict)
    """model version -> ADE logged at training."""
    p99_latency_ms: float | None = None
    error_rate: float | None = None
    model_load_failures: int = 0


def evaluate_rules(snapshot: HealthSnapshot, settings: Settings) -> list[Signal]:
    """Turn a health snapshot into firing / resolved signals, one per rule and key."""
    out: list[Signal] = []
    if snapshot.drift_persistent is not None:
        out.append(
            Signal(
                "drift",
                "inputs",
                snapshot.drift_persistent,
                f"input drift persists in features {', '.join(snapshot.drifted_features) or '-'}",
                context={"drifted_features": snapshot.drifted_features},
            )
        )
    for version, (n, online) in snapshot.online_ade.items():
        offline = snapshot.offline_ade.get(version)
        if offline is None or n < settings.alert_min_feedback:
            continue
        ratio = online / offline if offline > 0 else float("inf")
        out.append(
            Signal(
                "accuracy_degradation",
                f"version:{version}",
                ratio > settings.alert_ade_ratio,
                f"online ADE {online:.3f} m is {ratio:.2f}x the offline {offline:.3f} m (n={n})",
                severity="critical",
                context={"n": n, "online_ade": online, "offline_ade": offline, "ratio": ratio},
            )
        )
    if snapshot.p99_latency_ms is not None:
        out.append(
            Signal(
                "latency_p99",
                "predict",
                snapshot.p99_latency_ms > settings.alert_p99_latency_ms,
                f"p99 latency {snapshot.p99_latency_ms:.1f} ms (limit {settings.alert_p99_latency_ms:.0f} ms)",
                context={"p99_latency_ms": snapshot.p99_latency_ms},
            )
        )
    if snapshot.error_rate is not None:
        out.append(
            Signal(
                "error_rate",
                "api",
                snapshot.error_rate > settings.alert_error_rate,
                f"error rate {snapshot.error_rate:.1%} (limit {settings.alert_error_rate:.1%})",
                severity="critical",
                context={"error_rate": snapshot.error_rate},
            )
        )
    out.append(
        Signal(
            "model_load_failure",
            "pool",
            snapshot.model_load_failures > 0,
            f"{snapshot.model_load_failures} model load failure(s)",
            severity="critical",
            context={"failures": snapshot.model_load_failures},
        )
    )
    return out


class AlertManager:
    """Keeps alert state in the store and notifies on new alerts and after each cool-down."""

    def __init__(self, store: Store, notifiers: list[Notifier], *, cooldown_s: float) -> None:
        self.store = store
        self.notifiers = notifiers
        self.cooldown_s = cooldown_s
        self._last_notified: dict[tuple[str, str], float] = {}

    def apply(self, signals: list[Signal]) -> list[dict[str, Any]]:
        """Fire or resolve each signal; returns the alerts that were notified."""
        notified = []
        for signal in signals:
            alert = self.fire(signal) if signal.firing else self.resolve(signal.rule, signal.key)
            if alert is not None and alert.get("notified"):
                notified.append(alert)
        return notified

    def fire(self, signal: Signal) -> dict[str, Any]:
        now = datetime.now(UTC)
        with self.store.session() as session:
            row = session.execute(
                select(Alert).where(
                    Alert.rule == signal.rule, Alert.key == signal.key, Alert.status == "firing"
                )
            ).scalar_one_or_none()
            if row is None:
                row = Alert(
                    rule=signal.rule,
                    key=signal.key,
                    severity=signal.severity,
                    status="firing",
                    message=signal.message,
                    first_seen=now,
                    last_seen=now,
                    count=1,
                    context=signal.context,
                )
                session.add(row)
            else:
                row.last_seen, row.message, row.context = now, signal.message, signal.context
                row.count += 1
            session.flush()
            alert = _to_dict(row)
        ident = (signal.rule, signal.key)
        last = self._last_notified.get(ident)
        due = last is None or time.monotonic() - last >= self.cooldown_s
        if due:
            self._last_notified[ident] = time.monotonic()
            for notifier in self.notifiers:
                notifier.send(alert)
        return {**alert, "notified": due}

    def resolve(self, rule: str, key: str) -> dict[str, Any] | None:
        with self.store.session() as session:
            row = session.execute(
                select(Alert).where(Alert.rule == rule, Alert.key == key, Alert.status == "firing")
            ).scalar_one_or_none()
            if row is None:
                return None
            row.status, row.last_seen = "resolved", datetime.now(UTC)
            alert = _to_dict(row)
        self._last_notified.pop((rule, key), None)
        for notifier in self.notifiers:
            notifier.send(alert)
        return {**alert, "notified": True}

    def list(self, *, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        stmt = select(Alert).order_by(Alert.last_seen.desc()).limit(limit)
        if status:
            stmt = stmt.where(Alert.status == status)
        with self.store.session() as session:
            return [_to_dict(r) for r in session.execute(stmt).scalars()]


def _to_dict(row: Alert) -> dict[str, Any]:
    return {
        "id": row.id,
        "rule": row.rule,
        "key": row.key,
        "severity": row.severity,
        "status": row.status,
        "message": row.message,
        "first_seen": row.first_seen.isoformat(),
        "last_seen": row.last_seen.isoformat(),
        "count": row.count,
        "context": row.context,
    }
