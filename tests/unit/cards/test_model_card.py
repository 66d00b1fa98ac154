"""The model card's content, rendered from logged facts."""

from __future__ import annotations

from tests._support.cards import per_window
from trajops.cards import ModelCardFacts, performance_card, render_model_card

EVALUATION = {
    "run_id": "r1",
    "model": "linear",
    "data": {
        "name": "eth_ucy:hotel",
        "source": "/data/eth_ucy/hotel",
        "train_digest": "a" * 64,
        "test_digest": "b" * 64,
        "n_train": 900,
        "n_val": 100,
        "n_test": 300,
    },
    "n": 300,
    "ade": 0.41234,
    "fde": 0.87654,
    "min_ade_20": 0.30001,
    "min_fde_20": 0.5,
    "horizon": [{"t_s": round(0.4 * (i + 1), 6), "error": 0.07 * (i + 1)} for i in range(12)],
    "scenes": {"biwi_hotel": {"n": 300, "ade": 0.41234, "fde": 0.87654}},
    "groups": [],
}


def test_the_model_card_has_every_section_and_the_logged_numbers() -> None:
    facts = ModelCardFacts(
        model="linear",
        run_id="r1",
        params={"model.alpha": "10.0", "window.t_obs": "8", "data.fold": "hotel"},
        metrics={"test_ade": 0.41234, "val_ade": 0.39},
        evaluation=EVALUATION,
        performance=performance_card(per_window(), title="x"),
        registered={
            "name": "trajectory-forecaster",
            "version": 3,
            "aliases": ["champion"],
            "created_at": "2026-01-01T00:00:00+00:00",
            "status": "READY",
        },
    )
    text = render_model_card(facts)
    assert text.startswith("# Model card: `trajectory-forecaster` v3 (`linear` forecaster)")
    for section in (
        "## Intended use",
        "## Out-of-scope uses",
        "## Training data and lineage",
        "## Test metrics",
        "### Per scene",
        "### Per horizon",
        "## Performance across groups",
        "## Hyper-parameters",
        "## Limitations",
        "## Ethical considerations",
    ):
        assert section in text, section
    assert "| 300 | 0.412 | 0.877 | 0.300 | 0.500 |" in text
    assert "| biwi_hotel | 300 | 0.412 | 0.877 |" in text
    assert "| 4.8 | 0.840 |" in text
    assert "fold (held-out scene) `hotel`" in text and "a" * 64 in text
    assert "validation ADE 0.390 m" in text and "| alpha | 10.0 |" in text
    assert "aliases: `champion`" in text
    assert "Errors grow from 0.070 m at 0.4 s to 0.840 m at 4.8 s." in text


def test_a_run_without_performance_card_still_renders() -> None:
    facts = ModelCardFacts(model="cv", run_id="r0", params={}, metrics={}, evaluation=EVALUATION)
    text = render_model_card(facts)
    assert "# Model card: unregistered run (`cv` forecaster)" in text
    assert "No performance card was logged" in text
    assert "A baseline: it ignores neighbours" in text
