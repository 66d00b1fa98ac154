"""The prediction service, apart from any web framework.

* :mod:`~trajops.prediction.service`: :class:`PredictionService`, the use case of a
  prediction request (resolve model, forecast, log, record the experiment exposure).
* :mod:`~trajops.prediction.pool`: :class:`ModelPool`, registered versions held in memory and
  kept in step with the registry's aliases.
* :mod:`~trajops.prediction.loading`: one version loaded (through the model contract's
  :func:`~trajops.models.pyfunc.load_forecaster`) and smoke-tested.
* :mod:`~trajops.prediction.cache`: the prediction cache (in-process LRU or Redis).
"""

from trajops.prediction.pool import LoadedModel, ModelPool, PoolConfig
from trajops.prediction.service import (
    Answer,
    PredictionRequest,
    PredictionResult,
    PredictionService,
    ServiceConfig,
)

__all__ = [
    "Answer",
    "LoadedModel",
    "ModelPool",
    "PoolConfig",
    "PredictionRequest",
    "PredictionResult",
    "PredictionService",
    "ServiceConfig",
]
