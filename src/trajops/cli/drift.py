"""``trajops drift``: compare recent served inputs with the serving model's reference profile."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from trajops._duration import parse_duration
from trajops.cli._common import JsonOpt, console, emit_json, load_settings, opened_store
from trajops.errors import ValidationError

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
    as_json: JsonOpt = False,
) -> None:
    """Run one drift check; alert when drift persists.

    The report is stored (HTML under TRAJOPS_HOME, a row in the store, a run in MLflow).
    """
    from trajops.monitoring.alerts import AlertManager
    from trajops.monitoring.drift_job import run_drift
    from trajops.monitoring.notifiers import notifiers_from_settings
    from trajops.monitoring.reference import load_reference
    from trajops.registry.adapter import Registry

    if window is not None and since is not None:
        raise ValidationError("give --window or --since, not both")
    if window is not None and window < 1:
        raise ValidationError("--window must be positive")
    settings = load_settings()
    registry = Registry.from_settings(settings)
    version = registry.resolve(model)
    reference = load_reference(registry, version.version)
    with opened_store(settings) as store:
        alerts = AlertManager(
            store, notifiers_from_settings(settings), cooldown_s=settings.alert_cooldown_s
        )
        summary = run_drift(
            settings,
            store,
            reference,
            model_version=str(version.version),
            window=window,
            since=_since(since),
            alerts=alerts,
        )
    if as_json:
        emit_json(dict(sorted(summary.items())))
        return
    table = Table(title=f"Drift vs v{version.version} reference ({summary['n_current']} inputs)")
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
