"""Generated documents: model cards, performance (bias and fairness) cards, the config reference.

Training writes the cards as run artifacts (:func:`write_cards`); :class:`VersionCards` reads
them back for a registered version (the CLI ``trajops cards`` and ``GET
/v1/models/{version}/card`` use it).
"""

from trajops.cards.breakdown import GROUPINGS, WINDOW_COLUMNS, PerformanceConfig, window_table
from trajops.cards.model_card import ModelCardFacts, render_model_card
from trajops.cards.performance import (
    GroupingStat,
    GroupStat,
    PerformanceCard,
    cluster_bootstrap_ci,
    performance_card,
)
from trajops.cards.render import render_performance_card

__all__ = [
    "GROUPINGS",
    "WINDOW_COLUMNS",
    "GroupStat",
    "GroupingStat",
    "ModelCardFacts",
    "PerformanceCard",
    "PerformanceConfig",
    "cluster_bootstrap_ci",
    "performance_card",
    "render_model_card",
    "render_performance_card",
    "window_table",
]
