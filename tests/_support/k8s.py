"""Render the kustomizations of ``deploy/k8s`` in Python, as ``kustomize build`` would.

There is no kustomize or kubectl here, so the tests build the overlays themselves. Only the
part of kustomize that ``deploy/k8s`` uses is implemented, and anything else is refused
(:class:`UnsupportedKustomization`) rather than rendered differently from kustomize:

* ``resources``: YAML files and folders holding a ``kustomization.yaml``, in order;
* ``namespace``: set on every namespaced resource;
* ``images``: ``name`` -> ``newName`` / ``newTag`` on the containers of Deployments and
  StatefulSets whose image is that name;
* ``patches`` with ``path`` only: one strategic-merge patch per file, its target named by
  its ``kind`` and ``metadata.name``. Maps merge key by key (``null`` deletes), the lists
  of :data:`MERGE_KEYS` merge item by item on their key, every other list is replaced
  (strategic merge's rule for lists without a merge key); ``$patch`` directives and lists
  whose merge key is not known here (``ports``, ...) are refused.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

SUPPORTED_FIELDS = frozenset({"apiVersion", "kind", "resources", "namespace", "images", "patches"})
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
}
"""Lists that strategic merge merges item by item (their ``patchMergeKey`` in the API)."""

UNSUPPORTED_LISTS = frozenset({"ports", "envFrom", "imagePullSecrets", "tolerations"})
"""Lists with a merge key (or a retain strategy) this renderer does not implement."""

CLUSTER_SCOPED = frozenset({"Namespace", "PersistentVolume", "StorageClass", "ClusterRole"})
WORKLOADS = frozenset({"Deployment", "StatefulSet"})
"""Kinds with a pod template (``images`` applies to them; others are refused)."""


class UnsupportedKustomization(ValueError):
    """The kustomization uses something this renderer does not do as kustomize does."""


def load_documents(path: Path) -> list[Resource]:
    """Every non-empty YAML document of ``path``."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def build(folder: Path) -> list[Resource]:
    """The resources ``kustomize build folder`` prints (in kustomization order)."""
    spec = load_documents(folder / "kustomization.yaml")[0]
    unknown = set(spec) - SUPPORTED_FIELDS
    if unknown:
        raise UnsupportedKustomization(f"{folder}: unsupported fields {sorted(unknown)}")
    resources: list[Resource] = []
    for entry in spec.get("resources", []):
        target = (folder / entry).resolve()
        resources += build(target) if target.is_dir() else load_documents(target)
    for patch_entry in spec.get("patches", []):
        if set(patch_entry) != {"path"}:
            raise UnsupportedKustomization(f"{folder}: only `patches: - path:` is supported")
        docs = load_documents(folder / patch_entry["path"])
        if len(docs) != 1:
            raise UnsupportedKustomization(f"{patch_entry['path']}: one patch per file")
        _apply_patch(resources, docs[0], source=patch_entry["path"])
    for image in spec.get("images", []):
        _set_image(resources, image)
    if "namespace" in spec:
        for resource in resources:
            if resource["kind"] not in CLUSTER_SCOPED:
                resource.setdefault("metadata", {})["namespace"] = spec["namespace"]
    return resources


def find(resources: list[Resource], kind: str, name: str) -> Resource:
    """The resource of ``kind`` named ``name`` (exactly one)."""
    found = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    if len(found) != 1:
        raise LookupError(f"{len(found)} resources {kind}/{name}")
    return found[0]


def pod_specs(resources: list[Resource]) -> dict[str, Resource]:
    """The pod template spec of every workload (Deployment, StatefulSet), by name."""
    return {r["metadata"]["name"]: r["spec"]["template"]["spec"] for r in workloads(resources)}


def workloads(resources: list[Resource]) -> list[Resource]:
    """The resources with a pod template; a kind this module does not know is refused."""
    found = [r for r in resources if r["kind"] in WORKLOADS]
    unknown = {r["kind"] for r in resources if "template" in r.get("spec", {})} - WORKLOADS
    if unknown:
        raise UnsupportedKustomization(f"pod templates of {sorted(unknown)} are not handled")
    return found


def strategic_merge(base: Any, patch: Any, *, field: str = "") -> Any:
    """``patch`` merged into ``base`` (a new object) by the rules in this module's docstring."""
    if isinstance(patch, dict):
        if any(str(k).startswith("$") for k in patch):
            raise UnsupportedKustomization(f"{field}: $-directives are not supported")
        if not isinstance(base, dict):
            return copy.deepcopy(patch)
        merged = copy.deepcopy(base)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = strategic_merge(base.get(key), value, field=key)
        return merged
    if isinstance(patch, list):
        if field in UNSUPPORTED_LISTS:
            raise UnsupportedKustomization(f"patching the list {field!r} is not supported")
        key = MERGE_KEYS.get(field)
        if key is None or not isinstance(base, list):
            return copy.deepcopy(patch)
        merged_items = [copy.deepcopy(item) for item in base]
        index = {item[key]: i for i, item in enumerate(merged_items)}
        for item in patch:
            if item[key] in index:
                i = index[item[key]]
                merged_items[i] = strategic_merge(merged_items[i], item, field=field)
            else:
                merged_items.append(copy.deepcopy(item))
        return merged_items
    return copy.deepcopy(patch)


def _apply_patch(resources: list[Resource], patch: Resource, *, source: str) -> None:
    try:
        target = find(resources, patch["kind"], patch["metadata"]["name"])
    except LookupError as exc:
        raise UnsupportedKustomization(f"{source}: no single target: {exc}") from exc
    if target["apiVersion"] != patch["apiVersion"]:
        raise UnsupportedKustomization(f"{source}: apiVersion differs from its target's")
    merged = strategic_merge(target, patch)
    target.clear()
    target.update(merged)


def _set_image(resources: list[Resource], image: dict[str, str]) -> None:
    for spec in pod_specs(resources).values():
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            name, tag = _split_image(container["image"])
            if name == image["name"]:
                new_tag = str(image.get("newTag", tag))
                container["image"] = f"{image.get('newName', name)}:{new_tag}"


def _split_image(ref: str) -> tuple[str, str]:
    """``(name, tag)`` of an image reference (a registry's ``host:port`` is part of the name)."""
    if "@" in ref:
        raise UnsupportedKustomization(f"image digests are not supported: {ref}")
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    return (ref[:colon], ref[colon + 1 :]) if colon > slash else (ref, "latest")
