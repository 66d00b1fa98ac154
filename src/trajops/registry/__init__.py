"""The model registry: aliases ``champion`` / ``challenger``, gated promotion, rollback, history.

* :mod:`trajops.registry.adapter`: :class:`Registry`, the only place that calls the MLflow
  registry (resolve an alias or version, list versions, set aliases and tags).
* :mod:`trajops.registry.history`: the durable alias history (registered-model tags).
* :mod:`trajops.registry.promotion`: the promotion gate, :func:`promote` and :func:`rollback`.
"""

from trajops.registry.adapter import ALIASES, ModelVersionInfo, Registry

__all__ = ["ALIASES", "ModelVersionInfo", "Registry"]
