"""The production-loop part of the settings: streaming tracks, and learning from production.

:class:`trajops.settings.Settings` derives from :class:`LoopSettings`: there is one settings
object, read from ``TRAJOPS_*`` variables; this module only keeps its declaration small.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings


class LoopSettings(BaseSettings):
    """Fields of :class:`trajops.settings.Settings` about tracks and production data."""

    # --- streaming tracks (`POST /v1/tracks`) -------------------------------------------
    tracks_ttl_s: float = Field(
        default=30.0,
        gt=0,
        description="Seconds an agent's track is kept after its last sighting (in Redis when `redis_url` is set, so replicas share it).",
    )
    tracks_max_gap_s: float = Field(
        default=1.0,
        gt=0,
        description="Sightings of an agent farther apart than this are a gap: the track starts again (gaps are never bridged).",
    )

    # --- learning from production -------------------------------------------------------
    harvest_min_split_windows: int = Field(
        default=50,
        ge=10,
        description="Fewest windows each split of a harvest must hold (split by time, else by agent); a smaller harvest is refused, never trained on with a handful of validation windows.",
    )
    gate_min_production_windows: int = Field(
        default=200,
        ge=1,
        description="Held-out production windows the promotion gate needs to score on production data; with fewer it scores on the simulator.",
    )
