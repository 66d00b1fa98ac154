"""Experiment tracking with MLflow: backends, training runs, lineage and run artifacts.

* :mod:`trajops.tracking.backend`: :func:`connect` (embedded SQLite or an ``mlflow server``),
  :func:`ensure_experiment`, error translation.
* :mod:`trajops.tracking.training`: one tracked training run (and leave-one-scene-out).
* :mod:`trajops.tracking.lineage`: dataset inputs and fingerprint tags.
* :mod:`trajops.tracking.artifacts`: evaluation JSON, plots, model card, reference profile.
"""

from trajops.tracking.backend import connect, ensure_experiment

__all__ = ["connect", "ensure_experiment"]
