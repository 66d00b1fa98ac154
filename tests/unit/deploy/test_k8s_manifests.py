"""deploy/k8s: the kustomize base and overlays render to valid Kubernetes resources whose every
reference exists.

No cluster, kustomize or kubectl here: :mod:`tests._support.k8s` renders the overlays (the
subset of kustomize they use, refusing the rest) and ``kubernetes_validate`` checks each
resource against the Kubernetes JSON schemas it bundles (offline, strict: unknown fields fail)
for :data:`K8S_VERSION`. Then each reference is followed: probes and Services name container
ports, commands parse with the real CLIs, ``TRAJOPS_*`` names are settings, the HPA's Pods
metric comes from a counter the service exports.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests._support.commands import resolve
from tests._support.k8s import (
    Resource,
    UnsupportedKustomization,
    build,
    find,
    load_documents,
    pod_specs,
    strategic_merge,
    workloads,
)
from trajops.monitoring.metrics import PREDICT_ROUTE, ServingMetrics
from trajops.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "k8s"
BASE = K8S / "base"
SECRET_TEMPLATE = BASE / "secret.example.yaml"
ADAPTER_VALUES = K8S / "prometheus-adapter" / "values.yaml"
BUILDS = {"base": BASE, "dev": K8S / "overlays" / "dev", "prod": K8S / "overlays" / "prod"}
K8S_VERSION = "1.30"
API = "trajops-api"
API_KIND = "StatefulSet"  # each pod's home (write-ahead logs) is a volume of its own
IMAGE_UID = 10001  # USER of deploy/Containerfile
PLACEHOLDER = "REPLACE_ME"


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Resource]]:
    return {name: build(folder) for name, folder in BUILDS.items()}


def _api_container(resources: list[Resource]) -> dict[str, Any]:
    (container,) = pod_specs(resources)[API]["containers"]
    return dict(container)


def _containers(resources: list[Resource]) -> list[tuple[str, dict[str, Any]]]:
    return [(name, c) for name, spec in pod_specs(resources).items() for c in spec["containers"]]


def _port_number(container: dict[str, Any], port: int | str) -> int:
    """The container port a probe or a Service names (by name or number)."""
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    number = ports.get(port, port) if isinstance(port, str) else port
    assert number in ports.values(), f"{container['name']}: no container port {port!r}"
    return int(number)


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


# --- files and schemas ------------------------------------------------------------------------


def test_every_file_parses() -> None:
    files = sorted(K8S.rglob("*.yaml"))
    assert len(files) >= 15
    for path in files:
        docs = load_documents(path)
        assert docs, f"{path}: empty"
        for doc in docs:
            assert isinstance(doc, dict), path
            if path.parent != ADAPTER_VALUES.parent:
                assert {"apiVersion", "kind"} <= set(doc), path
    kustomizations = sorted(p.parent.name for p in K8S.rglob("kustomization.yaml"))
    assert kustomizations == ["base", "dev", "prod"]


@pytest.mark.parametrize("name", [*BUILDS, "secret-template"])
def test_every_resource_validates(name: str, rendered: dict[str, list[Resource]]) -> None:
    kv = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate is not installed (pyproject's dev extra)"
    )
    resources = load_documents(SECRET_TEMPLATE) if name == "secret-template" else rendered[name]
    errors = []
    for resource in resources:
        try:
            kv.validate(resource, K8S_VERSION, strict=True)
        except kv.ValidationError as exc:
            path = ".".join(map(str, exc.path))
            errors.append(
                f"{resource['kind']}/{resource['metadata']['name']}: {path}: {exc.message}"
            )
    assert not errors, "\n".join(errors)
    # the validator really validates, offline: a misspelt field and a wrong type are refused
    broken_fields: list[dict[str, Any]] = [{"readinesProbe": {}}, {"terminationMessagePath": 1}]
    for broken_field in broken_fields:
        broken = strategic_merge(
            find(rendered["base"], API_KIND, API),
            {"spec": {"template": {"spec": {"containers": [{"name": "api", **broken_field}]}}}},
        )
        with pytest.raises(kv.ValidationError):
            kv.validate(broken, K8S_VERSION, strict=True)


def test_renderer_merges_like_kustomize_and_refuses_the_rest(tmp_path: Path) -> None:
    base = {"containers": [{"name": "a", "image": "x", "args": ["1", "2"]}, {"name": "b"}]}
    patch = {"containers": [{"name": "a", "args": ["3"], "image": None}, {"name": "c"}]}
    assert strategic_merge(base, patch) == {
        "containers": [{"name": "a", "args": ["3"]}, {"name": "b"}, {"name": "c"}]
    }
    with pytest.raises(UnsupportedKustomization):
        strategic_merge(base, {"containers": [{"name": "a", "ports": [{"containerPort": 1}]}]})
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump({"resources": [str(BASE)], "commonLabels": {"a": "b"}})
    )
    with pytest.raises(UnsupportedKustomization, match="commonLabels"):
        build(tmp_path)


# --- the API ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BUILDS))
def test_api_probes_point_at_the_service_endpoints(
    name: str, rendered: dict[str, list[Resource]]
) -> None:
    container = _api_container(rendered[name])
    args = container["args"]
    port = int(args[args.index("--port") + 1])
    assert container["command"] == ["trajops", "serve"]
    probes = {
        k: container[k]["httpGet"] for k in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert probes["livenessProbe"]["path"] == probes["startupProbe"]["path"] == "/healthz"
    for probe in probes.values():
        assert _port_number(container, probe["port"]) == port
    # the startup probe covers a slow model load before liveness may restart the pod
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120


@pytest.mark.parametrize("name", list(BUILDS))
def test_api_drains_within_its_grace_period(name: str, rendered: dict[str, list[Resource]]) -> None:
    spec = pod_specs(rendered[name])[API]
    command = _api_container(rendered[name])["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    sleep_s = int(command[1])
    assert sleep_s >= 5, "endpoints and the ingress need a few seconds to forget the pod"
    # SIGTERM comes after the preStop hook, inside the same grace period: leave room to drain
    assert spec["terminationGracePeriodSeconds"] >= sleep_s + 30
    assert spec["shareProcessNamespace"] is True, "PID 1 must reap dead log writer processes"
    api = find(rendered[name], API_KIND, API)["spec"]
    assert api["updateStrategy"]["type"] == "RollingUpdate"
    # the write-ahead logs and the spool outlive the pod: on a volume of each pod's own
    home = next(m for m in _api_container(rendered[name])["volumeMounts"] if m["name"] == "home")
    assert home["mountPath"] == "/var/lib/trajops"  # the image's TRAJOPS_HOME
    (template,) = [t for t in api["volumeClaimTemplates"] if t["metadata"]["name"] == "home"]
    assert template["spec"]["accessModes"] == ["ReadWriteOnce"], "flock() holds on one host only"


@pytest.mark.parametrize("name", list(BUILDS))
def test_pods_run_unprivileged_with_resources(
    name: str, rendered: dict[str, list[Resource]]
) -> None:
    for workload, spec in pod_specs(rendered[name]).items():
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] == IMAGE_UID, workload
        assert pod["seccompProfile"]["type"] == "RuntimeDefault", workload
        for container in spec["containers"]:
            ctx = container["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False, workload
            assert ctx["capabilities"]["drop"] == ["ALL"], workload
            if ctx.get("readOnlyRootFilesystem"):
                mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
                assert "/tmp" in mounts, f"{workload}: a read-only root needs a writable /tmp"
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), workload
            assert {"cpu", "memory"} <= set(resources["limits"]), workload


def test_hpa_scales_on_cpu_and_on_an_exported_load_metric(
    rendered: dict[str, list[Resource]],
) -> None:
    hpa = find(rendered["base"], "HorizontalPodAutoscaler", API)
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": API_KIND, "name": API}
    by_type = {m["type"]: m for m in hpa["spec"]["metrics"]}
    assert by_type["Resource"]["resource"]["name"] == "cpu"
    pods_metric = by_type["Pods"]["pods"]["metric"]["name"]

    # the Prometheus adapter rule that serves the Pods metric reads a series of /metrics
    metrics = ServingMetrics()
    metrics.observe_request(
        route=PREDICT_ROUTE, method="POST", status=200, model_version="1", seconds=0.001
    )
    samples = {
        s.name: s.labels
        for family in text_string_to_metric_families(metrics.render()[0].decode())
        for s in family.samples
    }
    rules = yaml.safe_load(ADAPTER_VALUES.read_text())["rules"]["custom"]
    served = {}
    for rule in rules:
        series = re.findall(r"^[a-zA-Z_:][a-zA-Z0-9_:]*", rule["seriesQuery"])[0]
        as_ = re.sub(r"\$\{(\d+)\}", r"\\g<\1>", rule["name"]["as"])
        served[re.sub(rule["name"]["matches"], as_, series)] = (series, rule["metricsQuery"])
    assert pods_metric in served, f"no adapter rule serves {pods_metric}: {sorted(served)}"
    series, query = served[pods_metric]
    assert series in samples, f"{series} is not in the service's /metrics"
    assert samples[series]["route"] == PREDICT_ROUTE
    assert f'route="{PREDICT_ROUTE}"' in query, "probes and other routes must not count as load"
    assert "<<.LabelMatchers>>" in query and "<<.GroupBy>>" in query


def test_pdb_selects_exactly_the_api_pods(rendered: dict[str, list[Resource]]) -> None:
    resources = rendered["prod"]
    pdb = find(resources, "PodDisruptionBudget", API)
    selector = pdb["spec"]["selector"]["matchLabels"]
    selected = [
        r["metadata"]["name"]
        for r in workloads(resources)
        if _selects(selector, r["spec"]["template"]["metadata"]["labels"])
    ]
    assert selected == [API]
    assert pdb["spec"]["maxUnavailable"] == 1  # 1 replica (dev) still drains; 3 go one by one


@pytest.mark.parametrize("name", list(BUILDS))
def test_services_ingress_and_urls_reach_listening_ports(
    name: str, rendered: dict[str, list[Resource]]
) -> None:
    resources = rendered[name]
    service_ports: dict[str, dict[str | int, int]] = {}
    for svc in (r for r in resources if r["kind"] == "Service"):
        (target,) = (
            w
            for w in workloads(resources)
            if _selects(svc["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"])
        )
        (container,) = target["spec"]["template"]["spec"]["containers"]
        ports = service_ports.setdefault(svc["metadata"]["name"], {})
        for p in svc["spec"]["ports"]:
            _port_number(container, p["targetPort"])
            ports[p["name"]] = ports[p["port"]] = p["port"]
        # a workload's own selector matches its pods
        assert _selects(
            target["spec"]["selector"]["matchLabels"],
            target["spec"]["template"]["metadata"]["labels"],
        )
    ingress = find(resources, "Ingress", API)
    backends = [
        path["backend"]["service"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    assert backends and all(b["port"]["name"] in service_ports[b["name"]] for b in backends)
    # every service:port the manifests point at (ConfigMap URLs, commands) is a Service port
    configmaps = [r for r in resources if r["kind"] == "ConfigMap"]
    text = yaml.safe_dump([*configmaps, *workloads(resources)])
    pairs = set(re.findall(r"(?:https?|tcp)://([a-z][a-z0-9-]*):(\d+)", text))
    pairs |= set(re.findall(r"(trajops-[a-z-]+):(\d+)", text))
    assert ("trajops-mlflow", "5000") in pairs and ("trajops-dask-scheduler", "8786") in pairs
    for host, port in pairs:
        assert int(port) in service_ports.get(host, {}).values(), f"{host}:{port}"
    # every volume a container mounts exists: a pod volume whose claim is rendered, or a
    # StatefulSet's claim template
    claims = {r["metadata"]["name"] for r in resources if r["kind"] == "PersistentVolumeClaim"}
    for workload in workloads(resources):
        spec = workload["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        templates = {
            t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])
        }
        assert not volumes.keys() & templates, workload["metadata"]["name"]
        for volume in volumes.values():
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims, volume
        for container in spec["containers"]:
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes.keys() | templates, mount


@pytest.mark.parametrize("name", list(BUILDS))
def test_container_commands_parse_with_the_real_clis(
    name: str, rendered: dict[str, list[Resource]]
) -> None:
    for workload, container in _containers(rendered[name]):
        argv = [*container["command"], *container.get("args", [])]
        try:
            resolve(argv)
        except Exception as exc:  # click's and typer's own (vendored) parse errors
            pytest.fail(f"{workload}: {' '.join(argv)}: {exc}")


# --- configuration and secrets ----------------------------------------------------------------


@pytest.mark.parametrize("name", list(BUILDS))
def test_every_env_name_is_a_setting(name: str, rendered: dict[str, list[Resource]]) -> None:
    settings = {f"TRAJOPS_{field.upper()}" for field in Settings.model_fields}
    resources = rendered[name]
    config = find(resources, "ConfigMap", "trajops-config")["data"]
    unknown = sorted(set(config) - settings)
    assert not unknown, f"no settings field reads ConfigMap keys {unknown}"
    assert all(isinstance(v, str) for v in config.values()), "ConfigMap values are strings"
    template = set(load_documents(SECRET_TEMPLATE)[0]["stringData"])
    unknown = sorted(k for k in template - settings if k.startswith("TRAJOPS_"))
    assert not unknown, f"no settings field reads Secret keys {unknown}"
    seen = set()
    for workload, container in _containers(resources):
        cli = resolve([*container["command"], *container.get("args", [])])
        cli_envvars = {
            var
            for param in cli.params
            for var in ([param.envvar] if isinstance(param.envvar, str) else param.envvar or [])
        }
        for ref in container.get("envFrom", []):
            assert ref == {"configMapRef": {"name": "trajops-config"}}, workload
        for env in container.get("env", []):
            seen.add(env["name"])
            if env["name"].startswith("TRAJOPS_"):
                assert env["name"] in settings, f"{workload}: {env['name']} is no setting"
            else:  # another program's variable: its CLI must read it
                assert env["name"] in cli_envvars, (
                    f"{workload}: {_program(container)} ignores {env['name']}"
                )
    assert {"TRAJOPS_DATABASE_URL", "TRAJOPS_REDIS_URL", "MLFLOW_BACKEND_STORE_URI"} <= seen


def _program(container: dict[str, Any]) -> str:
    return " ".join(container["command"][:1] + container.get("args", [])[:1])


def test_secret_is_a_template_of_placeholders(rendered: dict[str, list[Resource]]) -> None:
    (secret,) = load_documents(SECRET_TEMPLATE)
    assert secret["kind"] == "Secret" and "data" not in secret
    values = secret["stringData"]
    assert {
        "TRAJOPS_DATABASE_URL",
        "TRAJOPS_REDIS_URL",
        "TRAJOPS_API_KEY_PEPPER",
        "TRAJOPS_PSEUDONYM_KEY",
    } <= set(values)
    for key, value in values.items():
        assert PLACEHOLDER in value, f"{key} holds a value, not a placeholder"
        assert len(value.replace(PLACEHOLDER, "")) < 60, f"{key}: more than a URL's skeleton"
    for name, resources in rendered.items():
        # a Secret in the kustomization would put the placeholders back on every apply
        assert not [r for r in resources if r["kind"] == "Secret"], name
        for workload, container in _containers(resources):
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == secret["metadata"]["name"], workload
                    assert ref["key"] in values, f"{workload}: {ref['key']} not in the template"


# --- overlays ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "replicas"), [("base", 2), ("dev", 1), ("prod", 3)])
def test_overlay_replicas(name: str, replicas: int, rendered: dict[str, list[Resource]]) -> None:
    resources = rendered[name]
    assert find(resources, API_KIND, API)["spec"]["replicas"] == replicas
    hpa = find(resources, "HorizontalPodAutoscaler", API)["spec"]
    assert hpa["minReplicas"] == replicas < hpa["maxReplicas"]


def test_overlays_set_namespace_and_image(rendered: dict[str, list[Resource]]) -> None:
    for name, namespace in (("dev", "trajops-dev"), ("prod", "trajops")):
        resources = rendered[name]
        ns = find(resources, "Namespace", namespace)
        assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        assert {r["metadata"].get("namespace") for r in resources if r is not ns} == {namespace}
        images = {c["image"] for _, c in _containers(resources)}
        assert len(images) == 1 and images != {"trajops:latest"}, f"{name}: {images}"
    dev = _api_container(rendered["dev"])["resources"]["limits"]
    prod = _api_container(rendered["prod"])["resources"]["limits"]
    assert dev != prod and dev["memory"] == "1536Mi"
