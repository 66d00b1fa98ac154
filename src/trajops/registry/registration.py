"""Registering a trained model: a new version of ``settings.model_name`` with its lineage tags.

A version carries the training run id, the training data digest, the model type, the trajops
version and the run's headline test metrics (``metric.*`` tags, read back by
:attr:`~trajops.registry.adapter.ModelVersionInfo.metrics`).
"""

from __future__ import annotations

from trajops import __version__
from trajops.registry.adapter import METRIC_TAG_PREFIX, Registry
from trajops.settings import Settings
from trajops.tracking.artifacts import MIN_OF_K

VERSION_METRICS = ("test_ade", "test_fde", f"test_min_ade_{MIN_OF_K}", "val_ade")
"""Metrics copied onto a registered version as ``metric.*`` tags."""


def register(
    settings: Settings,
    *,
    model_id: str,
    run_id: str,
    model: str,
    digest: str,
    metrics: dict[str, float],
) -> int:
    """Register a logged model as a new version of ``settings.model_name`` with lineage tags.

    Args:
        settings: where the registry is and the registered model's name.
        model_id: the logged model (``models:/<model_id>``) to register.
        run_id: the training run that logged it.
        model: the forecaster type (``cv``, ``linear``, ``neural``).
        digest: the training data digest.
        metrics: the run's metrics; those of :data:`VERSION_METRICS` become version tags.

    Returns:
        The new version number.

    Raises:
        TrackingUnavailable: the registry cannot be reached or written.
    """
    tags = {"run_id": run_id, "data.digest": digest, "model": model, "trajops_version": __version__}
    tags.update(
        {f"{METRIC_TAG_PREFIX}{k}": f"{metrics[k]:.6f}" for k in VERSION_METRICS if k in metrics}
    )
    registry = Registry.from_settings(settings)
    return registry.create_version(model_id=model_id, run_id=run_id, tags=tags).version
