"""``trajops data`` as a user runs it: the installed console script in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trajops.data.features import FEATURE_NAMES
from trajops.data.fingerprint import fingerprint
from trajops.data.readers import read_tracks

pytestmark = pytest.mark.e2e

TRAJOPS = Path(sys.executable).parent / "trajops"


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "TRAJOPS_HOME": str(cwd / ".trajops")}
    return subprocess.run(
        [str(TRAJOPS), "data", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_simulate_validate_stats(tmp_path: Path) -> None:
    out = tmp_path / "data" / "sim.parquet"
    sim = _run(
        "simulate", "--output", str(out), "--agents", "12", "--steps", "60", "--scenes", "2",
        "--seed", "7", "--speed-factor", "1.2", "--noise", "0.01", "--step-s", "0.4",
        cwd=tmp_path,
    )  # fmt: skip
    assert sim.returncode == 0, sim.stderr
    assert out.is_file()
    tracks = read_tracks(out)
    assert set(tracks["scene"]) == {"sim-000", "sim-001"}
    assert f"{len(tracks)} rows" in sim.stdout

    val = _run("validate", str(out), cwd=tmp_path)
    assert val.returncode == 0, val.stderr
    assert val.stdout.startswith(f"OK {out}")
    assert f"{len(tracks)} rows" in val.stdout and "2 scene(s)" in val.stdout

    stats = _run("stats", str(out), "--json", cwd=tmp_path)
    assert stats.returncode == 0, stats.stderr
    doc = json.loads(stats.stdout)
    assert doc["rows"] == len(tracks) and doc["scenes"] == 2
    assert doc["digest"] == fingerprint(tracks).digest
    assert doc["windows"] > 0
    assert set(doc["features"]) == set(FEATURE_NAMES)
    # --speed-factor 1.2 on 1.3 m/s walkers: clearly faster than plain pedestrians.
    assert 1.2 < doc["features"]["mean_speed"]["p50"] < 1.8

    table = _run("stats", str(out), cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert doc["digest"] in table.stdout
    assert "mean_speed" in table.stdout and "min_neighbour_dist" in table.stdout

    again = _run(
        "simulate", "-o", str(tmp_path / "again.csv"), "--agents", "12", "--steps", "60",
        "--scenes", "2", "--seed", "7", "--speed-factor", "1.2", "--noise", "0.01",
        cwd=tmp_path,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert fingerprint(read_tracks(tmp_path / "again.csv")).digest == doc["digest"]


def test_malformed_file_exits_2_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("0\t1\t1.0\t2.0\n10\t1\t1.4\t2.0\n20\t1\toops\t2.0\n")
    for command in ("validate", "stats"):
        res = _run(command, str(bad), cwd=tmp_path)
        assert res.returncode == 2
        assert "Traceback" not in res.stderr + res.stdout
        assert f"{bad}, line 3, column 'x': not a number: 'oops'" in " ".join(res.stderr.split())
        assert res.stdout == ""


def test_bad_simulate_arguments_write_nothing(tmp_path: Path) -> None:
    for args in (
        ("--output", str(tmp_path / "x.json")),
        ("--output", str(tmp_path / "x.csv"), "--agents", "0"),
        ("--output", str(tmp_path / "x.csv"), "--preset", "cars"),
        ("--output", str(tmp_path / "x.csv"), "--step-s", "-0.4"),
    ):
        res = _run("simulate", *args, cwd=tmp_path)
        assert res.returncode == 2, args
        assert "Traceback" not in res.stderr
        assert "error:" in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".trajops") == []


def test_version_and_bare_command(tmp_path: Path) -> None:
    from trajops import __version__

    env = {**os.environ, "COLUMNS": "200", "TRAJOPS_HOME": str(tmp_path / ".trajops")}
    version = subprocess.run(
        [str(TRAJOPS), "--version"], env=env, capture_output=True, text=True, timeout=60
    )
    assert (version.returncode, version.stdout.strip()) == (0, __version__)
    bare = subprocess.run([str(TRAJOPS)], env=env, capture_output=True, text=True, timeout=60)
    assert bare.returncode == 2 and "Usage" in bare.stdout + bare.stderr
    assert "Traceback" not in bare.stderr
