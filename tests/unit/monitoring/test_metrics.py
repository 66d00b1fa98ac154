"""Online accuracy in Prometheus: per version and variant as before, per scene with a bounded
number of ``scene`` labels, and a miss counter; read back from the exposition text."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from trajops.evaluation.metrics import MISS_THRESHOLD_M
from trajops.monitoring.metrics import NO_SCENE, OTHER_SCENES, ServingMetrics


def _samples(metrics: ServingMetrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Samples called ``name`` in the rendered exposition, by their sorted labels."""
    text, _ = metrics.render()
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
        if s.name == name
    }


def _observe(metrics: ServingMetrics, scene: str | None, fde: float, version: str = "1") -> None:
    metrics.observe_online(
        model_version=version, variant="default", scene_key=scene, ade=fde / 2, fde=fde, n_steps=12
    )


def test_observe_online_per_version_and_per_scene() -> None:
    metrics = ServingMetrics()
    _observe(metrics, "k-plaza", 0.5)
    _observe(metrics, "k-plaza", 3.0)
    _observe(metrics, "k-plaza", MISS_THRESHOLD_M)  # exactly the threshold: no miss
    _observe(metrics, None, 2.5, version="2")
    by_version = _samples(metrics, "trajops_online_ade_meters_count")
    assert by_version == {
        (("model_version", "1"), ("variant", "default")): 3.0,
        (("model_version", "2"), ("variant", "default")): 1.0,
    }
    fde_sum = _samples(metrics, "trajops_online_fde_meters_sum")
    assert fde_sum[(("model_version", "1"), ("variant", "default"))] == 5.5
    plaza = (("model_version", "1"), ("scene", "k-plaza"))
    none = (("model_version", "2"), ("scene", NO_SCENE))
    scored = _samples(metrics, "trajops_online_ade_by_scene_meters_count")
    assert scored == {plaza: 3.0, none: 1.0}
    assert _samples(metrics, "trajops_online_ade_by_scene_meters_sum")[plaza] == 2.75
    assert _samples(metrics, "trajops_online_misses_total") == {plaza: 1.0, none: 1.0}


def test_scene_labels_are_bounded() -> None:
    metrics = ServingMetrics(max_scene_labels=2)
    for scene in ["s0", "s1", "s2", "s3", "s0", None]:
        _observe(metrics, scene, 0.4)
    scored = _samples(metrics, "trajops_online_ade_by_scene_meters_count")
    assert {dict(k)["scene"]: v for k, v in scored.items()} == {
        "s0": 2.0,
        "s1": 1.0,
        OTHER_SCENES: 2.0,  # s2 and s3 came after the first two
        NO_SCENE: 1.0,
    }
    assert _samples(metrics, "trajops_online_misses_total") == {  # no miss, series at 0
        k: 0.0 for k in scored
    }
    assert metrics.scene_label("s1") == "s1" and metrics.scene_label("s9") == OTHER_SCENES


def test_no_scene_labels_at_all() -> None:
    metrics = ServingMetrics(max_scene_labels=0)
    _observe(metrics, "s0", 2.5)
    assert _samples(metrics, "trajops_online_misses_total") == {
        (("model_version", "1"), ("scene", OTHER_SCENES)): 1.0
    }
