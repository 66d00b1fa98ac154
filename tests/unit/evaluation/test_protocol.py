"""The leave-one-scene-out protocol on a tiny hand-made ETH/UCY layout in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests._support.eth_ucy import write_walkers
from trajops.data.readers import SCENES, read_eth_ucy_file
from trajops.errors import DataError, ValidationError
from trajops.evaluation.protocol import average_rows, evaluate_models, load_fold, sgan_windows


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("eth_ucy")
    for i, scene in enumerate(SCENES):
        for j, split in enumerate(("train", "val", "test")):
            agents = {"train": 12, "val": 4, "test": 3}[split]
            write_walkers(
                root / scene / split / f"{scene}_{split}.txt",
                n_agents=agents,
                n_frames=24,
                seed=10 * i + j,
            )
    return root


def test_cv_rows_per_scene_and_the_average(layout: Path) -> None:
    result = evaluate_models(layout, ["cv"])
    scenes = [r["scene"] for r in result.rows]
    assert scenes == [*SCENES, "average"]
    for r in result.rows[:-1]:
        assert r["n"] == 3 * 5  # 3 agents x (24 - 20 + 1) windows
        assert set(r) == {
            "model",
            "scene",
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
        assert r["miss_rate"] == 0.0 and len(r["ade_per_step"]) == 12
        assert r["ade"] < 0.3  # straight walkers; CV amplifies the 2 cm noise of the last step
    avg = result.rows[-1]
    assert avg["n"] == 75
    assert avg["ade"] == pytest.approx(np.mean([r["ade"] for r in result.rows[:-1]]))


def test_learned_models_and_samples_on_two_folds(layout: Path) -> None:
    result = evaluate_models(
        layout,
        ["linear", "neural"],
        scenes=("eth", "hotel"),
        num_samples=3,
        model_params={"neural": {"epochs": 2, "hidden": 16, "modes": 2, "device": "cpu"}},
    )
    assert [(r["model"], r["scene"]) for r in result.rows] == [
        ("linear", "eth"),
        ("neural", "eth"),
        ("linear", "hotel"),
        ("neural", "hotel"),
        ("linear", "average"),
        ("neural", "average"),
    ]
    for r in result.rows:
        assert r["min_ade"] <= r["ade"] + 1e-9 and r["min_fde"] <= r["fde"] + 1e-9
    assert result.rows[0]["ade"] < 0.1  # ridge recovers straight lines
    assert len(result.histories["neural/eth"]["train_loss"]) >= 1
    assert {t["model"] for t in result.timings} == {"linear", "neural"}


def test_average_is_unweighted_over_scenes() -> None:
    rows = [
        {"model": "m", "scene": "a", "n": 1, "ade": 1.0, "fde": 2.0},
        {"model": "m", "scene": "b", "n": 99, "ade": 3.0, "fde": 4.0},
    ]
    assert average_rows(rows) == [
        {"model": "m", "scene": "average", "n": 100, "ade": 2.0, "fde": 3.0}
    ]


def test_missing_fold_and_bad_names_fail_before_any_work(layout: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="missing fold folder"):
        evaluate_models(tmp_path, ["cv"])
    with pytest.raises(ValidationError, match="unknown model 'rnn'"):
        evaluate_models(layout, ["rnn"])
    with pytest.raises(ValidationError, match="unknown protocol"):
        load_fold(layout, "eth", protocol="bogus")  # type: ignore[arg-type]


def test_a_split_without_windows_is_a_data_error(tmp_path: Path) -> None:
    for split in ("train", "val", "test"):
        write_walkers(
            tmp_path / "eth" / split / "x.txt",
            n_agents=2,
            n_frames=24 if split != "test" else 10,
            seed=1,
        )
    with pytest.raises(DataError, match="no complete 20-step window"):
        load_fold(tmp_path, "eth")


def test_sgan_windows_need_two_agents_and_bridge_unannotated_frames(tmp_path: Path) -> None:
    # Frames 0..90 then 200..290: 20 annotated frames with a gap the default windowing keeps.
    frames = [10 * i for i in range(10)] + [200 + 10 * i for i in range(10)]
    write_walkers(tmp_path / "two.txt", n_agents=2, n_frames=20, seed=0, frame_ids=frames)
    write_walkers(tmp_path / "one.txt", n_agents=1, n_frames=25, seed=0)
    two = sgan_windows(read_eth_ucy_file(tmp_path / "two.txt"))
    assert len(two) == 2
    assert set(two.agent_id) == {"0", "1"}
    # Each agent's neighbour slot 0 is the other agent's observed track.
    np.testing.assert_array_equal(two.neighbours[0, 0], two.obs[1])
    assert np.isnan(two.neighbours[:, 1:]).all()
    assert len(sgan_windows(read_eth_ucy_file(tmp_path / "one.txt"))) == 0
