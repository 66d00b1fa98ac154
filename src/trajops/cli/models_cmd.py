"""``trajops models``: the registry — list, show, promote (gated), roll back, history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from trajops.cli._common import JsonOpt, console, emit_json, json_flag, load_settings
from trajops.cli.train import quiet_mlflow
from trajops.errors import PromotionRefused

if TYPE_CHECKING:  # MLflow loads lazily: `trajops --help` stays fast
    from trajops.registry.adapter import ModelVersionInfo, Registry
    from trajops.registry.history import AliasEvent

app = typer.Typer(no_args_is_help=True, help="The model registry: list, promote, roll back.")

AliasOpt = Annotated[str, typer.Option("--alias", "-a", help="champion or challenger.")]
ReasonOpt = Annotated[str, typer.Option("--reason", "-r", help="Why; kept in the history.")]
ActorOpt = Annotated[
    str | None, typer.Option("--actor", help="Who (default: TRAJOPS_ACTOR or the OS user).")
]


def _registry() -> Registry:
    from trajops.registry.adapter import Registry

    quiet_mlflow()
    return Registry.from_settings(load_settings())


def with_cli_hint(exc: PromotionRefused, *, suggest_eval_data: bool) -> PromotionRefused:
    """``exc`` with what to do next in this CLI's terms: ``--force``, and ``--eval-data`` for
    a failed accuracy check when ``suggest_eval_data`` (the command takes it, unused)."""
    failed = {d["loc"][-1] for d in exc.details if d.get("loc")}
    if "loads" in failed:
        return exc  # nothing helps a version that does not load
    hints = []
    if "not_worse" in failed and suggest_eval_data:
        hints.append("judge it on your own tracks with --eval-data PATH")
    hints.append("promote it anyway with --force (recorded in the history)")
    return PromotionRefused(f"{exc.message}; {', or '.join(hints)}", details=exc.details)


def versions_table(versions: list[ModelVersionInfo], *, title: str) -> Table:
    """Versions with aliases, model type, headline metrics and run id."""
    table = Table(title=title)
    for col in ("version", "aliases", "model", "test ADE", "test FDE", "run id", "created"):
        table.add_column(col, overflow="fold")
    for v in versions:
        m = v.metrics
        table.add_row(
            str(v.version),
            ", ".join(v.aliases) or "-",
            v.tags.get("model", "?"),
            f"{m['test_ade']:.3f}" if "test_ade" in m else "-",
            f"{m['test_fde']:.3f}" if "test_fde" in m else "-",
            v.run_id or "-",
            v.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    return table


def _event_row(e: AliasEvent) -> tuple[str, ...]:
    def fmt(v: int | None) -> str:
        return "-" if v is None else f"v{v}"

    action = e.action + (" (forced)" if e.forced else "")
    return (e.at, e.alias, action, fmt(e.from_version), fmt(e.to_version), e.actor, e.reason)


def history_table(events: list[AliasEvent], *, title: str) -> Table:
    """Alias moves, oldest first."""
    table = Table(title=title)
    for col in ("when (UTC)", "alias", "action", "from", "to", "who", "reason"):
        table.add_column(col)
    for e in events:
        table.add_row(*_event_row(e))
    return table


@app.command("list")
def list_cmd(as_json: JsonOpt = False) -> None:
    """Every registered version with its aliases, run id and metrics."""
    registry = _registry()
    versions = registry.list_versions()
    if as_json:
        payload = {
            "name": registry.name,
            "aliases": registry.aliases(),
            "versions": [v.to_dict() for v in versions],
        }
        emit_json(payload)
        return
    if not versions:
        console.print(f"no versions of {registry.name!r} yet; run `trajops train --register`")
        return
    console.print(versions_table(versions, title=registry.name))


@app.command("show")
def show(
    ref: Annotated[str, typer.Argument(help="Version number (3, v3) or alias (champion).")],
    as_json: JsonOpt = False,
) -> None:
    """One version: aliases, run, lineage tags, metrics and URI."""
    registry = _registry()
    version = registry.resolve(ref)
    data = {**version.to_dict(), "uri": version.uri}
    if as_json:
        emit_json(data)
        return
    table = Table(title=f"{registry.name} v{version.version}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key in ("aliases", "run_id", "source", "status", "created_at", "uri"):
        value = data[key]
        table.add_row(key, ", ".join(value) if isinstance(value, list) else str(value))
    for key, value in sorted(version.tags.items()):
        table.add_row(f"tag {key}", value)
    console.print(table)


@app.command("promote")
def promote_cmd(
    ref: Annotated[str, typer.Argument(help="Version (3, v3) or alias to promote.")],
    alias: AliasOpt = "champion",
    force: Annotated[
        bool, typer.Option("--force", help="Promote even if a check fails (recorded).")
    ] = False,
    reason: ReasonOpt = "",
    actor: ActorOpt = None,
    eval_data: Annotated[
        Path | None,
        typer.Option(
            help="Tracks file/folder for the accuracy check (default: a fixed simulated set)."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Move an alias to a version through the promotion gate.

    The gate checks that the version loads, passes a smoke prediction and (for champion) is
    not worse than the current champion on the evaluation set: recent production forecasts
    the version never trained on when the store holds enough, else a simulated set.
    """
    from trajops.monitoring.production_eval import held_out
    from trajops.registry.adapter import Registry
    from trajops.registry.promotion import promote

    settings = load_settings()
    quiet_mlflow()
    registry = Registry.from_settings(settings)
    try:
        result = promote(
            registry,
            version=ref,
            alias=alias,
            tolerance=settings.promotion_tolerance,
            force=force,
            reason=reason,
            actor=actor,
            eval_data=eval_data,
            held_out=held_out(settings, registry),
        )
    except PromotionRefused as exc:
        raise with_cli_hint(exc, suggest_eval_data=eval_data is None) from None
    if as_json:
        emit_json({**result.to_dict(), "name": registry.name, "forced": force})
        return
    if not result.changed:
        console.print(f"v{result.version} already is {alias}; nothing changed")
        return
    for check in result.checks:
        mark = "[green]pass[/green]" if check.passed else "[red]FAIL[/red]"
        console.print(f"  {mark} {check.name}: {check.message}", highlight=False)
    before = f"v{result.previous}" if result.previous is not None else "unset"
    forced = " [yellow](forced)[/yellow]" if force else ""
    console.print(f"{alias}: {before} -> [bold]v{result.version}[/bold]{forced}")


@app.command("rollback")
def rollback_cmd(
    alias: AliasOpt = "champion",
    reason: ReasonOpt = "",
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Point an alias back at the version it held before.

    The previous version is read from the recorded alias history.
    """
    from trajops.registry.promotion import rollback

    registry = _registry()
    result = rollback(registry, alias=alias, reason=reason, actor=actor)
    if as_json:
        emit_json({**result.to_dict(), "name": registry.name})
        return
    console.print(f"{alias}: v{result.previous} -> [bold]v{result.version}[/bold] (rolled back)")


@app.command("history")
def history_cmd(
    alias: Annotated[
        str | None, typer.Option("--alias", "-a", help="Only this alias's moves.")
    ] = None,
    as_json: Annotated[
        bool, json_flag("Print one JSON object per alias move, a line each (JSON lines).")
    ] = False,
) -> None:
    """Every alias move: when, who, from and to which version, why."""
    from trajops.registry.history import read_history

    registry = _registry()
    events = read_history(registry, alias)
    if as_json:
        for e in events:
            typer.echo(json.dumps(e.to_dict()))
        return
    if not events:
        console.print("no alias moves recorded yet")
        return
    console.print(history_table(events, title=f"{registry.name} alias history"))
