"""Training a forecaster as one tracked MLflow run, evaluated, documented and registered.

* :mod:`trajops.training.run`: :func:`train_run` (one run, optionally registered) and
  :func:`train_loso` (leave-one-scene-out, one nested run per fold).

It sits above the adapters it orchestrates: the tracking backend and run artifacts
(:mod:`trajops.tracking`), the cards (:mod:`trajops.cards`), the drift reference
(:mod:`trajops.monitoring.reference`) and the registry (:mod:`trajops.registry`).
"""
