"""``trajops config``: the generated configuration reference and the effective settings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import SecretStr
from rich.table import Table

from trajops.cli._common import JsonOpt, console, emit_json, err_console, load_settings
from trajops.settings import Settings

app = typer.Typer(no_args_is_help=True, help="Configuration reference and effective settings.")

DEFAULT_OUTPUT = Path("docs/configuration.md")
"""Where the configuration reference lives in the repository."""
EXIT_STALE = 1
"""Exit status of ``config docs --check`` when the file differs from the code."""


@app.command("docs")
def docs(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Markdown file to write (or check).")
    ] = DEFAULT_OUTPUT,
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 when the file is missing or stale."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Generate the configuration reference from the Settings fields."""
    from trajops.cards.configuration import render_configuration  # keeps `--help` fast

    text = render_configuration()
    if check:
        current = output.read_text() if output.is_file() else None
        if current != text:
            state = "missing" if current is None else "stale"
            if as_json:  # the check's answer, exit 1 as without --json
                emit_json({"path": str(output), "state": state})
            else:
                err_console.print(
                    f"[red]error:[/red] {output} is {state}; "
                    f"run `trajops config docs --output {output}`",
                    highlight=False,
                )
            raise typer.Exit(EXIT_STALE)
        _done(output, "up_to_date", f"{output} is up to date", as_json=as_json)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    _done(output, "written", f"wrote {output}", as_json=as_json)


def _done(output: Path, state: str, line: str, *, as_json: bool) -> None:
    if as_json:
        emit_json({"path": str(output), "state": state})
    else:
        typer.echo(line)


def _shown(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return "**********" if value.get_secret_value() else ""
    if isinstance(value, Path):
        return str(value)
    return value


def resolved(settings: Settings) -> dict[str, str]:
    """Where the settings point once defaults are applied: the MLflow tracking and registry
    URIs (the embedded SQLite store when unset) and the embedded store's artifact folder."""
    return {
        "tracking_uri": settings.resolved_tracking_uri,
        "registry_uri": settings.resolved_registry_uri,
        "artifact_root": str(settings.artifact_root),
    }


@app.command("show")
def show(as_json: JsonOpt = False) -> None:
    """The effective settings of this environment (secrets masked).

    Also the resolved MLflow tracking and registry URIs and the artifact folder (with --json:
    under "resolved").
    """
    settings = load_settings()
    prefix = str(type(settings).model_config.get("env_prefix", ""))
    values = {
        f"{prefix}{name.upper()}": _shown(getattr(settings, name))
        for name in type(settings).model_fields
    }
    if as_json:
        emit_json({**values, "resolved": resolved(settings)})
        return
    table = Table(title="effective settings")
    table.add_column("variable", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in values.items():
        table.add_row(key, "" if value is None else str(value))
    console.print(table)
    where = Table(title="resolved")
    where.add_column("what", style="bold")
    where.add_column("value", overflow="fold")
    for key, value in resolved(settings).items():
        where.add_row(key.replace("_", " "), value)
    console.print(where)
