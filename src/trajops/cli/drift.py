"""``trajops drift``: compare recent served inputs with the serving model's reference profile."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from trajops._duration import parse_duration
from trajops.cli._common import (
    JsonOpt,
    console,
    emit_json,
    load_settings,
    opened_store,
    scene_key,
)
from trajops.errors import ValidationError

if TYPE_CHECKING:
    from trajops.monitoring.alerts import AlertManager
    from trajops.settings import Settings
    from trajops.store.db import Store

app = typer.Typer(no_args_is_help=True, help="Input drift of served traffic (Evidently).")


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except ValueError:
        return datetime.now(UTC) - parse_duration(text, field="since")


@app.command("run")
def run(
    window: Annotated[
        int | None,
        typer.Option(help="Use the last N served inputs (default: the calibrated size)."),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Use inputs since an ISO time or a duration ago (e.g. 1h).")
    ] = None,
    model: Annotated[
        str, typer.Option(help="Alias or version whose reference profile is compared against.")
    ] = "champion",
    scene: Annotated[
        str | None,
        typer.Option(
            "--scene",
            help="Only this scene (the scene_id clients send), against its own earliest inputs.",
        ),
    ] = None,
    reference_size: Annotated[
        int | None,
        typer.Option(
            min=10, help="With --scene: its first N inputs are the reference (4 windows)."
        ),
    ] = None,
    reference_until: Annotated[
        str | None,
        typer.Option(help="With --scene: its inputs before an ISO time or a duration ago."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run one drift check; alert when drift persists.

    The report is stored (HTML under TRAJOPS_HOME, a row in the store, a run in MLflow).
    With --scene, the scene's latest inputs are compared with its own first ones instead of
    the model's reference (a change inside one scene can hide in the training mix).
    """
    from trajops.monitoring.alerts import AlertManager
    from trajops.monitoring.notifiers import notifiers_from_settings

    if window is not None and since is not None:
        raise ValidationError("give --window or --since, not both")
    if window is not None and window < 1:
        raise ValidationError("--window must be positive")
    if scene is None and (reference_size is not None or reference_until is not None):
        raise ValidationError("--reference-size and --reference-until need --scene")
    if scene is not None and since is not None:
        raise ValidationError("a --scene run judges its latest --window inputs: drop --since")
    settings = load_settings()
    with opened_store(settings) as store:
        alerts = AlertManager(
            store, notifiers_from_settings(settings), cooldown_s=settings.alert_cooldown_s
        )
        if scene is not None:
            from trajops.monitoring.scene_drift import run_scene_drift
            from trajops.security._time import parse_past

            key = scene_key(settings, scene)
            summary = run_scene_drift(
                settings,
                store,
                scene_key=key,
                window=window,
                reference_size=reference_size,
                reference_until=(
                    parse_past(reference_until, field="reference_until")
                    if reference_until
                    else None
                ),
                alerts=alerts,
                log_to_mlflow=True,
            )
            title = f"Drift of scene {scene!r} vs its first {summary['n_reference']} inputs"
        else:
            summary = _model_run(settings, store, alerts, model=model, window=window, since=since)
            title = f"Drift vs v{summary['model_version']} reference"
    if as_json:
        emit_json(dict(sorted(summary.items())))
        return
    table = Table(title=f"{title} ({summary['n_current']} inputs)")
    for col in ("feature", "score", "threshold", "drifted"):
        table.add_column(col)
    for feature, score in summary["scores"].items():
        threshold = summary["thresholds"].get(feature, float("nan"))
        table.add_row(
            feature,
            f"{score:.3f}",
            f"{threshold:.3f}",
            "yes" if feature in summary["drifted_features"] else "",
        )
    console.print(table)
    verdict = "DRIFT" if summary["dataset_drift"] else "no drift"
    console.print(
        f"{verdict}; persistent alert: {summary['alert']}; report: {summary['report_path']}"
    )


def _model_run(
    settings: Settings,
    store: Store,
    alerts: AlertManager,
    *,
    model: str,
    window: int | None,
    since: str | None,
) -> dict[str, Any]:
    """A drift run of all served traffic against ``model``'s reference profile."""
    from trajops.monitoring.drift_job import run_drift
    from trajops.monitoring.reference import load_reference
    from trajops.registry.adapter import Registry

    registry = Registry.from_settings(settings)
    version = registry.resolve(model)
    reference = load_reference(registry, version.version)
    return run_drift(
        settings,
        store,
        reference,
        model_version=str(version.version),
        window=window,
        since=_since(since),
        alerts=alerts,
    )
