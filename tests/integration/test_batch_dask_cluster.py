"""A batch job through the address of a real distributed scheduler with two worker processes."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from distributed import Client, LocalCluster

from tests._support.batch import cv_registry, walkers
from trajops.batch import BatchRequest, run_batch
from trajops.errors import ServiceUnavailable
from trajops.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster() -> object:
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        yield cluster


def test_job_runs_on_the_cluster_workers_and_loads_the_model_once_each(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    uri = cv_registry(tmp_path / "registry")
    settings = Settings(home=tmp_path / "home", tracking_uri=uri)
    tracks = walkers(scenes=12, agents=5, steps=10, seed=4)  # 50 rows per scene
    src = tmp_path / "tracks.parquet"
    pq.write_table(pa.Table.from_pandas(tracks, preserve_index=False), src, row_group_size=50)
    request = BatchRequest(
        input=src, output=tmp_path / "out", scheduler=cluster.scheduler_address, partition_rows=100
    )
    result = run_batch(settings, request)

    files = result.manifest["files"]
    assert len(files) == 6
    assert result.manifest["scheduler"] == cluster.scheduler_address
    with Client(cluster.scheduler_address) as client:
        worker_addresses = set(client.scheduler_info()["workers"])
    used = {f["worker"] for f in files}
    assert used <= worker_addresses
    assert len(used) == 2  # both worker processes took partitions
    assert {f["model_loads"] for f in files} == {1}
    out = pd.concat(
        pq.read_table(p).to_pandas() for p in sorted((tmp_path / "out" / "parts").glob("*.parquet"))
    )
    assert len(out) == result.totals["windows"] == 12 * 5 * 3
    assert out[["scene_id", "agent_id", "start_frame"]].duplicated().sum() == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["model"]["uri"] == "models:/trajectory-forecaster/1"


def test_unreachable_scheduler_is_a_clear_error(tmp_path: Path) -> None:
    from tests._support.services import free_port
    from trajops.batch.cluster import dask_client

    with (
        pytest.raises(ServiceUnavailable, match="unreachable"),
        dask_client(scheduler=f"tcp://127.0.0.1:{free_port()}", workers=None, connect_timeout_s=2),
    ):
        pass
