"""Monitoring tasks: drift run, online accuracy, alert evaluation, and the retraining signal.

An hour without enough served traffic, or a system with no champion yet, is not a failure:
the drift task then returns ``skipped`` with the reason, and nothing downstream alerts.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from trajops.errors import ModelNotFoundError, NotEnoughData, ValidationError
from trajops.pipelines._workspace import pipeline_settings
from trajops.settings import Settings

if TYPE_CHECKING:  # the store, MLflow and Evidently load when a task runs: DAG files parse fast
    from trajops.monitoring.alerts import AlertManager
    from trajops.store.db import Store

JOB_RULES = ("accuracy_degradation",)
"""Rules :func:`evaluate_alerts` can measure outside the API (latency, errors and model
loads are measured by each API process itself; drift is alerted on by the drift task)."""
SUMMARY_KEYS = (
    "id",
    "model_version",
    "dataset_drift",
    "drifted_features",
    "alert",
    "alert_started",
    "n_current",
    "report_path",
)


@contextmanager
def _alerting(settings: Settings) -> Iterator[tuple[Store, AlertManager]]:
    from trajops.monitoring.alerts import AlertManager
    from trajops.monitoring.notifiers import notifiers_from_settings
    from trajops.store.db import Store

    store = Store(settings.resolved_database_url)  # raises ServiceUnavailable when down
    try:
        yield (
            store,
            AlertManager(
                store, notifiers_from_settings(settings), cooldown_s=settings.alert_cooldown_s
            ),
        )
    finally:
        store.dispose()


def drift(*, model: str = "champion", window: int | None = None) -> dict[str, Any]:
    """One drift run of recent served inputs against ``model``'s reference profile.

    Stores the report, and fires (or resolves) the persistent-drift alert.

    Returns:
        The report's ``id``, ``model_version``, ``dataset_drift``, ``drifted_features``,
        ``alert`` (drift persists), ``n_current`` and ``report_path``; or ``skipped`` with
        the reason and ``alert`` False.
    """
    from trajops.monitoring.drift_job import run_drift
    from trajops.monitoring.reference import load_reference
    from trajops.registry.adapter import ALIASES, Registry

    settings = pipeline_settings()
    registry = Registry.from_settings(settings)
    try:
        version = registry.resolve(model)
    except ModelNotFoundError as exc:
        if model not in ALIASES:  # a version or alias that does not exist: a real error
            raise
        return {"skipped": exc.message, "alert": False}  # nothing promoted yet
    reference = load_reference(registry, version.version)
    with _alerting(settings) as (store, alerts):
        try:
            summary = run_drift(
                settings,
                store,
                reference,
                model_version=str(version.version),
                window=window,
                alerts=alerts,
            )
        except NotEnoughData as exc:  # too little served traffic in the window
            return {"skipped": exc.message, "alert": False}
    return {k: summary[k] for k in SUMMARY_KEYS}


def drift_alert_raised(summary: Mapping[str, Any]) -> bool:
    """Whether this drift run started the persistent-drift alert (gates the retraining
    signal): drift that persists over later runs retrains once, not every hour."""
    return bool(summary.get("alert_started"))


def retraining_request(summary: Mapping[str, Any]) -> dict[str, Any]:
    """What the retraining signal carries: why, which report, which features."""
    return {
        "reason": "persistent input drift",
        "report_id": summary.get("id"),
        "model_version": summary.get("model_version"),
        "drifted_features": list(summary.get("drifted_features") or []),
    }


def online_accuracy(*, window_s: float = 3600.0) -> list[dict[str, Any]]:
    """Online ADE / FDE per model version and variant from the feedback of the last window.

    Raises:
        ValidationError: a non-positive window.
    """
    from trajops.monitoring.accuracy import online_performance
    from trajops.store.db import opened_store

    if window_s <= 0:
        raise ValidationError(f"window_s must be positive, got {window_s}")
    settings = pipeline_settings()
    with opened_store(settings.resolved_database_url) as store:
        return online_performance(store, window=timedelta(seconds=window_s))


def _per_version(rows: Sequence[Mapping[str, Any]]) -> dict[str, tuple[int, float]]:
    """Feedback count and ADE per model version (variants pooled, weighted by count)."""
    totals: dict[str, tuple[int, float]] = {}
    for row in rows:
        n, sum_ade = totals.get(str(row["model_version"]), (0, 0.0))
        totals[str(row["model_version"])] = (n + int(row["n"]), sum_ade + row["ade"] * row["n"])
    return {v: (n, s / n) for v, (n, s) in totals.items() if n > 0}


def evaluate_alerts(*, accuracy: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Compare online with offline ADE per version and fire or resolve accuracy alerts.

    Returns:
        ``evaluated`` signals, the keys ``firing`` and how many alerts were ``notified``.
    """
    from trajops.monitoring.alerts import HealthSnapshot, evaluate_rules
    from trajops.registry.adapter import Registry

    settings = pipeline_settings()
    online = _per_version(accuracy)
    offline: dict[str, float] = {}
    if online:
        registry = Registry.from_settings(settings)
        for version in online:
            try:
                found = registry.resolve(version).metrics
            except (ModelNotFoundError, ValidationError):
                continue  # a version deleted since (or a non-registry id): nothing to compare
            if "test_ade" in found:
                offline[version] = found["test_ade"]
    snapshot = HealthSnapshot(online_ade=online, offline_ade=offline)
    signals = [s for s in evaluate_rules(snapshot, settings) if s.rule in JOB_RULES]
    with _alerting(settings) as (_, alerts):
        notified = alerts.apply(signals)
    return {
        "evaluated": len(signals),
        "firing": sorted(s.key for s in signals if s.firing),
        "notified": len(notified),
    }
