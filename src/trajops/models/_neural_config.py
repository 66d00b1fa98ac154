"""The hyper-parameters of :mod:`trajops.models.neural` (:class:`NeuralConfig`) and which of
them shape the network (:data:`ARCHITECTURE`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from trajops import T_OBS, T_PRED
from trajops.errors import ConfigError
from trajops.models import _samples

ARCHITECTURE = (
    "hidden",
    "neighbours",
    "social_heads",
    "goal",
    "modes",
    "speed_scale",
    "min_scale",
    "dropout",
    "ensemble",
    "t_obs",
    "t_pred",
)
"""Config fields that shape the network or its inputs: weights of one config fit another only
when these are equal (a fine-tuned model keeps its source's)."""

SAVED_BEFORE: dict[str, Any] = {"social_heads": 1, "goal": False, "mirror_test": False}
"""Fields added after models were first saved, with the value every model saved without
them has: a ``config.json`` that lacks one loads with this value, not today's default."""


@dataclass(frozen=True)
class NeuralConfig:
    """Hyper-parameters of :class:`~trajops.models.neural.NeuralForecaster`."""

    hidden: int = 128
    neighbours: int = 16
    """Nearest neighbours attended to (0: not scene-aware)."""
    social_heads: int = 1
    """Attention heads over the neighbours. 1: one head whose keys are also its values (the
    original network); more: multi-head attention with values of their own."""
    goal: bool = False
    """Endpoint-conditioned decoding: a head predicts where the agent ends, a decoder the path
    to that end (trained on true endpoints too); the K > 1 hypotheses are endpoints, each
    decoded into a path."""
    modes: int = 20
    """Hypotheses of the multi-hypothesis head used for K > 1 samples."""
    speed_scale: bool = True
    """Divide agent-frame coordinates by the agent's observed speed (clipped below)."""
    min_scale: float = 0.2
    """Smallest scale (metres per step) used by ``speed_scale``."""
    mirror: bool = True
    """Augment training with left/right reflection in the agent frame."""
    mirror_test: bool = True
    """Forecast as the mean of the scene and its mirror image (un-mirrored): test-time
    augmentation, twice the forward arithmetic; K > 1 hypotheses come from the scene as is."""
    speed_jitter: float = 0.0
    """Augment training with scenes scaled by ``exp(u)``, u uniform in ``[-j, j]`` (0: off)."""
    epochs: int = 60
    patience: int = 10
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    dropout: float = 0.0
    ensemble: int = 1
    """Members trained from seeds ``seed * ensemble + i``; the forecast is their mean."""
    samples: _samples.SampleSelection = "first"
    """How an ensemble's hypotheses become K > 1 samples (see :mod:`._samples`)."""
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_threads: int = 0
    """Torch intra-op threads while fitting (0: leave torch's setting alone)."""
    inference_threads: int = 1
    """Torch intra-op threads while predicting (0: leave torch's setting alone). One thread
    is fastest for the small per-request batches the API sends: a thread pool costs more
    than it saves there and spins badly on a busy machine."""
    t_obs: int = T_OBS
    t_pred: int = T_PRED


def check_config(config: NeuralConfig) -> None:
    """Raise :class:`~trajops.errors.ConfigError` naming the first field with a value no
    network can have."""
    if config.ensemble < 1:
        raise ConfigError(f"ensemble must be at least 1, got {config.ensemble}")
    if config.neighbours > 0 and (config.social_heads < 1 or config.hidden % config.social_heads):
        raise ConfigError(
            f"social_heads must divide hidden ({config.hidden}), got {config.social_heads}"
        )
    _samples.check_selection(config.samples)
