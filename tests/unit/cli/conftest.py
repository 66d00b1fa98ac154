"""Fixtures of the tests that run the service (:mod:`tests._support.app_fixtures`)."""

from tests._support.app_fixtures import _isolated_mlflow_uris, client, registry

__all__ = ["_isolated_mlflow_uris", "client", "registry"]
