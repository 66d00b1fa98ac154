"""API batch jobs without HTTP: paths confined to the batch root, status files, failures kept."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._support.batch import cv_registry, walkers
from trajops.batch import PredictConfig
from trajops.batch.service import BatchJobs, BatchJobStatus
from trajops.data import write_tracks
from trajops.errors import NotFoundError, ServiceUnavailable, ValidationError
from trajops.settings import Settings


@pytest.fixture
def jobs(tmp_path: Path) -> Iterator[BatchJobs]:
    uri = cv_registry(tmp_path / "registry")
    root = tmp_path / "batch"
    write_tracks(walkers(scenes=3, agents=3, steps=9), root / "in" / "tracks.csv")
    service = BatchJobs(
        Settings(home=tmp_path / "home", tracking_uri=uri, batch_root=root), processes=False
    )
    yield service
    service.close()


def _wait(jobs: BatchJobs, job_id: str, timeout_s: float = 60.0) -> BatchJobStatus:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = jobs.get(job_id)
        if status.state in {"succeeded", "failed"}:
            return status
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {jobs.get(job_id).state}")


def test_job_runs_in_the_background_and_reports_progress(jobs: BatchJobs) -> None:
    first = jobs.submit(
        input_path="in", output_path="out/a", model="champion", predict=PredictConfig()
    )
    assert first.state == "queued"
    done = _wait(jobs, first.id)
    assert done.state == "succeeded", done.error
    assert done.partitions_total == done.partitions_done == 1
    assert done.windows == 9 * 2 and done.totals is not None and done.totals["windows"] == 18
    assert done.model_version == 1
    assert (Path(done.output) / "manifest.json").is_file()


def test_a_failed_job_keeps_its_error(jobs: BatchJobs) -> None:
    status = jobs.submit(
        input_path="in", output_path="out/b", model="challenger", predict=PredictConfig()
    )
    done = _wait(jobs, status.id)
    assert done.state == "failed"
    assert done.error is not None and done.error["code"] == "model_not_found"


@pytest.mark.parametrize("bad", ["../escape", "/etc", "."])
def test_paths_outside_the_batch_root_are_refused(jobs: BatchJobs, bad: str) -> None:
    with pytest.raises(ValidationError, match="inside the batch root"):
        jobs.submit(input_path=bad, output_path="out/c", model="champion", predict=PredictConfig())
    with pytest.raises(ValidationError, match="inside the batch root"):
        jobs.submit(input_path="in", output_path=bad, model="champion", predict=PredictConfig())


def test_unknown_job_and_disabled_service(jobs: BatchJobs, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        jobs.get("0" * 32)
    with pytest.raises(NotFoundError):
        jobs.get("../../etc/passwd")
    off = BatchJobs(Settings(home=tmp_path / "h2"))
    with pytest.raises(ServiceUnavailable, match="TRAJOPS_BATCH_ROOT"):
        off.submit(input_path="in", output_path="o", model="champion", predict=PredictConfig())
    off.close()


def test_closing_the_service_fails_queued_jobs_with_a_resume_hint(jobs: BatchJobs) -> None:
    first = jobs.submit(
        input_path="in", output_path="out/d", model="champion", predict=PredictConfig()
    )
    second = jobs.submit(
        input_path="in", output_path="out/e", model="champion", predict=PredictConfig()
    )
    jobs.close()
    assert jobs.get(first.id).state in {"succeeded", "failed"}
    queued = jobs.get(second.id)
    assert queued.state == "failed"
    assert queued.error is not None and queued.error["code"] == "service_unavailable"
