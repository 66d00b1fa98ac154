"""Gated promotion and rollback of the ``champion`` / ``challenger`` aliases.

A candidate version becomes ``champion`` only when it

1. **loads** as a pyfunc from the registry,
2. passes a **smoke** prediction (finite, one row per agent, the contract's columns), and
3. is **not worse** than the current champion by more than ``settings.promotion_tolerance``
   (relative ADE) on the evaluation set: recent production forecasts the candidate never
   trained on when the caller has enough of them (:mod:`trajops.monitoring.production_eval`;
   scored per scene too, and recorded), else a fixed simulated set or a given data path.

``challenger`` needs checks 1 and 2 only: a challenger exists to be compared with the champion
in production, so it may be worse offline (on production windows it is still scored beside the
champion, and the scores recorded). ``force`` bypasses failed checks and is recorded.
Every alias move is appended to the history (:mod:`trajops.registry.history`); an alias is
only moved after every check passed, so a refused promotion changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trajops.data.readers import read_tracks
from trajops.data.simulator import SimulationConfig, simulate
from trajops.data.windows import WindowSet, make_windows
from trajops.errors import (
    ConflictError,
    ModelLoadError,
    ModelNotFoundError,
    PromotionRefused,
    ValidationError,
)
from trajops.evaluation.metrics import ade, fde
from trajops.models.base import Forecaster
from trajops.models.pyfunc import OUTPUT_COLUMNS, load_forecaster, obs_to_frame, predict_frame
from trajops.registry.adapter import ALIASES, ModelVersionInfo, Registry
from trajops.registry.history import AliasEvent, previous_version, read_history, record_event

HeldOut = Callable[[ModelVersionInfo], tuple[WindowSet, str] | None]
"""Finds a candidate's held-out evaluation set and its name (held-out production windows,
:func:`trajops.monitoring.production_eval.held_out`), or None: the gate's default set."""


@dataclass(frozen=True)
class EvalSetConfig:
    """The fixed evaluation set of the promotion gate (deterministic: same seed, same set)."""

    seed: int = 20_240_601
    n_scenes: int = 2
    n_agents: int = 16
    n_steps: int = 150
    max_windows: int = 2000
    """Windows kept (evenly spaced) so the gate stays fast on a large data path."""
    smoke_agents: int = 8


@dataclass(frozen=True)
class GateCheck:
    """The outcome of one promotion check."""

    name: str
    passed: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PromotionResult:
    """What a promotion or rollback did."""

    alias: str
    version: int
    previous: int | None
    changed: bool
    checks: tuple[GateCheck, ...] = ()
    event: AliasEvent | None = None
    candidate_ade: float | None = None
    champion_ade: float | None = None
    eval_source: str | None = None
    """What the gate scored on (None: nothing was scored, the alias did not move)."""

    def to_dict(self) -> dict[str, Any]:
        """What the move did (the gate's checks included), for JSON answers."""
        return {
            "alias": self.alias,
            "version": self.version,
            "previous": self.previous,
            "changed": self.changed,
            "checks": [c.to_dict() for c in self.checks],
            "candidate_ade": self.candidate_ade,
            "champion_ade": self.champion_ade,
        }


def evaluation_windows(data: Path | None = None, config: EvalSetConfig | None = None) -> WindowSet:
    """The gate's evaluation windows: from a tracks file/folder, or a fixed simulated set."""
    config = config or EvalSetConfig()
    if data is not None:
        tracks = read_tracks(data)
    else:
        tracks = simulate(
            SimulationConfig(
                n_agents=config.n_agents,
                n_steps=config.n_steps,
                n_scenes=config.n_scenes,
                seed=config.seed,
                scene_prefix="gate",
            )
        )
    windows = make_windows(tracks)
    if len(windows) == 0:
        raise ValidationError(f"the evaluation data {data or '<simulated>'} yields no windows")
    if len(windows) > config.max_windows:
        windows = windows.subset(np.linspace(0, len(windows) - 1, config.max_windows).astype(int))
    return windows


def _load(version: ModelVersionInfo) -> Forecaster:
    try:
        return load_forecaster(version.uri)
    except ModelLoadError as exc:  # any load failure is the check's answer, not a crash
        raise ModelLoadError(f"version {version.version} does not load: {exc.message}") from exc


