"""deploy/k8s's API pod as podman 4.3's ``kube play`` takes it (tests/stack)."""

from __future__ import annotations

import copy
from typing import Any

from tests._support import k8s
from tests._support.podman import ROOT
from tests.stack._stack import APP_IMAGE, Stack


def kube_manifests(stack: Stack) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The API of deploy/k8s (dev overlay) as podman 4.3's ``kube play`` takes it: PVCs and a
    Deployment, plus the ConfigMap (``--configmap``), pointed at this stack's services.

    The pod template is the StatefulSet's, unchanged (command, probes, security context with a
    read-only root, volumes), except for what podman 4.3 lacks: no StatefulSet (a Deployment of
    one pod; its volume claim template becomes a PVC) and no Secret kind (the four secret
    variables are given as values)."""
    resources = k8s.build(ROOT / "deploy" / "k8s" / "overlays" / "dev")
    statefulset = k8s.find(resources, "StatefulSet", "trajops-api")
    config = copy.deepcopy(k8s.find(resources, "ConfigMap", "trajops-config"))
    config["data"] |= {
        "TRAJOPS_TRACKING_URI": "http://mlflow:5000",
        "TRAJOPS_DASK_SCHEDULER": "tcp://dask-scheduler:8786",
    }
    secrets_ = {
        "TRAJOPS_DATABASE_URL": "postgresql+psycopg://trajops:"
        f"{stack.settings['POSTGRES_PASSWORD']}@postgres:5432/trajops",
        "TRAJOPS_REDIS_URL": f"redis://:{stack.settings['REDIS_PASSWORD']}@redis:6379/0",
        "TRAJOPS_API_KEY_PEPPER": stack.settings["TRAJOPS_API_KEY_PEPPER"],
        "TRAJOPS_PSEUDONYM_KEY": stack.settings["TRAJOPS_PSEUDONYM_KEY"],
    }
    template = copy.deepcopy(statefulset["spec"]["template"])
    (container,) = template["spec"]["containers"]
    container["image"] = APP_IMAGE
    for variable in container["env"]:
        if "valueFrom" in variable:
            variable["value"] = secrets_[variable.pop("valueFrom")["secretKeyRef"]["key"]]
    claims = {"home": f"{stack.project}-kube-home", "batch": f"{stack.project}-kube-batch"}
    volumes = [v for v in template["spec"]["volumes"] if v["name"] != "batch"]
    template["spec"]["volumes"] = volumes + [
        {"name": name, "persistentVolumeClaim": {"claimName": claim}}
        for name, claim in claims.items()
    ]
    pvcs = [
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": claim},
         "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
        for claim in claims.values()
    ]  # fmt: skip
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"{stack.project}-kube-api", "labels": template["metadata"]["labels"]},
        "spec": {"replicas": 1, "selector": statefulset["spec"]["selector"], "template": template},
    }
    return [*pvcs, deployment], config
