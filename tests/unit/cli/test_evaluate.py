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
