"""`trajops batch predict` as a user runs it: a bad input exits 2 with one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def _trajops(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    exe = str(Path(sys.executable).with_name("trajops"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAJOPS_")}
    return subprocess.run(
        [exe, *args], capture_output=True, text=True, env={**env, "TRAJOPS_HOME": str(home)}
    )


def test_missing_columns_exit_2_without_traceback_or_output(tmp_path: Path) -> None:
    src = tmp_path / "tracks.csv"
    src.write_text("scene,frame,x,y\ns,0,1,2\n")
    out = tmp_path / "out"
    done = _trajops("batch", "predict", "-i", str(src), "-o", str(out), home=tmp_path / "h")
    assert done.returncode == 2
    assert "missing column(s) ['agent_id']" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not out.exists()
