"""The trajectory viewer's figure: observed, predicted and (when known) true paths.

Drawn on matplotlib's Agg canvas without pyplot state, like :mod:`trajops.evaluation.plots`.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure

from trajops.dashboard.sources import Trajectory
from trajops.errors import ValidationError


def trajectory_figure(trajectories: Sequence[Trajectory], *, title: str = "") -> Figure:
    """One axes, one colour per agent: observed (solid, dots), forecast (dashed), truth (dotted).

    Each agent's path is drawn in its own coordinates (the service's metres), so agents of one
    request keep their relative positions.
    """
    if not trajectories:
        raise ValidationError("no trajectories to draw")
    fig = Figure(figsize=(7, 6))
    ax = fig.add_subplot(1, 1, 1)
    colours = [f"C{i % 10}" for i in range(len(trajectories))]
    for i, (t, colour) in enumerate(zip(trajectories, colours, strict=True)):
        first = i == 0
        ax.plot(
            t.obs[:, 0], t.obs[:, 1], "o-", color=colour, ms=3, label="observed" if first else None
        )
        # The forecast starts where the observation ends, so the two read as one path.
        px = [t.obs[-1, 0], *t.pred[:, 0]]
        py = [t.obs[-1, 1], *t.pred[:, 1]]
        ax.plot(px, py, "--", color=colour, lw=1.5, label="predicted" if first else None)
        if t.truth is not None and len(t.truth):
            tx = [t.obs[-1, 0], *t.truth[:, 0]]
            ty = [t.obs[-1, 1], *t.truth[:, 1]]
            ax.plot(tx, ty, "s:", color=colour, ms=3, lw=1.5, label="true" if first else None)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
