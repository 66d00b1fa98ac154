"""Displacement metrics on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from trajops.evaluation import ade, displacement, fde, min_ade_fde, per_horizon


def test_ade_fde_on_a_3_4_5_triangle() -> None:
    true = np.zeros((2, 3, 2))
    pred = np.zeros((2, 3, 2))
    pred[0, :, 0] = [0.0, 3.0, 3.0]
    pred[0, :, 1] = [0.0, 4.0, 4.0]  # errors 0, 5, 5
    pred[1, 2] = [6.0, 8.0]  # errors 0, 0, 10
    assert displacement(pred, true).tolist() == [[0.0, 5.0, 5.0], [0.0, 0.0, 10.0]]
    assert ade(pred, true) == pytest.approx(20.0 / 6.0)
    assert fde(pred, true) == pytest.approx(7.5)
    np.testing.assert_allclose(per_horizon(pred, true), [0.0, 2.5, 7.5])


def test_unknown_truth_steps_are_skipped() -> None:
    true = np.zeros((1, 2, 2))
    true[0, 1] = np.nan
    pred = np.ones((1, 2, 2))
    assert ade(pred, true) == pytest.approx(np.sqrt(2.0))


def test_min_over_samples_picks_the_best_sample_per_agent() -> None:
    true = np.zeros((2, 2, 2))
    samples = np.zeros((2, 3, 2, 2))
    samples[0, 0] += 1.0  # bad
    samples[0, 1] += 0.1  # best for agent 0
    samples[0, 2] += 2.0
    samples[1] += 0.5  # all samples equal for agent 1
    min_ade, min_fde = min_ade_fde(samples, true)
    expected = (0.1 * np.sqrt(2) + 0.5 * np.sqrt(2)) / 2
    assert min_ade == pytest.approx(expected)
    assert min_fde == pytest.approx(expected)


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="shape"):
        ade(np.zeros((1, 12, 2)), np.zeros((1, 8, 2)))
