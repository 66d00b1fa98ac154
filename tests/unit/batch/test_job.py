"""Batch jobs end to end on a threaded local Dask cluster and a real SQLite MLflow registry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tests._support.batch import cv_registry, walkers
from trajops.batch import LINEAGE_KEY, BatchRequest, run_batch
from trajops.cli.main import app
from trajops.errors import ConflictError, DataError, ModelNotFoundError
from trajops.settings import Settings


@pytest.fixture(scope="module")
def registry_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    return cv_registry(tmp_path_factory.mktemp("batch-registry"))


@pytest.fixture
def settings(tmp_path: Path, registry_uri: str) -> Settings:
    return Settings(home=tmp_path / "home", tracking_uri=registry_uri)


@pytest.fixture
def tracks_file(tmp_path: Path) -> Path:
    df = walkers(scenes=8, agents=4, steps=12, seed=1)  # 48 rows per scene, 5 windows per agent
    path = tmp_path / "in" / "tracks.parquet"
    path.parent.mkdir()
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=48)
    return path


def _request(tracks: Path, out: Path, **kw: object) -> BatchRequest:
    return BatchRequest(
        input=tracks, output=out, partition_rows=100, workers=2, processes=False, **kw
    )  # type: ignore[arg-type]


def test_job_forecasts_every_window_with_lineage(
    settings: Settings, tracks_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = run_batch(settings, _request(tracks_file, out))
    totals = result.totals
    assert totals == {**totals, "rows_read": 384, "rows_bad": 0, "agents": 32, "windows": 160}
    files = sorted((out / "parts").glob("part-*.parquet"))
    assert len(files) == len(result.manifest["files"]) == 4  # 2 scenes (96 rows) per partition
    table = pq.read_table(files[0])
    lineage = json.loads(table.schema.metadata[LINEAGE_KEY])
    assert lineage["model"]["version"] == 1 and lineage["model"]["run_id"]
    assert lineage["input_digest"] == result.manifest["input_digest"]
    # constant velocity on straight walkers: x_k = x_last + (k + 1) * vx exactly
    df = pd.concat([pq.read_table(f).to_pandas() for f in files])
    src = walkers(scenes=8, agents=4, steps=12, seed=1)
    row = df[(df.scene_id == "s0003") & (df.agent_id == "2") & (df.start_frame == 20)].iloc[0]
    agent = src[(src.scene == "s0003") & (src.agent_id == "2")].set_index("frame")
    vx = agent.x[100] - agent.x[90]
    assert row["x_0"] == pytest.approx(agent.x[90] + vx, abs=1e-4)
    assert row["x_11"] == pytest.approx(agent.x[90] + 12 * vx, abs=1e-3)
    # the model was loaded once per worker, not once per partition
    assert {f["model_loads"] for f in result.manifest["files"]} == {1}
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"


def test_rerun_resumes_only_the_missing_partition(
    settings: Settings, tracks_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    run_batch(settings, _request(tracks_file, out))
    kept = out / "parts" / "part-00000.parquet"
    before = kept.stat().st_mtime_ns
    (out / "done" / "part-00002.json").unlink()  # as if the job died before part 2 finished
    (out / "parts" / "part-00002.parquet").unlink()
    again = run_batch(settings, _request(tracks_file, out))
    assert again.manifest["resumed"] is True
    assert again.manifest["partitions_skipped"] == 3
    assert kept.stat().st_mtime_ns == before
    assert (out / "parts" / "part-00002.parquet").is_file()
    assert again.totals["windows"] == 160


def test_rerun_with_other_options_or_input_is_refused(
    settings: Settings, tracks_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    run_batch(settings, _request(tracks_file, out))
    from trajops.batch import PredictConfig

    with pytest.raises(ConflictError, match="different params"):
        run_batch(settings, _request(tracks_file, out, predict=PredictConfig(num_samples=3)))
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "x.txt").write_text("not a job")
    with pytest.raises(ConflictError, match=r"holds no job\.json"):
        run_batch(settings, _request(tracks_file, stray))


def test_bad_rows_are_reported_never_dropped_silently(settings: Settings, tmp_path: Path) -> None:
    df = walkers(scenes=1, agents=2, steps=10).astype({"x": object})
    df.loc[3, "x"] = "NaN"
    src = tmp_path / "t.csv"
    df.to_csv(src, index=False)
    result = run_batch(settings, _request(src, tmp_path / "out"))
    assert result.totals["rows_bad"] == 1
    report = pd.read_csv(tmp_path / "out" / "bad_rows.csv")
    assert report[["line", "column"]].values.tolist() == [[5, "x"]]
    # agent 0 lost frame 30: 3 + 6 consecutive frames, no full window (windows never bridge
    # gaps); agent 1 keeps its 3 windows
    assert result.totals["windows"] == 3


def test_unknown_model_fails_before_writing(
    settings: Settings, tracks_file: Path, tmp_path: Path
) -> None:
    with pytest.raises(ModelNotFoundError):
        run_batch(settings, _request(tracks_file, tmp_path / "out", model="challenger"))
    assert not (tmp_path / "out").exists()


def test_cli_predict_and_clean_error(
    settings: Settings, tracks_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAJOPS_HOME", str(settings.home))
    monkeypatch.setenv("TRAJOPS_TRACKING_URI", str(settings.tracking_uri))
    runner = CliRunner()
    missing = runner.invoke(
        app,
        [
            "batch",
            "predict",
            "--input",
            str(tmp_path / "nope.csv"),
            "--output",
            str(tmp_path / "o"),
        ],
    )
    assert missing.exit_code != 0
    assert isinstance(missing.exception, DataError)
    assert "file not found" in missing.exception.message
    assert not (tmp_path / "o").exists()
    ok = runner.invoke(
        app,
        [
            "batch",
            "predict",
            "-i",
            str(tracks_file),
            "-o",
            str(tmp_path / "cli"),
            "--workers",
            "1",
            "--json",
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["totals"]["windows"] == 160
    assert np.isfinite(
        pq.read_table(tmp_path / "cli" / "parts" / "part-00000.parquet").column("x_0").to_numpy()
    ).all()
