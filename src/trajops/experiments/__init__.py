"""A/B experiments: definitions, sticky assignment, statistics, guardrails, rollback.

* :mod:`~trajops.experiments.config`: :class:`ExperimentSpec`, :class:`Arm`, :class:`Guardrails`.
* :mod:`~trajops.experiments.assignment`: salted hash -> arm; sample-ratio-mismatch check.
* :mod:`~trajops.experiments.stats`: Welch t, Mann-Whitney U, paired t, always-valid mSPRT.
* :mod:`~trajops.experiments.repository`: experiments and per-arm samples in the store.
* :mod:`~trajops.experiments.guardrails`: latency, error and invalid-output limits.
* :mod:`~trajops.experiments.status`: per-arm metrics, tests and the verdict of an experiment.
* :mod:`~trajops.experiments.controller`: creation, rollback, promotion on the verdict.
* :mod:`~trajops.experiments.routing`: the serving hot path's view of the running experiment.
* :mod:`~trajops.experiments.simulation`: seeded A/A and power simulations.
"""

from trajops.experiments.config import Arm, ExperimentSpec, Guardrails, parse_arm, variant_name
from trajops.experiments.controller import ExperimentController
from trajops.experiments.repository import ExperimentRecord, ExperimentRepository
from trajops.experiments.routing import ExperimentRouter, Route, exposure_row
from trajops.experiments.status import ExperimentStatus

__all__ = [
    "Arm",
    "ExperimentController",
    "ExperimentRecord",
    "ExperimentRepository",
    "ExperimentRouter",
    "ExperimentSpec",
    "ExperimentStatus",
    "Guardrails",
    "Route",
    "exposure_row",
    "parse_arm",
    "variant_name",
]
