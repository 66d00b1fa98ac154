"""The protocol on the real ETH/UCY data: the published constant-velocity numbers reproduce."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from trajops.evaluation.protocol import evaluate_models, load_fold

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def root() -> Path:
    value = os.environ.get("TRAJOPS_DATA_ROOT")
    if not value or not (Path(value) / "eth" / "test").is_dir():
        pytest.skip("TRAJOPS_DATA_ROOT is not set to an ETH/UCY root (<root>/eth/{train,val,test})")
    return Path(value)


def test_cv_on_the_eth_fold(root: Path) -> None:
    result = evaluate_models(root, ["cv"], scenes=("eth",))
    eth = result.rows[0]
    assert eth["scene"] == "eth" and eth["n"] == 364
    assert eth["ade"] == pytest.approx(1.075, abs=0.01)
    assert eth["fde"] == pytest.approx(2.28, abs=0.02)


def test_sgan_windowing_of_the_eth_test_scene(root: Path) -> None:
    fold = load_fold(root, "eth", protocol="sgan")
    assert len(fold.test) == 181
    assert len(fold.train) > 10_000 and len(fold.val) > 1_000
