"""The model card: what a registered forecaster is for, what it was trained on, how good it is.

The card is rendered from what the training run logged — its parameters, ``evaluation.json``
and the performance card — plus, once registered, the version's number, aliases and tags. At
training time the version does not exist yet; the card served for a version is rendered again
from the same artifacts, so both carry the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trajops import STEP_S, T_OBS, T_PRED, __version__
from trajops.cards.performance import PerformanceCard
from trajops.cards.render import interval, metres, ratio, table

MODEL_DESCRIPTIONS = {
    "cv": "constant-velocity baseline: repeats the last observed step (no learnt parameters)",
    "linear": "ridge regression from agent-centric observed positions to future offsets",
    "neural": "recurrent encoder-decoder over the agent and its neighbours (PyTorch), "
    "multi-modal sampled futures",
}


@dataclass(frozen=True)
class ModelCardFacts:
    """Everything a model card says, as logged by a training run.

    Attributes:
        model: forecaster type (``cv``, ``linear``, ``neural``).
        run_id: the training run.
        params: the run's logged parameters (``model.*``, ``window.*``, ``data.*``, ...).
        metrics: the run's logged metrics (latest values: ``test_ade``, ``val_ade``, ...).
        evaluation: the run's ``evaluation.json``.
        performance: the run's performance card (None for runs logged before it existed).
        registered: ``ModelVersionInfo.to_dict()`` of the version, once registered.
    """

    model: str
    run_id: str
    params: dict[str, Any]
    metrics: dict[str, float]
    evaluation: dict[str, Any]
    performance: PerformanceCard | None = None
    registered: dict[str, Any] | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (``trajops cards model --json``)."""
        return {
            "model": self.model,
            "description": MODEL_DESCRIPTIONS.get(self.model),
            "run_id": self.run_id,
            "registered": self.registered,
            "params": self.params,
            "metrics": self.metrics,
            "evaluation": self.evaluation,
            "performance": None if self.performance is None else self.performance.to_dict(),
        }


def _header(facts: ModelCardFacts) -> list[str]:
    reg = facts.registered
    name = f"`{reg['name']}` v{reg['version']}" if reg else "unregistered run"
    lines = [f"# Model card: {name} (`{facts.model}` forecaster)", ""]
    if reg:
        aliases = ", ".join(f"`{a}`" for a in reg.get("aliases", [])) or "none"
        lines.append(
            f"- registered version {reg['version']} of `{reg['name']}`; aliases: {aliases}"
        )
        lines.append(
            f"- registered at {reg.get('created_at', '?')}; status {reg.get('status', '?')}"
        )
    lines.append(f"- training run: `{facts.run_id}`")
    lines.append(
        f"- trained with trajops {facts.params.get('trajops_version', '?')}"
        f"; code commit `{facts.params.get('git_commit', 'not recorded')}`"
    )
    lines.append(f"- model: {MODEL_DESCRIPTIONS.get(facts.model, facts.model)}")
    return lines


def _intended_use() -> list[str]:
    obs_s, pred_s = T_OBS * STEP_S, T_PRED * STEP_S
    return [
        "## Intended use",
        "",
        f"Forecast where a walking pedestrian will be over the next {T_PRED} steps "
        f"({pred_s:.1f} s at {STEP_S:g} s steps) from its last {T_OBS} observed positions "
        f"({obs_s:.1f} s) and those of its neighbours, in metres in a fixed ground-plane frame "
        "of the scene. Intended users: planners of mobile robots and vehicles that must keep a "
        "safe distance, crowd-flow analytics, and simulation; as one input among others, with "
        "its error bars (below) taken into account.",
        "",
        "## Out-of-scope uses",
        "",
        "- Identifying, tracking or profiling individuals, or any decision about a person "
        "(access, policing, insurance, employment). The model sees anonymous positions only and "
        "must not be combined with identity data for such purposes.",
        "- Safety-critical control as the sole source of truth: the forecast is a mean path with "
        "errors of tens of centimetres to metres (see the horizon table); it does not replace "
        "sensing and emergency braking.",
        "- Other agents (vehicles, cyclists, wheelchairs at vehicle speeds), other frame rates "
        f"than {1 / STEP_S:g} Hz, image coordinates instead of metres, or lead times beyond "
        f"{pred_s:.1f} s.",
        "- Scenes unlike the training data (see limitations) without a new evaluation there.",
    ]


def _data(facts: ModelCardFacts) -> list[str]:
    data = facts.evaluation.get("data", {})
    p = facts.params
    window = ", ".join(
        f"{k[len('window.') :]}={v}" for k, v in sorted(p.items()) if k.startswith("window.")
    )
    return [
        "## Training data and lineage",
        "",
        f"- dataset: `{data.get('name', p.get('data.name', '?'))}` from `{data.get('source', '?')}`"
        + (f", fold (held-out scene) `{p['data.fold']}`" if p.get("data.fold") else ""),
        f"- fingerprints (sha256 of the canonical tracks): train `{data.get('train_digest', '?')}`, "
        f"test `{data.get('test_digest', '?')}`",
        f"- windows: train {data.get('n_train', '?')}, validation {data.get('n_val', '?')}, "
        f"test {data.get('n_test', '?')}",
        f"- windowing: {window or 'not recorded'}",
        f"- training: {_training(facts.metrics)}",
        "- lineage: the training run records each split as an MLflow dataset input "
        "(`trajops models show VERSION` lists the version's `run_id` and `data.digest`).",
    ]


def _training(metrics: dict[str, float]) -> str:
    parts = []
    if "best_epoch" in metrics:
        parts.append(f"best epoch {int(metrics['best_epoch'])} (early stopping on validation loss)")
    else:
        parts.append("closed form / no iterative training")
    if "val_ade" in metrics:
        parts.append(f"validation ADE {metrics['val_ade']:.3f} m")
    return "; ".join(parts)


