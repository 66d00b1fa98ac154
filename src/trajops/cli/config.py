"""``trajops config``: the generated configuration reference and the effective settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import SecretStr
from rich.table import Table

from trajops.cli._common import console, err_console, load_settings

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
) -> None:
    """Generate the configuration reference from the Settings field descriptions."""
    from trajops.cards.configuration import render_configuration  # keeps `--help` fast

    text = render_configuration()
    if check:
        current = output.read_text() if output.is_file() else None
        if current != text:
            state = "missing" if current is None else "stale"
            err_console.print(
                f"[red]error:[/red] {output} is {state}; run `trajops config docs --output {output}`",
                highlight=False,
            )
            raise typer.Exit(EXIT_STALE)
        typer.echo(f"{output} is up to date")
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    typer.echo(f"wrote {output}")


def _shown(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return "**********" if value.get_secret_value() else ""
    if isinstance(value, Path):
        return str(value)
    return value


@app.command("show")
def show(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """The effective settings of this environment (secrets masked)."""
    settings = load_settings()
    prefix = str(type(settings).model_config.get("env_prefix", ""))
    values = {
        f"{prefix}{name.upper()}": _shown(getattr(settings, name))
        for name in type(settings).model_fields
    }
    if as_json:
        typer.echo(json.dumps(values, indent=2, default=str))
        return
    table = Table(title="effective settings")
    table.add_column("variable", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in values.items():
        table.add_row(key, "" if value is None else str(value))
    console.print(table)
