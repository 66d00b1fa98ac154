"""Plots write real PNG files without touching pyplot's global state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trajops.errors import ValidationError
from trajops.evaluation.plots import horizon_errors, plot_horizon, plot_samples

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_sample_and_horizon_plots_are_pngs(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    obs = np.cumsum(rng.normal(size=(4, 8, 2)), axis=1)
    true = obs[:, -1:] + np.cumsum(rng.normal(size=(4, 12, 2)), axis=1)
    samples = true[:, None] + rng.normal(size=(4, 5, 12, 2))
    a = plot_samples(obs, samples, true, tmp_path / "sub" / "samples.png", title="t")
    b = plot_horizon({"cv": horizon_errors(samples[:, 0], true)}, tmp_path / "horizon.png")
    for path in (a, b):
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000


def test_empty_inputs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        plot_samples(
            np.zeros((0, 8, 2)), np.zeros((0, 12, 2)), np.zeros((0, 12, 2)), tmp_path / "x.png"
        )
    with pytest.raises(ValidationError):
        plot_horizon({}, tmp_path / "y.png")
    assert not (tmp_path / "x.png").exists()
