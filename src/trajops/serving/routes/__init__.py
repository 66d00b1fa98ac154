"""The HTTP routes, one module per resource; each route parses, calls a service, renders."""

from fastapi import APIRouter

from trajops.serving.routes import (
    batch,
    cards,
    docs,
    experiments,
    models,
    monitoring,
    ops,
    predict,
)

ROUTERS: tuple[APIRouter, ...] = (
    predict.router,
    models.router,
    ops.router,
    monitoring.router,
    batch.router,
    experiments.router,
    cards.router,
    docs.router,
)
"""Every router of the service, in the order they are mounted."""

__all__ = ["ROUTERS"]
