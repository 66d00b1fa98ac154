"""deploy/compose.yaml and compose.gpu.yaml: valid compose files whose every reference exists.

Validation is the compose specification's JSON schema (check-jsonschema's vendored copy, no
network); ``podman-compose config`` is no check (it exits 0 on invalid files). Then each
reference is followed into the code: commands parse with the real CLIs (``trajops``, ``mlflow``,
``dask``, ``airflow``), ``TRAJOPS_*`` variables are settings fields, ``host:port`` pairs name a
port the service listens on, bind mounts exist, ``${VAR}`` are in ``.env.example``.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests._support.commands import resolve
from trajops.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
GPU = DEPLOY / "compose.gpu.yaml"
ENV_EXAMPLE = DEPLOY / ".env.example"
BIN = Path(sys.executable).parent
# Ports third-party images listen on by default (their documented defaults).
IMAGE_PORTS = {"postgres": {5432}, "redis": {6379}, "prometheus": {9090}, "grafana": {3000}}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?]([^}]*))?\}")


def _env_example() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines())
    return {
        k.strip(): v.strip() for k, *v in pairs if k.strip() and not k.startswith("#") for v in v
    }


def _interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose interpolation of ``value`` with ``env`` (``$$`` is a literal ``$``)."""
    if isinstance(value, dict):
        return {k: _interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, env) for v in value]
    if isinstance(value, str):
        return _VAR.sub(lambda m: env.get(m.group(1)) or m.group(2) or "", value).replace("$$", "$")
    return value


def _load(path: Path) -> dict[str, Any]:
    return dict(_interpolate(yaml.safe_load(path.read_text()), _env_example()))


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    return _load(COMPOSE)


def _image_entrypoint() -> list[str]:
    line = next(
        ln
        for ln in (DEPLOY / "Containerfile").read_text().splitlines()
        if ln.startswith("ENTRYPOINT")
    )
    return list(json.loads(line.removeprefix("ENTRYPOINT")))


def _argv(service: dict[str, Any]) -> list[str]:
    """The process a trajops-image service runs: entrypoint (compose's or the image's) + command."""
    entry = service.get("entrypoint") or _image_entrypoint()
    command = service.get("command") or []
    return [*entry, *(command.split() if isinstance(command, str) else command)]


def _trajops_services(stack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in stack["services"].items() if "build" in s}


