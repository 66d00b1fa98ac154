"""``trajops evaluate`` as a user runs it: a table, a JSON file, clean errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests._support.eth_ucy import write_walkers
from trajops.data.readers import SCENES

MAIN = "from trajops.cli.main import main; main()"


def _run(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", MAIN, "evaluate", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "160", "TRAJOPS_HOME": str(tmp_path / "home")},
    )


def test_evaluate_writes_results_json(tmp_path: Path) -> None:
    for i, scene in enumerate(SCENES):
        for j, split in enumerate(("train", "val", "test")):
            write_walkers(
                tmp_path / "data" / scene / split / "f.txt", n_agents=4, n_frames=22, seed=i * 3 + j
            )
    out = tmp_path / "res" / "eval.json"
    proc = _run(
        "--data",
        str(tmp_path / "data"),
        "--models",
        "cv,linear",
        "--output",
        str(out),
        tmp_path=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "average" in proc.stdout
    payload = json.loads(out.read_text())
    rows = payload["results"]
    assert payload["protocol"] == "loso"
    assert len(rows) == 2 * (len(SCENES) + 1)
    assert {r["scene"] for r in rows if r["model"] == "linear"} == {*SCENES, "average"}


def test_bad_input_exits_2_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    cases = [
        ("--data", str(tmp_path / "nope")),
        ("--data", str(tmp_path / "data"), "--protocol", "bogus"),
        ("--data", str(tmp_path / "data"), "--models", "cv,gru"),
        ("--data", str(tmp_path / "data"), "--samples", "0"),
        ("--data", str(tmp_path / "data")),  # no fold folders
    ]
    for args in cases:
        proc = _run(*args, tmp_path=tmp_path)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "error:" in proc.stderr and "Traceback" not in proc.stderr
    assert not list((tmp_path / "data").iterdir())


def test_seeds_give_a_mean_and_a_spread(tmp_path: Path) -> None:
    for i, scene in enumerate(SCENES):
        for j, split in enumerate(("train", "val", "test")):
            write_walkers(
                tmp_path / "data" / scene / split / "f.txt", n_agents=4, n_frames=22, seed=i * 3 + j
            )
    out = tmp_path / "eval.json"
    args = ("--data", str(tmp_path / "data"), "--models", "cv,linear", "--samples", "3")
    proc = _run(*args, "--seeds", "0,1,2", "--output", str(out), tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "±" in proc.stdout  # the spread table
    payload = json.loads(out.read_text())
    assert payload["seeds"] == [0, 1, 2] and set(payload["results_by_seed"]) == {"0", "1", "2"}
    average = next(
        r for r in payload["summary"] if (r["model"], r["scene"]) == ("linear", "average")
    )
    ade = average["ade"]
    assert len(ade["values"]) == 3 and ade["std"] >= 0
    assert abs(ade["mean"] - sum(ade["values"]) / 3) < 1e-12
    eth = next(r for r in payload["results"] if (r["model"], r["scene"]) == ("cv", "eth"))
    low, high = eth["ade_ci"]
    assert low <= eth["ade"] <= high  # a bootstrap interval of the mean holds the mean here
    bad = _run("--data", str(tmp_path / "data"), "--seeds", "a,b", tmp_path=tmp_path)
    assert bad.returncode == 2 and "--seeds" in bad.stderr
