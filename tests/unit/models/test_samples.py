"""K > 1 samples of the neural forecaster: one member's modes in order, an ensemble's merged by
k-means (hand-made hypotheses with known clusters)."""

from __future__ import annotations

import numpy as np
import pytest

from tests._support.windows import CFG, synthetic_windows
from trajops.errors import ConfigError
from trajops.models._samples import cluster_trajectories, pick_hypotheses


def _groups(n_agents: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Hypotheses ``(n_agents, 12, 4, 2)``: three straight walks (east, north, west at
    1 m/step), four, four and four copies of each, each copy a centimetre off sideways."""
    steps = np.arange(1, 5)[:, None]  # (4, 1)
    walks = np.stack([steps * d for d in ([1.0, 0.0], [0.0, 1.0], [-1.0, 0.0])])  # (3, 4, 2)
    side = np.array([[0.0, 0.01], [0.01, 0.0], [0.0, 0.01]])
    copies = [walks[g] + side[g] * o for o in (-1, 1, -2, 2) for g in range(3)]  # (12, 4, 2)
    hyp = np.stack([np.stack(copies)] * n_agents)
    return hyp, walks


def test_k_means_finds_the_three_walks_and_is_deterministic() -> None:
    hyp, walks = _groups()
    centres = cluster_trajectories(hyp, 3)
    assert centres.shape == (2, 3, 4, 2)
    for agent in centres:  # each walk is one cluster's mean: the copies' offsets cancel
        err = np.abs(agent[:, None] - walks[None]).max(axis=(2, 3))  # (3 centres, 3 walks)
        assert sorted(err.argmin(axis=1)) == [0, 1, 2]
        assert err.min(axis=1).max() < 1e-12
    np.testing.assert_array_equal(centres, cluster_trajectories(hyp, 3))
    assert cluster_trajectories(hyp, 12).shape == (2, 12, 4, 2)  # every hypothesis its own
    with pytest.raises(ValueError, match="between 1 and 12"):
        cluster_trajectories(hyp, 13)


def test_pick_keeps_one_members_order_and_merges_an_ensembles() -> None:
    hyp, walks = _groups(1)
    one, repeated = pick_hypotheses(hyp, 5, members=1, selection="cluster")
    np.testing.assert_array_equal(one, hyp[:, :5])  # one member: its modes in order
    assert not repeated.any()
    merged, _ = pick_hypotheses(hyp, 3, members=3, selection="cluster")
    assert np.abs(merged[0][:, None] - walks[None]).max(axis=(2, 3)).min(axis=1).max() < 1e-12
    medoids, _ = pick_hypotheses(hyp, 3, members=3, selection="medoid")
    assert all(any(np.array_equal(m, h) for h in hyp[0]) for m in medoids[0])  # real ones
    first, _ = pick_hypotheses(hyp, 3, members=3, selection="interleave")
    np.testing.assert_array_equal(first, hyp[:, :3])
    more, repeated = pick_hypotheses(hyp, 14, members=3, selection="cluster")
    assert more.shape[1] == 14 and repeated.tolist() == [False] * 12 + [True] * 2
    # member 0's modes: hypotheses 0, 3, 6, 9 (interleaved member by member); 2 of 4 repeat
    own, repeated = pick_hypotheses(hyp, 6, members=3, selection="first")
    np.testing.assert_array_equal(own, hyp[:, [0, 3, 6, 9, 0, 3]])
    assert repeated.tolist() == [False] * 4 + [True] * 2


def test_the_mode_the_deterministic_forecast_gives_is_left_out() -> None:
    _, walks = _groups(1)
    modes = np.stack([walks, walks + 0.5])  # two agents, three modes each
    det = modes[:, 1] + 0.01  # each agent's forecast sits on its mode 1
    picked, repeated = pick_hypotheses(modes, 2, members=1, selection="first", det=det)
    np.testing.assert_array_equal(picked, modes[:, [0, 2]])  # the others, in order
    assert not repeated.any()
    picked, repeated = pick_hypotheses(modes, 3, members=1, selection="first", det=det)
    np.testing.assert_array_equal(picked, modes)  # none to spare: all of them
    det[1] = modes[1, 2]  # the second agent's forecast is its mode 2
    picked, _ = pick_hypotheses(modes, 2, members=1, selection="interleave", det=det)
    np.testing.assert_array_equal(picked[1], modes[1, [0, 1]])


def test_an_ensemble_samples_its_first_members_modes() -> None:
    from torch import nn

    from trajops.models.neural import NeuralForecaster

    model = NeuralForecaster(epochs=2, hidden=16, modes=3, ensemble=2, device="cpu")
    model.fit(synthetic_windows(200, seed=21))
    assert model.config.samples == "first" and model.nets is not None
    test = synthetic_windows(8, seed=22)
    samples = model.predict(test.obs, neighbours=test.neighbours, num_samples=4, seed=0)
    assert samples.shape == (8, 4, CFG.t_pred, 2)
    np.testing.assert_array_equal(
        samples[:, 0], model.predict(test.obs, neighbours=test.neighbours)
    )
    alone = NeuralForecaster(model.config, ensemble=1)
    alone.nets = nn.ModuleList([model.nets[0]])
    own = alone.predict(test.obs, neighbours=test.neighbours, num_samples=4, seed=0)
    np.testing.assert_allclose(samples[:, 1:], own[:, 1:], atol=1e-6)  # member 0's 3 modes
    clustered = NeuralForecaster(model.config, samples="cluster")
    clustered.nets = model.nets
    merged = clustered.predict(test.obs, neighbours=test.neighbours, num_samples=4, seed=0)
    assert not np.allclose(merged[:, 1:], samples[:, 1:])  # 3 of 6 hypotheses, merged
    np.testing.assert_array_equal(merged[:, 0], samples[:, 0])
    with pytest.raises(ConfigError, match="samples must be one of interleave, first, cluster"):
        NeuralForecaster(samples="best")