def _smoke(forecaster: Forecaster, windows: WindowSet, n: int) -> GateCheck:
    """The pyfunc's frame contract (columns, rows, finite positions) on ``n`` windows."""
    n = min(n, len(windows))
    frame = obs_to_frame(
        windows.obs[:n],
        agent_ids=[str(a) for a in windows.agent_id[:n]],
        scene_ids=[str(s) for s in windows.scene[:n]],
    )
    try:
        out = predict_frame(forecaster, frame)
    except Exception as exc:
        return GateCheck("smoke", False, f"prediction failed: {exc}")
    if list(out.columns) != OUTPUT_COLUMNS or len(out) != n:
        return GateCheck(
            "smoke", False, f"expected {n} rows with the contract's columns, got {out.shape}"
        )
    coords = out[OUTPUT_COLUMNS[3:]].to_numpy(dtype=np.float64)
    if not np.isfinite(coords).all():
        return GateCheck("smoke", False, "prediction holds NaN or infinite positions")
    return GateCheck("smoke", True, f"{n} agents predicted, all finite")


def score(forecaster: Forecaster, windows: WindowSet) -> tuple[float, float]:
    """ADE and FDE of ``forecaster`` on ``windows`` (with their neighbours)."""
    pred = forecaster.predict(windows.obs, neighbours=windows.neighbours)  # (N, T_pred, 2)
    return ade(pred, windows.fut), fde(pred, windows.fut)


def site_of(scene: str) -> str:
    """The site of a production window's scene (``"<site>/<request_id>"``), else the scene."""
    return scene.split("/", 1)[0] if "/" in scene else scene


def per_site_ade(forecaster: Forecaster, windows: WindowSet) -> dict[str, tuple[int, float]]:
    """``site -> (windows, ADE)`` of ``forecaster`` on ``windows``."""
    pred = forecaster.predict(windows.obs, neighbours=windows.neighbours)  # (N, T_pred, 2)
    err = np.linalg.norm(pred - windows.fut, axis=-1).mean(axis=-1)  # (N,)
    sites = np.array([site_of(str(s)) for s in windows.scene], dtype=object)
    return {
        str(site): (int((sites == site).sum()), float(err[sites == site].mean()))
        for site in sorted(set(sites.tolist()))
    }


def run_gate(
    registry: Registry,
    candidate: ModelVersionInfo,
    *,
    alias: str,
    tolerance: float,
    windows: WindowSet,
    config: EvalSetConfig | None = None,
    source: str | None = None,
) -> tuple[list[GateCheck], float | None, float | None]:
    """Run the checks for moving ``alias`` to ``candidate``.

    ``source`` names the evaluation set in the checks' messages; a ``production…`` set is
    also scored per scene (a ``per_scene`` check that informs, never refuses).

    Returns:
        The checks (in order; later ones are skipped when the model does not load), the
        candidate's ADE and the current champion's ADE on ``windows`` (None when not computed).
    """
    config = config or EvalSetConfig()
    try:
        model = _load(candidate)
    except ModelLoadError as exc:
        return [GateCheck("loads", False, exc.message)], None, None
    checks = [GateCheck("loads", True, f"{candidate.uri} loads")]
    checks.append(_smoke(model, windows, config.smoke_agents))
    production = bool(source and source.startswith("production"))
    if not checks[-1].passed or (alias != "champion" and not production):
        return checks, None, None
    cand_ade, _ = score(model, windows)
    where = f" on {source}" if source else ""
    champion = registry.alias_version("champion")
    if champion is None or champion.version == candidate.version:
        checks.append(
            GateCheck("not_worse", True, f"no current champion; ADE {cand_ade:.4f}{where}")
        )
        return checks, cand_ade, None
    try:
        champ_model = _load(champion)
    except ModelLoadError as exc:
        checks.append(GateCheck("not_worse", True, f"current champion unusable ({exc.message})"))
        return checks, cand_ade, None
    champ_ade, _ = score(champ_model, windows)
    rel = (cand_ade - champ_ade) / max(champ_ade, 1e-12)
    blocking = alias == "champion"  # a challenger is scored and recorded, never refused
    checks.append(
        GateCheck(
            "not_worse" if blocking else "compared",
            rel <= tolerance or not blocking,
            f"ADE {cand_ade:.4f} vs champion v{champion.version} {champ_ade:.4f} "
            f"({rel:+.1%}; tolerance {tolerance:.1%}){where}",
        )
    )
    if production:
        cand_sites, champ_sites = per_site_ade(model, windows), per_site_ade(champ_model, windows)
        lines = [
            f"{site[:12]} n={n} {ade_:.4f} vs {champ_sites[site][1]:.4f}"
            for site, (n, ade_) in cand_sites.items()
        ]
        checks.append(GateCheck("per_scene", True, "ADE per scene: " + "; ".join(lines)))
    return checks, cand_ade, champ_ade


def _check_alias(alias: str) -> None:
    if alias not in ALIASES:
        raise ValidationError(
            f"unknown alias {alias!r}; expected one of {', '.join(ALIASES)}",
            details=[{"loc": ["alias"], "msg": "unknown alias"}],
        )


