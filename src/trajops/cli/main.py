"""Entry point of the ``trajops`` command: one Typer app, one sub-module per command group."""

from __future__ import annotations

import typer

from trajops import __version__
from trajops.cli import audit as audit_cmd
from trajops.cli import batch as batch_cmd
from trajops.cli import cards as cards_cmd
from trajops.cli import config as config_cmd
from trajops.cli import dashboard, data, demo, evaluate, models_cmd, serve, train
from trajops.cli import drift as drift_cmd
from trajops.cli import experiments as experiments_cmd
from trajops.cli import keys as keys_cmd
from trajops.cli import privacy as privacy_cmd
from trajops.cli import ui as ui_cmd
from trajops.cli import users as users_cmd
from trajops.cli._common import fail
from trajops.errors import TrajopsError

app = typer.Typer(
    name="trajops",
    help="Production MLOps for trajectory forecasting.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain help: no `<bool>` labels, no summaries cut mid-line
)
app.add_typer(data.app, name="data", help="Simulate, validate and describe trajectory data.")
app.add_typer(models_cmd.app, name="models", help="The model registry: list, promote, roll back.")
app.add_typer(keys_cmd.app, name="keys", help="Create, list, revoke and rotate API keys.")
app.add_typer(
    users_cmd.app, name="users", help="People: create, list, disable, reset passwords, set roles."
)
app.add_typer(audit_cmd.app, name="audit", help="Verify and export the hash-chained audit trail.")
app.add_typer(
    privacy_cmd.app, name="privacy", help="Retention purge, erasure and export of a subject's data."
)
app.add_typer(drift_cmd.app, name="drift", help="Input drift of served traffic (Evidently).")
app.add_typer(batch_cmd.app, name="batch", help="Batch prediction over files with Dask.")
app.add_typer(cards_cmd.app, name="cards", help="Model cards and performance (fairness) cards.")
app.add_typer(config_cmd.app, name="config", help="Configuration reference and effective settings.")
app.add_typer(experiments_cmd.app, name="experiments", help="A/B experiments and rollback.")
app.command("evaluate")(evaluate.evaluate)
app.command("train")(train.train)
app.command("demo")(demo.demo)
app.command("serve")(serve.serve)
app.command("dashboard")(dashboard.dashboard)
app.command("ui")(ui_cmd.ui)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        help="Print the version and exit.",
        callback=_print_version,
        is_eager=True,
    ),
) -> None:
    """trajops: production MLOps for trajectory forecasting."""


def main() -> None:
    """Console-script entry: run the app, render domain errors without a traceback."""
    try:
        app()
    except TrajopsError as exc:
        fail(exc)
