"""The whole compose stack, for real (``make test-stack``): deploy/compose.yaml up with
podman-compose from images built here, the lifecycle through the stack's own front doors, a
zero-downtime rollout of the API replicas under load, and ``down -v`` leaving nothing.

Every image is built on this machine (scripts/build-image.sh): the serve image, the dashboard
and Airflow images layered on it (``--extras``), and the third-party services from Debian's
packages (``--service``), which compose takes through POSTGRES_IMAGE, REDIS_IMAGE and
NGINX_IMAGE; nothing is pulled.

The stack comes up in stages (conftest.py, _stack.py: stores, then MLflow, then a first model
trained by the ``train`` profile, then the API replicas, nginx, Dask, the dashboard and Airflow)
because podman before 4.6 has no ``podman wait --condition=healthy`` and podman-compose then
ignores ``service_healthy``. Everything after the training goes through nginx (and the
dashboard's own port): predictions, ground truth, a promotion and its rollback, a drift run, a
batch job on the stack's Dask cluster, an A/B experiment started and rolled back. Then the
rollout under load, the retraining DAG triggered in the stack's Airflow, the Kubernetes API
pod under ``podman kube play`` (_kube.py), and ``down -v``. Each phase prints its time.

Not here (docs/deployment.md says why): the ``monitoring`` profile.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests._support.load import SteadyLoad
from tests._support.podman import ROOT, podman
from tests._support.waiting import eventually, post_until_logged
from tests.stack._kube import kube_manifests
from tests.stack._stack import (
    APP_IMAGE,
    NEXT_IMAGE,
    PROFILES,
    READY,
    TAG,
    WALKER,
    Stack,
    wait_exec,
    wait_http,
)

pytestmark = [pytest.mark.stack, pytest.mark.timeout(2700)]


def _predict(api: httpx.Client, agent: str, *, shift: float = 0.0) -> dict[str, Any]:
    walker = [[x + shift, y] for x, y in WALKER]
    answer = api.post("/v1/predict", json={"agents": [{"agent_id": agent, "positions": walker}]})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _serves(api: httpx.Client, version: str) -> bool:
    """Whether ten predictions in a row (both replicas, least_conn) come from ``version``."""

    def versions() -> set[str]:
        return {str(_predict(api, f"v{i}")["model"]["version"]) for i in range(10)}

    return eventually(versions, lambda seen: seen == {str(version)}, timeout_s=30, every_s=1.0) == {
        str(version)
    }


def test_two_replicas_behind_nginx(stack: Stack) -> None:
    assert len(stack.containers("api")) == 2
    assert httpx.post(f"{stack.url}/v1/predict", json={"agents": []}).status_code == 401


def test_lifecycle_through_the_front_doors(stack: Stack) -> None:
    started = time.monotonic()
    with stack.api() as api:
        models = api.get("/v1/models").json()
        aliases = models["aliases"]
        assert {"champion", "challenger"} <= set(aliases), models

        served = [_predict(api, f"walker-{i}", shift=0.1 * i) for i in range(30)]
        (first,) = served[0]["predictions"]
        assert len(first["positions"]) == 12 and first["positions"][-1][0] > WALKER[-1][0]
        truth = [[WALKER[-1][0] + 0.5 * (t + 1), 0.0] for t in range(12)]
        for i, body in enumerate(served[:10]):
            feedback = post_until_logged(
                api, "/v1/feedback",
                json={"request_id": body["request_id"], "agent_id": f"walker-{i}",
                      "positions": [[x + 0.1 * i, y] for x, y in truth]},
            )  # fmt: skip
            assert feedback.status_code == 200, feedback.text

        champion, challenger = aliases["champion"], aliases["challenger"]
        promoted = api.post(
            f"/v1/models/{challenger}/promote",
            json={"alias": "champion", "force": True, "reason": "stack test"},
        )
        assert promoted.status_code == 200, promoted.text
        assert promoted.json()["version"] == int(challenger)
        # both replicas follow the registry (the other one at its next poll)
        assert _serves(api, challenger), "a replica still answers with the old champion"
        rolled = api.post("/v1/models/rollback", json={"alias": "champion", "reason": "stack"})
        assert rolled.status_code == 200, rolled.text
        assert _serves(api, champion), "a replica still answers with the rolled-back version"

        for scene in range(6):  # 120 served inputs: enough for a drift window of 100
            agents = [
                {
                    "agent_id": f"scene{scene}-{a}",
                    "positions": [[x + a, y + 0.3 * a] for x, y in WALKER],
                }
                for a in range(20)
            ]
            assert api.post("/v1/predict", json={"agents": agents}).status_code == 200
        drift = eventually(
            lambda: api.post("/v1/monitoring/drift/run", params={"window": 100}),
            lambda r: r.status_code != 422,  # the prediction log is written asynchronously
            timeout_s=30,
            every_s=1.0,
        )
        assert drift.status_code == 200, drift.text
        assert api.get("/v1/monitoring/drift").status_code == 200
    stack.phase("lifecycle through nginx", started)


def test_rollout_to_a_new_image_drops_no_request(stack: Stack) -> None:
    started = time.monotonic()
    built = subprocess.run(
        ["podman", "build", "-t", NEXT_IMAGE, "-f", "-", str(ROOT / "deploy" / "images")],
        input=f"FROM {APP_IMAGE}\nLABEL io.trajops.release=stack-test-next\n",
        env=stack.env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    before = {c: _image_of(stack, c) for c in stack.containers("api")}
    # A client as HTTP allows: a prediction whose keep-alive connection nginx's reload closed
    # as it went out is sent once more (counted below; never a failure hidden).
    load = SteadyLoad(
        stack.url, headers={"X-API-Key": stack.key}, rate_per_s=30, concurrency=4, retry_closed=True
    )
    with load:
        load.wait_requests(40, timeout_s=60)
        rollout = subprocess.run(
            ["bash", str(ROOT / "deploy" / "rollout.sh"), NEXT_IMAGE, "--project", stack.project],
            env=stack.env, capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        print(rollout.stdout)
        assert rollout.returncode == 0, rollout.stdout + rollout.stderr
        load.wait_requests(40, timeout_s=60)  # and the load goes on after the roll
    outcomes = load.outcomes()
    failed = [o for o in outcomes if o.status != 200]
    latencies = sorted(o.finished - o.started for o in outcomes)
    p99_ms = 1000 * latencies[int(0.99 * (len(latencies) - 1))]
    retried = sum(o.retried for o in outcomes)
    print(
        f"[{TAG}] rollout: {len(outcomes)} requests, {len(failed)} failed, {retried} sent again "
        f"after nginx closed their idle connection, p99 {p99_ms:.0f} ms"
    )
    assert not failed, failed[:5]
    assert retried <= 3 * 4, "more retries than 3 reloads x 4 idle connections can cause"
    after = {c: _image_of(stack, c) for c in stack.containers("api")}
    assert set(after) == set(before), "the replicas keep their names"
    next_id = podman("image", "inspect", "--format", "{{.Id}}", NEXT_IMAGE, env=stack.env)
    assert set(after.values()) == {next_id.stdout.strip()}
    with stack.api() as api:
        assert _predict(api, "after-rollout")["predictions"]
    stack.phase("rollout of 2 replicas under load", started)


def _image_of(stack: Stack, container: str) -> str:
    return podman("inspect", "--format", "{{.Image}}", container, env=stack.env).stdout.strip()


def test_batch_job_on_the_stacks_dask(stack: Stack) -> None:
    """A file on the shared batch volume, predicted on the stack's Dask worker."""
    started = time.monotonic()
    rows = "".join(
        f"{10 * t} {agent} {0.4 * t:.2f} {1.5 * agent:.2f}\n"
        for agent in range(3)
        for t in range(20)
    )
    replica = stack.containers("api")[0]
    written = subprocess.run(
        ["podman", "exec", "-i", replica, "sh", "-c", "cat > /var/lib/trajops/batch/stack.txt"],
        input=rows, env=stack.env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert written.returncode == 0, written.stderr
    with stack.api() as api:
        submitted = api.post("/v1/batch-jobs", json={"input": "stack.txt", "output": "stack-job"})
        assert submitted.status_code == 202, submitted.text
        job = submitted.json()["id"]
        status = eventually(
            lambda: api.get(f"/v1/batch-jobs/{job}").json(),
            lambda s: s["state"] in ("succeeded", "failed"),
            timeout_s=300,
            every_s=1.0,
        )
    assert status["state"] == "succeeded", status
    # every 8-step observation window of each 20-frame track (stride 1): 3 agents x 13
    assert status["windows"] == 39, status
    stack.phase("batch job on Dask", started)


def test_experiment_started_and_rolled_back(stack: Stack) -> None:
    started = time.monotonic()
    with stack.api() as api:
        # Another registered version (the demo registers three; the lifecycle's promotion and
        # rollback took the challenger alias away).
        champion = str(api.get("/v1/models").json()["aliases"]["champion"])
        other = "1" if champion != "1" else "2"
        created = api.post(
            "/v1/experiments",
            json={
                "name": "stack-ab",
                "arms": [
                    {"name": "control", "model": "champion", "weight": 50},
                    {"name": "treatment", "model": str(other), "weight": 50},
                ],
                "min_samples": 1000,
            },
        )
        assert created.status_code == 201, created.text
        experiment = created.json()["id"]

        def variants() -> set[str]:
            return {_predict(api, f"ab-{i}")["variant"].split("@")[0] for i in range(40)}

        # the replica that did not create it routes by it after its next refresh
        seen = eventually(
            variants, lambda v: v == {"control", "treatment"}, timeout_s=30, every_s=1.0
        )
        assert seen == {"control", "treatment"}, seen
        rolled = api.post(f"/v1/experiments/{experiment}/rollback", json={"reason": "stack"})
        assert rolled.status_code == 200, rolled.text
        assert api.get(f"/v1/experiments/{experiment}").json()["status"] == "rolled_back"
        assert (
            eventually(
                lambda: _predict(api, "ab-after")["variant"],
                lambda v: v == "default",
                timeout_s=30,
                every_s=1.0,
            )
            == "default"
        )
    stack.phase("A/B experiment started and rolled back", started)


def test_dashboard_answers(stack: Stack) -> None:
    port = stack.ports["DASHBOARD_PORT"]
    wait_http(f"http://127.0.0.1:{port}/_stcore/health", timeout_s=120, what="the dashboard")
    page = httpx.get(f"http://127.0.0.1:{port}/", timeout=30)
    assert page.status_code == 200 and "<html" in page.text.lower()


def _airflow(stack: Stack, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """``airflow ARGS`` inside the stack's Airflow container."""
    (airflow,) = stack.containers("airflow")
    return podman("exec", airflow, "airflow", *args, env=stack.env, timeout=timeout)


def test_retraining_dag_runs_inside_the_stack(stack: Stack) -> None:
    """The retraining DAG, triggered in the stack's Airflow, harvests the predictions and ground
    truth served above from PostgreSQL, trains, registers in the stack's MLflow and runs the
    promotion gate (which may refuse the candidate: the run still succeeds)."""
    started = time.monotonic()
    port = stack.ports["AIRFLOW_PORT"]
    wait_http(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout_s=420, what="Airflow")
    dag = "trajops_retraining"
    parsed = eventually(
        lambda: _airflow(stack, "dags", "unpause", dag), lambda r: r.returncode == 0,
        timeout_s=300, every_s=5.0,
    )  # fmt: skip
    assert parsed.returncode == 0, parsed.stderr[-2000:]
    conf = '{"models": ["linear"], "epochs": 1, "challenger_traffic": 10.0}'
    run_id = f"stack-test-{uuid.uuid4().hex[:8]}"
    triggered = _airflow(stack, "dags", "trigger", dag, "--conf", conf, "--run-id", run_id)
    assert triggered.returncode == 0, triggered.stderr[-2000:]

    def state() -> str:  # of this run (unpausing may also start the weekly one)
        listed = _airflow(stack, "dags", "list-runs", dag, "-o", "json")
        # the JSON is the last line; Airflow may log warnings before it
        lines = [ln for ln in listed.stdout.splitlines() if ln.startswith("[")]
        runs = json.loads(lines[-1]) if listed.returncode == 0 and lines else []
        return next((str(r["state"]) for r in runs if r.get("run_id") == run_id), "none")

    final = eventually(state, lambda s: s in ("success", "failed"), timeout_s=900, every_s=5.0)
    if final != "success":
        (airflow,) = stack.containers("airflow")
        logs = podman("logs", "--tail", "80", airflow, env=stack.env)
        pytest.fail(f"{dag} ended {final}:\n{logs.stdout[-6000:]}{logs.stderr[-6000:]}")
    mlflow = f"http://127.0.0.1:{stack.ports['MLFLOW_PORT']}"
    found = httpx.get(
        f"{mlflow}/api/2.0/mlflow/model-versions/search",
        params={"filter": "name='trajectory-forecaster'"},
        timeout=30,
    )
    assert found.status_code == 200, found.text
    # the demo registered three versions; the DAG's register task added one more
    assert len(found.json()["model_versions"]) >= 4, found.json()
    stack.phase("retraining DAG inside the stack", started)


def test_api_deployment_runs_with_podman_kube_play(stack: Stack, tmp_path: Path) -> None:
    """The Kubernetes API pod (deploy/k8s) on this stack's network: it becomes ready, with its
    read-only root, as the image's user, and answers a prediction."""
    started = time.monotonic()
    manifests, config = kube_manifests(stack)
    kube_file, config_file = tmp_path / "api.yaml", tmp_path / "configmap.yaml"
    kube_file.write_text(yaml.safe_dump_all(manifests, sort_keys=False))
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    played = podman(
        "kube", "play", "--network", f"{stack.project}_default", "--configmap", str(config_file),
        str(kube_file), env=stack.env, timeout=300,
    )  # fmt: skip
    try:
        assert played.returncode == 0, played.stdout + played.stderr
        listed = podman("ps", "--filter", f"pod={stack.project}-kube-api-pod-0",
                        "--format", "{{.Names}}", env=stack.env)  # fmt: skip
        (api,) = [n for n in listed.stdout.split() if n.endswith("-api")]
        wait_exec(stack, api, "python3", "-c", READY, timeout_s=300)
        inspected = podman("inspect", "--format", "{{.HostConfig.ReadonlyRootfs}} {{.Config.User}}",
                           api, env=stack.env).stdout.split()  # fmt: skip
        assert inspected[0] == "true", inspected
        body = json.dumps({"agents": [{"agent_id": "kube", "positions": WALKER}]})
        predict = (
            "import sys, urllib.request; r = urllib.request.Request("
            "'http://127.0.0.1:8000/v1/predict', data=sys.argv[1].encode(), headers="
            f"{{'X-API-Key': '{stack.key}', 'Content-Type': 'application/json'}}); "
            "print(urllib.request.urlopen(r, timeout=30).status)"
        )
        answered = podman("exec", api, "python3", "-c", predict, body, env=stack.env)
        assert answered.stdout.strip() == "200", answered.stdout + answered.stderr
    finally:
        podman("kube", "down", str(kube_file), env=stack.env, timeout=120)
        for manifest in manifests[:2]:
            podman("volume", "rm", "--force", manifest["metadata"]["name"], env=stack.env)
    stack.phase("the k8s API pod with podman kube play", started)


def test_down_leaves_nothing(stack: Stack) -> None:
    """Last: ``down -v`` removes every container (the rolled ones too), volume and network."""
    started = time.monotonic()
    stack.compose(*PROFILES, "down", "-v", timeout=300)
    label = f"label=io.podman.compose.project={stack.project}"
    left = {
        "containers": podman(
            "ps", "-a", "--filter", label, "--format", "{{.Names}}", env=stack.env
        ),
        "volumes": podman("volume", "ls", "--format", "{{.Name}}", env=stack.env),
        "networks": podman("network", "ls", "--format", "{{.Name}}", env=stack.env),
    }
    for kind, listed in left.items():
        assert listed.returncode == 0, listed.stderr
        mine = [n for n in listed.stdout.split() if n.startswith(stack.project)]
        assert not mine, f"{kind} left after down -v: {mine}"
    stack.phase("down -v", started)
    print(f"[{TAG}] phases: " + ", ".join(f"{k} {v:.0f} s" for k, v in stack.phases.items()))
