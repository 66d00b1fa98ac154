"""The micro-batching part of the settings (:mod:`trajops.prediction.batching`).

:class:`trajops.settings.Settings` derives from :class:`BatchingSettings`: there is one
settings object, read from ``TRAJOPS_*`` variables; this module only keeps its declaration
small.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings


class BatchingSettings(BaseSettings):
    """Fields of :class:`trajops.settings.Settings` about micro-batching forecasts."""

    # --- micro-batching (the neural forecaster) ------------------------------------------
    batching: bool = Field(
        default=True,
        description="Micro-batch concurrent requests to models that gain from it (the neural forecaster): one forward pass for many scenes.",
    )
    batch_max_agents: int = Field(
        default=2048,
        ge=1,
        description="Most agents in one batched forward pass (a larger request runs alone).",
    )
    batch_max_wait_ms: float = Field(
        default=2.0, ge=0, description="Longest extra wait for more requests before a batch starts."
    )
    batch_max_queue: int = Field(
        default=512,
        ge=1,
        description="Requests waiting for one model; past this: 503 with Retry-After.",
    )
