"""Cards as run artifacts: written at training, read back for a registered version.

Artifacts a training run gains (next to ``evaluation.json`` and ``model_card.md``)::

    performance_card.md           the performance card, default group config
    performance_card.json         the same, machine-readable (PerformanceCard.to_dict)
    performance/windows.parquet   per-window errors and traits (rebuild a card with other groups)
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trajops.cards.breakdown import PerformanceConfig, check_table, window_table
from trajops.cards.model_card import ModelCardFacts, render_model_card
from trajops.cards.performance import PerformanceCard, performance_card
from trajops.cards.render import render_performance_card
from trajops.data.windows import WindowSet
from trajops.errors import ModelNotFoundError, ValidationError
from trajops.registry.adapter import ModelVersionInfo, Registry
from trajops.tracking.artifacts import EVALUATION_PATH, MODEL_CARD_PATH
from trajops.tracking.backend import translate_errors

PERFORMANCE_CARD_PATH = "performance_card.md"
PERFORMANCE_JSON_PATH = "performance_card.json"
WINDOW_ERRORS_PATH = "performance/windows.parquet"
CARD_KINDS = ("model", "performance")
"""What ``GET /v1/models/{version}/card?kind=...`` and ``trajops cards`` can render."""


def write_cards(
    folder: Path,
    *,
    model: str,
    run_id: str,
    params: dict[str, Any],
    metrics: dict[str, float],
    evaluation: dict[str, Any],
    windows: WindowSet,
    pred: np.ndarray,
    config: PerformanceConfig | None = None,
) -> list[Path]:
    """Write the model card, the performance card (md + json) and the per-window table.

    Args:
        folder: the run's artifact staging folder.
        model: forecaster type.
        run_id: the training run.
        params: the run's logged parameters.
        metrics: the run's logged metrics.
        evaluation: the run's ``evaluation.json`` content.
        windows: the scored test windows.
        pred: ``(N, T_pred, 2)`` deterministic forecast of ``windows``.
        config: performance card groups and thresholds (defaults when None).

    Returns:
        The files written.
    """
    config = config or PerformanceConfig()
    frame = window_table(windows, pred, density_radius=config.bins.density_radius)
    table_path = folder / WINDOW_ERRORS_PATH
    table_path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(table_path, index=False)
    card = performance_card(
        frame, config, title=f"`{model}` forecaster", source={"run_id": run_id, "model": model}
    )
    json_path = folder / PERFORMANCE_JSON_PATH
    json_path.write_text(json.dumps(card.to_dict(), indent=2, allow_nan=False))
    md_path = folder / PERFORMANCE_CARD_PATH
    md_path.write_text(render_performance_card(card))
    facts = ModelCardFacts(
        model=model,
        run_id=run_id,
        params={k: str(v) for k, v in params.items()},
        metrics=dict(metrics),
        evaluation=evaluation,
        performance=card,
    )
    card_path = folder / MODEL_CARD_PATH
    card_path.write_text(render_model_card(facts))
    return [table_path, json_path, md_path, card_path]


def read_window_table(path: Path) -> pd.DataFrame:
    """A per-window table from ``.parquet`` or ``.csv`` (validated).

    Raises:
        ValidationError: unreadable, wrong suffix, or not a per-window table.
    """
    if not path.is_file():
        raise ValidationError(
            f"{path}: no such file", details=[{"loc": [str(path)], "msg": "missing"}]
        )
    try:
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        elif path.suffix == ".csv":
            frame = pd.read_csv(path, dtype={"scene": str, "agent_id": str})
        else:
            raise ValidationError(
                f"{path}: expected a .parquet or .csv per-window table "
                f"(the run artifact {WINDOW_ERRORS_PATH})",
                details=[{"loc": [str(path)], "msg": "unsupported suffix"}],
            )
    except (OSError, ValueError) as exc:
        raise ValidationError(
            f"{path}: cannot read: {exc}", details=[{"loc": [str(path)], "msg": "unreadable"}]
        ) from None
    return check_table(frame, source=str(path))


@dataclass(frozen=True)
class _Logged:
    # What a training run logged for the cards (immutable once the run has finished).
    params: dict[str, str]
    metrics: dict[str, float]
    evaluation: dict[str, Any]
    performance: PerformanceCard | None


class VersionCards:
    """The cards of registered versions, read from their training runs' artifacts.

    A run's logged facts never change once it has finished, so they are kept per run id
    (a long-lived service downloads each version's artifacts once); the version's aliases
    and tags are read on every call.
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._runs: dict[str, _Logged] = {}

    def _logged(self, version: ModelVersionInfo) -> _Logged:
        if not version.run_id:
            raise ModelNotFoundError(f"v{version.version} has no training run to describe")
        found = self._runs.get(version.run_id)
        if found is not None:
            return found
        with translate_errors(
            "tracking store", not_found=f"the training run of v{version.version} is gone"
        ):
            run = self.registry.client.get_run(version.run_id)
        with tempfile.TemporaryDirectory(prefix="trajops-card-") as tmp:
            folder = Path(tmp)
            evaluation = json.loads(
                self.registry.download_run_artifact(version, EVALUATION_PATH, folder).read_text()
            )
            try:
                path = self.registry.download_run_artifact(version, PERFORMANCE_JSON_PATH, folder)
                performance: PerformanceCard | None = PerformanceCard.from_dict(
                    json.loads(path.read_text())
                )
            except ModelNotFoundError:
                performance = None  # trained before performance cards existed
        logged = _Logged(dict(run.data.params), dict(run.data.metrics), evaluation, performance)
        self._runs[version.run_id] = logged
        return logged

    def performance(
        self, ref: str | int, config: PerformanceConfig | None = None
    ) -> PerformanceCard:
        """The performance card of a version: as logged, or recomputed with ``config``.

        Raises:
            ModelNotFoundError: unknown version, or a run logged before performance cards.
        """
        version = self.registry.resolve(ref)
        source = card_source(version)
        title = f"`{version.name}` v{version.version} (`{version.tags.get('model', '?')}`)"
        if config is None:
            card = self._logged(version).performance
            if card is None:
                raise ModelNotFoundError(
                    f"the run of v{version.version} has no {PERFORMANCE_JSON_PATH} "
                    "(trained before performance cards); retrain to get one"
                )
            return replace(card, title=title, source=source)
        with tempfile.TemporaryDirectory(prefix="trajops-card-") as tmp:
            path = self.registry.download_run_artifact(version, WINDOW_ERRORS_PATH, Path(tmp))
            frame = check_table(pd.read_parquet(path), source=WINDOW_ERRORS_PATH)
        return performance_card(frame, config, title=title, source=source)

    def facts(self, ref: str | int) -> ModelCardFacts:
        """What the model card of a version says (run params, evaluation, performance)."""
        version = self.registry.resolve(ref)
        logged = self._logged(version)
        return ModelCardFacts(
            model=version.tags.get("model") or logged.params.get("model", "?"),
            run_id=version.run_id or "",
            params=logged.params,
            metrics=logged.metrics,
            evaluation=logged.evaluation,
            performance=logged.performance,
            registered=version.to_dict(),
        )

    def markdown(self, ref: str | int, *, kind: str = "model") -> str:
        """The ``kind`` card of a version as markdown (``model`` or ``performance``).

        Raises:
            ValidationError: an unknown ``kind``.
            ModelNotFoundError: an unknown version or a missing artifact.
        """
        if kind not in CARD_KINDS:
            raise ValidationError(
                f"unknown card kind {kind!r}; expected one of {', '.join(CARD_KINDS)}",
                details=[{"loc": ["kind"], "msg": f"unknown kind {kind!r}"}],
            )
        if kind == "performance":
            return render_performance_card(self.performance(ref))
        return render_model_card(self.facts(ref))


def card_source(version: ModelVersionInfo) -> dict[str, Any]:
    """Provenance of a version's cards: name, version, model type and run."""
    return {
        "registered_model": version.name,
        "version": version.version,
        "model": version.tags.get("model"),
        "run_id": version.run_id,
    }