def _metrics(facts: ModelCardFacts) -> list[str]:
    ev = facts.evaluation
    k_keys = sorted(k for k in ev if k.startswith("min_ade_"))
    k = k_keys[0].rsplit("_", 1)[-1] if k_keys else "20"
    lines = [
        "## Test metrics",
        "",
        table(
            [
                ("windows", "ADE (m)", "FDE (m)", f"minADE{k} (m)", f"minFDE{k} (m)"),
                (
                    str(ev.get("n", "?")),
                    metres(ev.get("ade")),
                    metres(ev.get("fde")),
                    metres(ev.get(f"min_ade_{k}")),
                    metres(ev.get(f"min_fde_{k}")),
                ),
            ]
        ),
        "",
        "### Per scene",
        "",
        table(
            [("scene", "windows", "ADE (m)", "FDE (m)")]
            + [
                (scene, str(row["n"]), metres(row["ade"]), metres(row["fde"]))
                for scene, row in ev.get("scenes", {}).items()
            ]
        ),
        "",
        "### Per horizon",
        "",
        table(
            [("lead time (s)", "mean error (m)")]
            + [(f"{h['t_s']:.1f}", metres(h["error"])) for h in ev.get("horizon", [])]
        ),
    ]
    return lines


def _performance(facts: ModelCardFacts) -> list[str]:
    lines = ["## Performance across groups", ""]
    card = facts.performance
    if card is None:
        return [*lines, "No performance card was logged with this run (trained before it existed)."]
    lines.append(
        f"Summary of the performance card (ADE {card.ade:.3f} m, "
        f"{float(card.config['confidence']):.0%} CI {interval(card.ade_ci)}); the full card is "
        "`performance_card.md` in the run, `trajops cards performance VERSION`, or "
        "`GET /v1/models/{version}/card?kind=performance`."
    )
    lines += [
        "",
        table(
            [("grouping", "disparity (worst / best)", "worst group", "best group")]
            + [(g.name, ratio(g.disparity), g.worst or "-", g.best or "-") for g in card.groupings]
        ),
        "",
    ]
    under = [s for s in card.flagged if s.underserved]
    few = [s for s in card.flagged if s.under_sampled and s.n > 0]
    lines.append(
        "Underserved groups: "
        + (
            ", ".join(f"{s.grouping} `{s.group}` ({ratio(s.ratio_to_overall)})" for s in under)
            or "none"
        )
        + "."
    )
    lines.append(
        "Under-sampled groups (too few windows to judge): "
        + (", ".join(f"{s.grouping} `{s.group}` (n={s.n})" for s in few) or "none")
        + "."
    )
    return lines


def _limitations(facts: ModelCardFacts) -> list[str]:
    ev = facts.evaluation
    horizon = ev.get("horizon", [])
    growth = ""
    if len(horizon) >= 2 and horizon[0]["error"]:
        growth = (
            f" Errors grow from {horizon[0]['error']:.3f} m at {horizon[0]['t_s']:.1f} s to "
            f"{horizon[-1]['error']:.3f} m at {horizon[-1]['t_s']:.1f} s."
        )
    scenes = ", ".join(f"`{s}`" for s in ev.get("scenes", {})) or "none recorded"
    lines = [
        "## Limitations",
        "",
        f"- Evaluated on the test scenes {scenes} only; other places, camera heights and "
        "cultures of walking were not measured. The reference feature profile logged with the "
        "run is what drift monitoring compares served inputs with.",
        f"- A single deterministic path per agent.{growth} The sampled futures behind minADE "
        "are not calibrated probabilities.",
        "- Tracking noise, occlusions and missing neighbours degrade forecasts; inputs must be "
        f"{T_OBS} consecutive positions {STEP_S:g} s apart.",
    ]
    card = facts.performance
    if card is not None and card.flagged:
        names = ", ".join(f"{s.grouping} `{s.group}`" for s in card.flagged)
        lines.append(f"- Groups flagged by the performance card: {names}.")
    if facts.model == "cv":
        lines.append("- A baseline: it ignores neighbours and cannot turn or stop.")
    return lines


def _ethics() -> list[str]:
    return [
        "## Ethical considerations",
        "",
        "- Trajectories of people are personal data. Served inputs are stored pseudonymised and "
        "deleted after the retention period; erasure and access requests are handled with "
        "`trajops privacy erase|export --subject ID` (see `docs/compliance.md`).",
        "- The training data (public ETH/UCY recordings or simulated crowds) carries no "
        "demographic attributes: fairness across protected groups cannot be measured. The "
        "performance card reports the closest situational proxies (slow or standing walkers, "
        "dense crowds, turning paths); an underserved group there can mean more risk for the "
        "people in it when a planner relies on the forecast.",
        "- Misuse risk: movement forecasts can support surveillance. Deployments must state "
        "their purpose, keep API keys scoped, and review the audit trail.",
        "- A trained model keeps what it learnt from a subject's track until the next training "
        "on retained data; erasure does not retrain models.",
    ]


def render_model_card(facts: ModelCardFacts) -> str:
    """The model card as a markdown page."""
    params = table(
        [("parameter", "value")]
        + [
            (k[len("model.") :], str(v))
            for k, v in sorted(facts.params.items())
            if k.startswith("model.")
        ]
    )
    sections = [
        _header(facts),
        _intended_use(),
        _data(facts),
        _metrics(facts),
        _performance(facts),
        ["## Hyper-parameters", "", params],
        _limitations(facts),
        _ethics(),
        [f"_Rendered by trajops {__version__} from the run's logged artifacts._", ""],
    ]
    return "\n\n".join("\n".join(s) for s in sections)
