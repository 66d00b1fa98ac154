"""Miss rate, collisions, KDE NLL and calibration on hand-made scenes with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import gaussian_kde

from tests._support.windows import synthetic_windows
from trajops.data.windows import WindowSet
from trajops.evaluation import (
    ade,
    colliding_agents,
    collision_rate,
    coverage,
    fde,
    kde_nll,
    min_ade_fde,
    min_fde_miss_rate,
    miss_rate,
    per_horizon,
    scene_groups,
    score,
)
from trajops.evaluation.protocol import average_rows
from trajops.models import create_model

T = 12


def _walker(start: tuple[float, float], velocity: tuple[float, float]) -> np.ndarray:
    """``(T, 2)`` straight walk at constant velocity, first future step one step from start."""
    steps = np.arange(1, T + 1)[:, None]  # (T, 1)
    return np.asarray(start) + steps * np.asarray(velocity)


# -- miss rate ---------------------------------------------------------------------------------


def test_exact_forecast_never_misses_and_3_m_off_at_the_end_always_does() -> None:
    true = np.stack([_walker((0, 0), (0.4, 0)), _walker((5, 5), (0, -0.3))])  # (2, T, 2)
    assert miss_rate(true.copy(), true) == 0.0
    off = true.copy()
    off[:, -1, 1] += 3.0  # only the last step is wrong
    assert miss_rate(off, true) == 1.0
    half = true.copy()
    half[0, -1, 0] += 3.0
    assert miss_rate(half, true) == 0.5
    # The threshold is strict and configurable: 3 m off is not a miss at 3.5 m.
    assert miss_rate(off, true, threshold=3.5) == 0.0


def test_min_fde_miss_rate_needs_every_sample_to_miss() -> None:
    true = _walker((0, 0), (0.4, 0))[None]  # (1, T, 2)
    samples = np.repeat(true[:, None], 4, axis=1)  # (1, 4, T, 2)
    samples[0, :, -1, 0] += 3.0  # all four miss
    assert min_fde_miss_rate(samples, true) == 1.0
    samples[0, 2, -1, 0] -= 2.5  # one sample now lands 0.5 m away
    assert min_fde_miss_rate(samples, true) == 0.0
    # K = 1 is the deterministic miss rate.
    assert min_fde_miss_rate(samples[:, :1], true) == miss_rate(samples[:, 0], true) == 1.0


def test_unknown_last_step_is_skipped_by_the_miss_rate() -> None:
    true = np.stack([_walker((0, 0), (0.4, 0))] * 2)
    pred = true.copy()
    pred[1, -1] += 5.0
    true[0, -1] = np.nan
    assert miss_rate(pred, true) == 1.0  # only agent 1 counts
    true[1, -1] = np.nan
    assert math.isnan(miss_rate(pred, true))


# -- collisions --------------------------------------------------------------------------------


def test_two_agents_crossing_at_the_same_point_and_step_both_collide() -> None:
    # A walks +x, B walks +y; both reach (2.4, 0) at step 6 (index 5).
    a = _walker((0.0, 0.0), (0.4, 0.0))
    b = _walker((2.4, -2.4), (0.0, 0.4))
    np.testing.assert_allclose(a[5], b[5], atol=1e-12)
    paths = np.stack([a, b])  # (2, T, 2)
    groups = np.array([7, 7])
    assert colliding_agents(paths, groups).tolist() == [True, True]
    assert collision_rate(paths, groups) == 1.0
    # The same paths in two different scenes (or start frames) never meet.
    assert collision_rate(paths, np.array([1, 2])) == 0.0


def test_crossing_one_step_apart_is_not_a_collision() -> None:
    a = _walker((0.0, 0.0), (0.4, 0.0))
    b = _walker((2.4, -2.8), (0.0, 0.4))  # reaches (2.4, 0) one step after A
    # Closest at the steps: 0.4 m (0.28 m half-way between steps, which is not checked).
    assert collision_rate(np.stack([a, b]), np.zeros(2, int)) == 0.0


def test_parallel_agents_1_m_apart_do_not_collide_until_the_distance_allows_it() -> None:
    paths = np.stack([_walker((0, 0), (0.4, 0)), _walker((0, 1), (0.4, 0))])
    groups = np.zeros(2, int)
    assert collision_rate(paths, groups) == 0.0
    assert collision_rate(paths, groups, distance=1.0 + 1e-9) == 1.0


def test_lone_agents_count_as_not_colliding_in_the_share() -> None:
    a = _walker((0.0, 0.0), (0.4, 0.0))
    b = _walker((2.4, -2.4), (0.0, 0.4))
    lone = _walker((100.0, 100.0), (0.4, 0.0))
    paths = np.stack([a, b, lone, lone])  # the lone walker twice, in two other scenes
    groups = np.array([0, 0, 1, 2])
    assert colliding_agents(paths, groups).tolist() == [True, True, False, False]
    assert collision_rate(paths, groups) == 0.5


def test_scene_groups_follow_scene_and_start_frame() -> None:
    ws = synthetic_windows(5)
    ws.scene[:] = np.array(["a", "a", "b", "a", "b"], dtype=object)
    ws.start_frame[:] = np.array([0, 0, 0, 10, 0])
    g = scene_groups(ws)
    assert g[0] == g[1] and g[2] == g[4]
    assert len({g[0], g[2], g[3]}) == 3


# -- KDE NLL and calibration -------------------------------------------------------------------


def test_kde_nll_is_lower_for_samples_centred_on_the_truth() -> None:
    rng = np.random.default_rng(0)
    true = np.stack([_walker((0, 0), (0.4, 0)), _walker((3, 3), (0, 0.3))])  # (2, T, 2)
    noise = rng.normal(0.0, 0.3, size=(2, 20, T, 2))
    centred = true[:, None] + noise  # (2, 20, T, 2)
    offset = centred + np.array([2.0, 0.0])
    assert kde_nll(centred, true) < kde_nll(offset, true) - 1.0


def test_kde_nll_matches_scipy_gaussian_kde() -> None:
    rng = np.random.default_rng(1)
    samples = rng.normal(size=(3, 20, 4, 2)) * [0.5, 1.5]
    true = rng.normal(size=(3, 4, 2))
    expected = -np.mean(
        [
            max(gaussian_kde(samples[n, :, t].T).logpdf(true[n, t])[0], -20.0)
            for n in range(3)
            for t in range(4)
        ]
    )
    assert kde_nll(samples, true) == pytest.approx(expected, rel=1e-9)


def test_kde_nll_survives_identical_samples_and_clips_far_truths() -> None:
    true = _walker((0, 0), (0.4, 0))[None]  # (1, T, 2)
    same = np.repeat(true[:, None], 5, axis=1)  # singular covariance: a deterministic model
    nll = kde_nll(same, true)
    # The bandwidth floor (1 cm per axis) gives the peak of a 2-D Gaussian of that width.
    assert nll == pytest.approx(math.log(2 * math.pi * 0.01**2))
    assert kde_nll(same + 50.0, true) == pytest.approx(20.0)  # the Trajectron++ floor
    with pytest.raises(ValueError, match="at least 2 samples"):
        kde_nll(same[:, :1], true)


def test_coverage_is_one_for_samples_on_the_truth_and_zero_far_away() -> None:
    rng = np.random.default_rng(2)
    true = np.stack([_walker((0, 0), (0.4, 0)), _walker((3, 3), (0, 0.3))])
    exact = np.repeat(true[:, None], 20, axis=1)  # (2, 20, T, 2)
    far = true[:, None] + rng.normal(0.0, 0.2, size=(2, 20, T, 2)) + 10.0
    for level in (0.5, 0.9):
        assert coverage(exact, true, level=level) == 1.0
        assert coverage(far, true, level=level) == 0.0


def test_coverage_of_a_calibrated_sampler_is_near_its_level() -> None:
    # Truth and samples from the same distribution: the truth is one more draw.
    rng = np.random.default_rng(3)
    n, k = 4000, 20
    draws = rng.normal(size=(n, k + 1, 1, 2))
    samples, true = draws[:, :k], draws[:, k]
    c50, c90 = coverage(samples, true, level=0.5), coverage(samples, true, level=0.9)
    # Exchangeability puts the truth near ceil(p K) / (K + 1) of the ranks (0.48 / 0.86),
    # the sample-mean centre a little lower; a mis-calibrated sampler is far off.
    assert 0.40 < c50 < 0.55 and 0.80 < c90 < 0.92
    assert coverage(samples * 0.3, true, level=0.9) < 0.5  # over-confident
    with pytest.raises(ValueError, match="level"):
        coverage(samples, true, level=0.0)


# -- score() -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def windows() -> WindowSet:
    ws = synthetic_windows(60, seed=4)
    ws.start_frame[:] = np.repeat([0, 10, 20], 20)  # three scenes of 20 agents
    return ws


def test_score_keeps_the_old_keys_and_adds_the_field_metrics(windows: WindowSet) -> None:
    model = create_model("cv")
    model.fit(windows, None)
    row = score(model, windows, num_samples=5, seed=3)
    pred = model.predict(windows.obs, neighbours=windows.neighbours)
    samples = model.predict(windows.obs, neighbours=windows.neighbours, num_samples=5, seed=3)
    # The old keys, with the old formulas' values.
    assert row["n"] == 60
    assert row["ade"] == ade(pred, windows.fut) and row["fde"] == fde(pred, windows.fut)
    assert (row["min_ade"], row["min_fde"]) == min_ade_fde(samples, windows.fut)
    # The new ones.
    new = {
        "miss_rate",
        "collision_rate",
        "gt_collision_rate",
        "min_fde_miss_rate",
        "kde_nll",
        "coverage_50",
        "coverage_90",
    }
    assert new <= set(row)
    assert all(math.isfinite(row[key]) for key in new)
    for key in new - {"kde_nll"}:
        assert 0.0 <= row[key] <= 1.0, key
    assert row["min_fde_miss_rate"] <= row["miss_rate"]
    assert row["miss_rate"] == miss_rate(pred, windows.fut)
    groups = scene_groups(windows)
    assert row["gt_collision_rate"] == collision_rate(windows.fut, groups)
    assert row["ade_per_step"] == pytest.approx(per_horizon(pred, windows.fut).tolist())
    assert len(row["ade_per_step"]) == T
    assert np.mean(row["ade_per_step"]) == pytest.approx(row["ade"])


def test_score_with_one_sample_has_no_sample_metrics(windows: WindowSet) -> None:
    model = create_model("cv")
    model.fit(windows, None)
    row = score(model, windows)
    assert set(row) == {
        "n",
        "ade",
        "fde",
        "miss_rate",
        "collision_rate",
        "gt_collision_rate",
        "ade_per_step",
        "ade_ci",
        "fde_ci",
    }


def test_collisions_are_counted_within_a_scene_only(windows: WindowSet) -> None:
    # Put every future on top of one point: within a scene all collide, alone nobody does.
    crowd = windows.subset(np.arange(len(windows)))
    crowd.traj[:, crowd.config.t_obs :] = 0.0
    together = score(create_model("cv"), crowd)
    assert together["gt_collision_rate"] == 1.0
    crowd.start_frame[:] = np.arange(len(crowd))  # every agent alone in its scene
    assert score(create_model("cv"), crowd)["gt_collision_rate"] == 0.0


def test_average_rows_carry_the_new_metrics() -> None:
    rows = [
        {"model": "m", "scene": "a", "n": 1, "ade": 1.0, "fde": 2.0, "miss_rate": 0.0},
        {"model": "m", "scene": "b", "n": 3, "ade": 3.0, "fde": 4.0, "miss_rate": 0.5},
    ]
    rows[0]["ade_per_step"] = [1.0, 2.0]
    rows[1]["ade_per_step"] = [3.0, 6.0]
    (avg,) = average_rows(rows)
    assert avg["miss_rate"] == 0.25
    assert avg["ade_per_step"] == [2.0, 4.0]
    assert "kde_nll" not in avg  # only keys every scene row has