def promote(
    registry: Registry,
    *,
    version: int | str,
    alias: str = "champion",
    tolerance: float,
    force: bool = False,
    reason: str = "",
    actor: str | None = None,
    eval_data: Path | None = None,
    config: EvalSetConfig | None = None,
    held_out: HeldOut | None = None,
) -> PromotionResult:
    """Move ``alias`` to ``version`` if the gate passes (or ``force``), and record the move.

    The gate scores on ``eval_data`` when given, else on what ``held_out`` finds for the
    candidate (asked only when the alias is to move), else on the fixed simulated set.

    Raises:
        ModelNotFoundError: no such version.
        PromotionRefused: a check failed and ``force`` is off; ``details`` names each one.
    """
    _check_alias(alias)
    candidate = registry.resolve(version)
    current = registry.alias_version(alias)
    if current is not None and current.version == candidate.version:
        return PromotionResult(alias, candidate.version, current.version, changed=False)
    found = held_out(candidate) if held_out is not None and eval_data is None else None
    if found is None:
        windows = evaluation_windows(eval_data, config)
        eval_source = str(eval_data) if eval_data is not None else "simulator"
    else:
        windows, eval_source = found
    checks, cand_ade, champ_ade = run_gate(
        registry,
        candidate,
        alias=alias,
        tolerance=tolerance,
        windows=windows,
        config=config,
        source=eval_source,
    )
    failed = [c for c in checks if not c.passed]
    if failed and not force:
        raise PromotionRefused(
            f"promotion of {registry.name} v{candidate.version} to {alias!r} refused: "
            + "; ".join(f"{c.name}: {c.message}" for c in failed),
            details=[{"loc": ["checks", c.name], "msg": c.message} for c in failed],
        )
    if force and any(c.name == "loads" and not c.passed for c in checks):
        raise PromotionRefused(
            f"v{candidate.version} does not load; even --force will not promote it",
            details=[{"loc": ["checks", "loads"], "msg": failed[0].message}],
        )
    registry.set_alias(alias, candidate.version)
    event = AliasEvent.now(
        alias=alias,
        action="promote",
        from_version=current.version if current else None,
        to_version=candidate.version,
        reason=reason,
        forced=force,
        checks=[c.to_dict() for c in checks],
        actor=actor,
    )
    record_event(registry, event)
    gate_tags: dict[str, Any] = {
        f"gate.{alias}.passed": not failed,
        f"gate.{alias}.forced": force,
        f"gate.{alias}.eval": eval_source[:250],
    }
    if cand_ade is not None:
        gate_tags[f"gate.{alias}.ade"] = f"{cand_ade:.6f}"
    registry.set_version_tags(candidate.version, gate_tags)
    if alias == "champion" and "challenger" in candidate.aliases:
        # One version must not be both arms of an A/B test.
        registry.delete_alias("challenger")
        record_event(
            registry,
            AliasEvent.now(
                alias="challenger",
                action="clear",
                from_version=candidate.version,
                to_version=None,
                reason=f"v{candidate.version} promoted to champion",
                actor=actor,
            ),
        )
    return PromotionResult(
        alias,
        candidate.version,
        current.version if current else None,
        changed=True,
        checks=tuple(checks),
        event=event,
        candidate_ade=cand_ade,
        champion_ade=champ_ade,
        eval_source=eval_source,
    )


def rollback(
    registry: Registry, *, alias: str = "champion", reason: str = "", actor: str | None = None
) -> PromotionResult:
    """Point ``alias`` back at the version it held before, per the recorded history.

    Raises:
        ModelNotFoundError: the alias is not set, or the previous version was deleted.
        ConflictError: the history holds no earlier version to return to.
    """
    _check_alias(alias)
    current = registry.alias_version(alias)
    if current is None:
        if not registry.exists():
            raise ModelNotFoundError(f"no registered model {registry.name!r}")
        raise ModelNotFoundError(
            f"alias {alias!r} of {registry.name!r} is not set; nothing to roll back"
        )
    target = previous_version(read_history(registry), alias, current.version)
    if target is None:
        raise ConflictError(
            f"no earlier {alias} of {registry.name!r} in the history; v{current.version} stays",
            details=[{"loc": ["history", alias], "msg": "no previous version"}],
        )
    registry.get_version(target)  # raises ModelNotFoundError when it was deleted
    registry.set_alias(alias, target)
    event = AliasEvent.now(
        alias=alias,
        action="rollback",
        from_version=current.version,
        to_version=target,
        reason=reason,
        actor=actor,
    )
    record_event(registry, event)
    return PromotionResult(alias, target, current.version, changed=True, event=event)
