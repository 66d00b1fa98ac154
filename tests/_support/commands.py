"""Parse a deployment's command lines with the programs' real CLIs (trajops, mlflow, dask):
an unknown command, option or value raises, so a manifest cannot name a command that does
not exist."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

import click
import typer

from trajops.cli.main import app as trajops_app


def click_command(program: str) -> Any:
    """The root command of ``program``."""
    if program == "trajops":
        return typer.main.get_command(trajops_app)
    if program == "mlflow":
        from mlflow.cli import cli

        return cli
    if program == "dask":  # `dask <sub>` commands are plugins (entry points of dask_cli)
        group = click.Group("dask")
        for ep in entry_points(group="dask_cli"):
            group.add_command(ep.load(), ep.name)
        return group
    raise AssertionError(f"no parser known for {program}")


def resolve(argv: list[str]) -> Any:
    """The command ``argv`` runs, after parsing ``argv`` with it (unknown options raise).

    Groups are found by their ``get_command``, not by ``isinstance(click.Group)``: typer
    builds its commands on its own copy of click, whose classes are not click's.
    """
    cmd: Any = click_command(argv[0])
    args = argv[1:]
    while hasattr(cmd, "get_command"):
        sub = cmd.get_command(cmd.context_class(cmd), args[0])
        assert sub is not None, f"{argv[0]}: no command {args[0]!r} in {argv}"
        cmd, args = sub, args[1:]
    cmd.make_context(argv[0], list(args))
    return cmd
