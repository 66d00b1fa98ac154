"""Experiment tracking with MLflow: backends, data splits, lineage and run artifacts.

* :mod:`trajops.tracking.backend`: :func:`connect` (embedded SQLite or an ``mlflow server``),
  :func:`ensure_experiment`, error translation.
* :mod:`trajops.tracking.datasets`: the train / val / test splits a run is trained on.
* :mod:`trajops.tracking.lineage`: dataset inputs and fingerprint tags.
* :mod:`trajops.tracking.artifacts`: test-set evaluation, evaluation JSON, plots, artifact paths.

The registry, the cards and :mod:`trajops.training` (one training run, registered) build on
this package; it imports none of them.
"""

from trajops.tracking.backend import connect, ensure_experiment

__all__ = ["connect", "ensure_experiment"]