def test_compose_files_match_the_compose_spec(tmp_path: Path) -> None:
    checker = [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec"]
    ok = subprocess.run([*checker, str(COMPOSE), str(GPU)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # the validator really validates (offline): a typo'd key is refused
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE.read_text().replace("healthcheck:", "healthchek:", 1))
    bad = subprocess.run([*checker, str(broken)], capture_output=True, text=True)
    assert bad.returncode != 0 and "healthchek" in bad.stdout + bad.stderr


def test_every_variable_is_in_env_example() -> None:
    used = {m.group(1) for f in (COMPOSE, GPU) for m in _VAR.finditer(f.read_text())}
    documented = set(_env_example())
    assert used - documented == set(), "used in compose, missing from .env.example"
    assert documented - used == set(), "in .env.example, used by no compose file"
    required = {
        m.group(1)
        for f in (COMPOSE, GPU)
        for m in _VAR.finditer(f.read_text())
        if ":?" in m.group(0)
    }
    assert {"POSTGRES_PASSWORD", "REDIS_PASSWORD", "TRAJOPS_API_KEY_PEPPER"} <= required


def _known_trajops_vars() -> set[str]:
    """``TRAJOPS_*`` names the code reads: every pydantic-settings class under src/trajops
    (``env_prefix`` + field), and literal ``TRAJOPS_*`` strings."""
    known = {f"TRAJOPS_{name.upper()}" for name in Settings.model_fields}
    for path in (ROOT / "src" / "trajops").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                known |= set(re.findall(r"\bTRAJOPS_[A-Z0-9_]+\b", node.value))
            if isinstance(node, ast.ClassDef):
                prefix = next(
                    (
                        kw.value.value
                        for sub in ast.walk(node)
                        if isinstance(sub, ast.Call)
                        for kw in sub.keywords
                        if kw.arg == "env_prefix" and isinstance(kw.value, ast.Constant)
                    ),
                    None,
                )
                if isinstance(prefix, str) and prefix.startswith("TRAJOPS_"):
                    known |= {
                        f"{prefix}{st.target.id}".upper()
                        for st in node.body
                        if isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name)
                    }
    return known


def test_trajops_variables_are_settings() -> None:
    text = "\n".join(p.read_text() for p in (COMPOSE, GPU, ENV_EXAMPLE))
    used = set(re.findall(r"\bTRAJOPS_[A-Z0-9_]+\b", text))
    assert "TRAJOPS_DATABASE_URL" in used
    unknown = sorted(used - _known_trajops_vars())
    assert not unknown, f"no settings field reads {unknown}"


def test_service_commands_exist_in_the_code(stack: dict[str, Any]) -> None:
    parsed = []
    for name, service in _trajops_services(stack).items():
        argv = _argv(service)
        if argv[0] == "airflow":  # argparse; ask the real CLI, in a throwaway AIRFLOW_HOME
            continue
        try:
            resolve(argv)
        except Exception as exc:  # click's and typer's own (vendored) parse errors
            pytest.fail(f"service {name}: {' '.join(argv)}: {exc}")
        parsed.append(name)
    assert {"api", "mlflow", "dask-scheduler", "dask-worker", "train", "dashboard"} <= set(parsed)


def test_airflow_command_exists(stack: dict[str, Any], tmp_path: Path) -> None:
    argv = _argv(stack["services"]["airflow"])
    airflow = BIN / argv[0]
    assert airflow.exists(), "the airflow extra is not installed in this environment"
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path)}
    done = subprocess.run(
        [str(airflow), *argv[1:], "--help"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]


def _listens(name: str, service: dict[str, Any]) -> set[int]:
    """Ports the service listens on, from its command and environment (or its image's default)."""
    if "nginx" in service.get("image", ""):
        return {
            int(p)
            for p in re.findall(r"^\s*listen (\d+);", (DEPLOY / "nginx.conf").read_text(), re.M)
        }
    image = service.get("image", "").split("/")[-1]
    found: set[int] = set().union(*(p for key, p in IMAGE_PORTS.items() if key in image))
    argv = " ".join(_argv(service)) if "build" in service else ""
    found |= {int(p) for p in re.findall(r"--(?:port|dashboard-address) :?(\d+)", argv)}
    env = service.get("environment") or {}
    for key in ("TRAJOPS_PORT", "AIRFLOW__API__PORT"):
        if key in env:
            found.add(int(env[key]))
    if "build" in service and not service.get("entrypoint") and "--port" not in argv:
        found.add(8000)  # the image's TRAJOPS_PORT
    return found  # empty for a job (train): nothing may point at it


def test_ports_and_addresses_name_listening_ports(stack: dict[str, Any]) -> None:
    services = stack["services"]
    listens = {name: _listens(name, s) for name, s in services.items()}
    for name, service in services.items():
        for spec in service.get("ports", []):
            container = int(str(spec).rsplit(":", 1)[-1].split("/")[0])
            assert container in listens[name], (
                f"{name} publishes {container}, listens {listens[name]}"
            )
        probe = " ".join(map(str, (service.get("healthcheck") or {}).get("test", [])))
        for port in re.findall(r"127\.0\.0\.1:(\d+)", probe):
            assert int(port) in listens[name], f"{name}'s healthcheck probes {port}"
    # every service:port any file of the stack points at (URLs, upstreams, scrape targets)
    no_images = {n: {k: v for k, v in s.items() if k != "image"} for n, s in services.items()}
    texts = [yaml.safe_dump(no_images), (DEPLOY / "prometheus" / "prometheus.yml").read_text()]
    texts += [p.read_text() for p in (DEPLOY / "grafana" / "provisioning").rglob("*.yaml")]
    pairs = {
        (h, int(p))
        for t in texts
        for h, p in re.findall(r"(?<![\w.-])([a-z][a-z-]*):(\d{2,5})\b", t)
    }
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    pairs |= {
        (n, sd["port"])
        for job in prom["scrape_configs"]
        for sd in job.get("dns_sd_configs", [])
        for n in sd["names"]
    }
    checked = {(h, p) for h, p in pairs if h in services}
    for host, port in checked:
        assert port in listens[host], f"{host}:{port} referenced, {host} listens on {listens[host]}"
    assert {
        ("mlflow", 5000),
        ("api", 8000),
        ("dask-scheduler", 8786),
        ("prometheus", 9090),
    } <= checked


def test_mounts_secrets_and_build_paths_exist(stack: dict[str, Any]) -> None:
    named = set(stack.get("volumes") or {})
    used_named: set[str] = set()
    for name, service in stack["services"].items():
        for spec in service.get("volumes", []):
            source = spec.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in named, f"{name} mounts undeclared volume {source}"
                used_named.add(source)
        if "build" in service:
            build = service["build"]
            assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()
        for secret in service.get("secrets", []):
            assert secret["source"] in stack["secrets"], f"{name}: unknown secret {secret}"
    assert used_named == named, f"declared but unused volumes: {named - used_named}"
    for secret in stack["secrets"].values():  # created at deploy time, never committed
        assert secret["file"].startswith("./secrets/"), secret


def test_start_order_health_replicas_and_limits(stack: dict[str, Any]) -> None:
    services = stack["services"]
    for name, service in services.items():
        limits = service["deploy"]["resources"]["limits"]
        assert float(limits["cpus"]) > 0 and re.fullmatch(r"\d+[mg]", limits["memory"]), name
        if "replicas" in service["deploy"]:  # podman-compose ignores replicas otherwise
            assert service["deploy"].get("mode") == "replicated", name
        for dep, cond in (service.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep}'s health"
        profiles = set(service.get("profiles", []))
        for dep in service.get("depends_on") or {}:
            dep_profiles = set(services[dep].get("profiles", []))
            assert not dep_profiles or dep_profiles & profiles, f"{name} needs optional {dep}"
    assert services["api"]["deploy"]["replicas"] == 2
    assert {"monitoring", "airflow", "dashboard", "train"} <= {
        p for s in services.values() for p in s.get("profiles", [])
    }


def test_gpu_override_targets_api_and_training(stack: dict[str, Any]) -> None:
    gpu = _load(GPU)["services"]
    assert set(gpu) == {"api", "train"}
    for name, service in gpu.items():
        assert name in stack["services"]
        assert "nvidia.com/gpu=all" in service["devices"]
        assert service["build"]["args"]["VARIANT"] == "gpu"
        assert service["environment"]["TRAJOPS_DEVICE"] == "cuda"


def test_grafana_provisioning_loads_the_dashboard(stack: dict[str, Any]) -> None:
    grafana = stack["services"]["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"] if v.startswith("./"))
    target = Path(mounts["./grafana/trajops-dashboard.json"])
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/trajops.yaml").read_text())
    assert Path(provider["providers"][0]["options"]["path"]) == target.parent
    source = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/prometheus.yaml").read_text()
    )
    assert source["datasources"][0]["type"] == "prometheus"
    dashboard = json.loads((DEPLOY / "grafana" / "trajops-dashboard.json").read_text())
    assert dashboard["templating"]["list"][0]["query"] == "prometheus"
