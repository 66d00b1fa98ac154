"""Fixtures of the CLI tests: the service's (:mod:`tests._support.app_fixtures`) and ``cli``,
the ``trajops`` entry point run in-process (:mod:`tests._support.cli`)."""

from tests._support.app_fixtures import _isolated_mlflow_uris, client, registry
from tests._support.cli import cli

__all__ = ["_isolated_mlflow_uris", "cli", "client", "registry"]
