"""Performance card statistics: groups, bootstrap intervals, disparity and flags."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from trajops.cards import (
    PerformanceCard,
    PerformanceConfig,
    cluster_bootstrap_ci,
    performance_card,
    render_performance_card,
    window_table,
)
from trajops.cards.breakdown import assign_groups, check_table
from trajops.data.windows import WindowConfig, WindowSet
from trajops.errors import ValidationError


def frame(
    rows: list[tuple[str, int, float]], *, speed: float = 1.2, heading: float = 0.0
) -> pd.DataFrame:
    """Per-window rows from ``(scene, agent, ade)`` triples (fde = 2 ade, linear paths)."""
    return pd.DataFrame(
        {
            "scene": [r[0] for r in rows],
            "agent_id": [str(r[1]) for r in rows],
            "start_frame": np.arange(len(rows)) * 10,
            "ade": [r[2] for r in rows],
            "fde": [2 * r[2] for r in rows],
            "speed": speed,
            "density": 0,
            "heading_deg": heading,
            "cv_fde": 0.1,
        }
    )


def scenes_frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [("a", i // 2, 1.2 + 0.05 * rng.standard_normal()) for i in range(100)]
    rows += [("b", 100 + i // 2, 0.5 + 0.05 * rng.standard_normal()) for i in range(100)]
    rows += [("c", 200 + i, 3.0) for i in range(5)]
    return frame(rows)


def test_a_clearly_worse_group_is_underserved_and_a_tiny_one_under_sampled() -> None:
    card = performance_card(scenes_frame(), PerformanceConfig(groupings=("scene",)), title="t")
    scene = card.grouping("scene")
    stats = {s.group: s for s in scene.groups}
    assert [s.n for s in scene.groups] == [100, 100, 5]
    assert stats["a"].n_agents == 50 and stats["c"].n_agents == 5
    assert stats["a"].underserved and not stats["a"].under_sampled
    assert not stats["b"].underserved
    # c has the worst error, but 5 windows prove nothing: flagged, out of the disparity.
    assert stats["c"].under_sampled and not stats["c"].underserved
    assert (scene.worst, scene.best) == ("a", "b")
    assert scene.disparity == pytest.approx(stats["a"].ade / stats["b"].ade)
    assert 2.2 < (scene.disparity or 0) < 2.6
    assert card.ade == pytest.approx(scenes_frame()["ade"].mean())
    low, high = stats["a"].ade_ci or (0, 0)
    assert low < (stats["a"].ade or 0) < high
    assert {s.group for s in card.flagged} == {"a", "c"}


def test_an_ade_ratio_above_the_threshold_needs_a_confident_gap_to_be_underserved() -> None:
    # Group x is ~1.5x the overall on average, carried by 3 outliers in 30 windows: its
    # interval reaches down to the overall ADE, so the gap is not confident.
    rows = [("x", i, 8.0 if i < 3 else 0.3) for i in range(30)]
    rows += [("y", 100 + i, 0.7) for i in range(400)]
    card = performance_card(frame(rows), PerformanceConfig(groupings=("scene",)), title="t")
    x = card.grouping("scene").groups[0]
    assert (x.ratio_to_overall or 0) > 1.25
    assert (x.ade_ci or (0, 0))[0] <= card.ade
    assert not x.underserved


def test_the_bootstrap_resamples_agents_not_windows() -> None:
    rng = np.random.default_rng(2)
    per_agent = rng.gamma(2.0, 0.3, size=60)  # (C,)
    once = cluster_bootstrap_ci(per_agent, np.arange(60), confidence=0.95, n_boot=500, seed=3)
    # Ten identical windows per agent: the same information, the same interval.
    repeated = np.repeat(per_agent, 10)
    clusters = np.repeat(np.arange(60), 10)
    tenfold = cluster_bootstrap_ci(repeated, clusters, confidence=0.95, n_boot=500, seed=3)
    assert tenfold == pytest.approx(once)
    naive = cluster_bootstrap_ci(repeated, np.arange(600), confidence=0.95, n_boot=500, seed=3)
    assert naive[1] - naive[0] < 0.5 * (once[1] - once[0])
    single = cluster_bootstrap_ci(
        np.array([0.3, 0.5]), np.array([7, 7]), confidence=0.9, n_boot=100, seed=0
    )
    assert single == pytest.approx((0.4, 0.4))


def test_bootstrap_intervals_cover_the_true_mean_about_as_often_as_promised() -> None:
    rng = np.random.default_rng(4)
    covered = 0
    for rep in range(150):
        values = rng.exponential(0.5, size=80)  # true mean 0.5
        low, high = cluster_bootstrap_ci(
            values, np.arange(80), confidence=0.9, n_boot=300, seed=rep
        )
        covered += low <= 0.5 <= high
    assert 0.8 <= covered / 150 <= 0.97


def test_directions_standing_and_linear_paths_are_grouped_from_the_traits() -> None:
    f = frame([("s", i, 0.3) for i in range(6)])
    f["heading_deg"] = [0.0, 44.0, 90.0, 181.0, 270.0, 10.0]
    f["speed"] = [1.0, 1.0, 1.0, 1.0, 1.0, 0.1]
    f["cv_fde"] = [0.1, 0.2, 0.9, 0.49, 2.0, 0.0]
    groups = assign_groups(f, PerformanceConfig(groupings=("direction", "path")))
    direction = {label: np.flatnonzero(mask).tolist() for label, mask in groups["direction"]}
    assert direction == {"east": [0, 1], "north": [2], "west": [3], "south": [4], "standing": [5]}
    eight = assign_groups(f, PerformanceConfig(groupings=("direction",), directions=8))
    assert np.flatnonzero(dict(eight["direction"])["north-east"]).tolist() == [1]
    path = {label: np.flatnonzero(mask).tolist() for label, mask in groups["path"]}
    assert path == {"linear": [0, 1, 3, 5], "non-linear": [2, 4]}


def test_window_table_measures_errors_and_traits_of_each_window() -> None:
    # Two straight walkers along +x at 1 m/s (0.4 m per step); the second one is 3 m away.
    t = np.arange(20, dtype=np.float32) * 0.4  # (20,)
    traj = np.zeros((2, 20, 2), np.float32)
    traj[:, :, 0] = t
    traj[1, :, 1] = 3.0
    nbrs = np.full((2, 2, 8, 2), np.nan, np.float32)
    nbrs[0, 0] = traj[1, :8]
    nbrs[1, 0] = traj[0, :8]
    windows = WindowSet(
        traj=traj,
        neighbours=nbrs,
        scene=np.array(["s", "s"], dtype=object),
        agent_id=np.array(["1", "2"], dtype=object),
        start_frame=np.array([0, 0]),
        config=WindowConfig(max_neighbours=2),
    )
    pred = windows.fut.copy()  # (2, 12, 2)
    pred[1] += np.array([0.0, 1.0], np.float32)  # one metre off at every step
    table = window_table(windows, pred, density_radius=4.0)
    assert table["ade"].tolist() == pytest.approx([0.0, 1.0])
    assert table["fde"].tolist() == pytest.approx([0.0, 1.0])
    assert table["speed"].tolist() == pytest.approx([1.0, 1.0])
    assert table["heading_deg"].tolist() == pytest.approx([0.0, 0.0])
    assert table["cv_fde"].tolist() == pytest.approx([0.0, 0.0], abs=1e-5)
    assert table["density"].tolist() == [1, 1]
    assert window_table(windows, pred)["density"].tolist() == [0, 0]  # 2 m default radius


def test_the_card_round_trips_through_strict_json_and_renders_every_group() -> None:
    card = performance_card(scenes_frame(), title="`linear` v3", source={"version": 3})
    data = json.loads(json.dumps(card.to_dict(), allow_nan=False))
    assert PerformanceCard.from_dict(data) == card
    text = render_performance_card(card)
    assert text.startswith("# Performance card: `linear` v3")
    for heading in ("By scene", "By observed speed", "By crowd density", "By walking direction"):
        assert f"## {heading}" in text
    assert "| a | 100 | 50 |" in text and "**underserved**" in text
    assert "- scene `c`: under-sampled (n=5" in text
    assert "speed `[0, 0.3) m/s`: not evaluated (no test windows)" in text


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"groupings": ("scene", "age")}, "groupings"),
        ({"directions": 6}, "directions"),
        ({"confidence": 1.0}, "confidence"),
        ({"underserved_ratio": 0.9}, "underserved_ratio"),
        ({"n_boot": 10}, "n_boot"),
    ],
)
def test_a_bad_config_is_refused_naming_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        PerformanceConfig(**changes)  # type: ignore[arg-type]


def test_a_table_without_the_per_window_columns_is_refused_by_name() -> None:
    bad = scenes_frame().drop(columns=["cv_fde"])
    with pytest.raises(ValidationError, match=r"missing column.*cv_fde"):
        check_table(bad, source="x.csv")
    text = scenes_frame().astype({"ade": object})
    text.loc[3, "ade"] = "oops"
    with pytest.raises(ValidationError, match="'ade' row 3"):
        check_table(text, source="x.csv")
