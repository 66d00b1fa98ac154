"""The HTTP routes, one module per resource; each route parses, calls a service, renders."""

from fastapi import APIRouter

from trajops.serving.routes import (
    auth,
    batch,
    cards,
    docs,
    experiments,
    models,
    monitoring,
    ops,
    predict,
    tracks,
    users,
)

ROUTERS: tuple[APIRouter, ...] = (
    predict.router,
    tracks.router,
    models.router,
    ops.router,
    monitoring.router,
    batch.router,
    experiments.router,
    cards.router,
    docs.router,
    auth.router,
    users.router,
)
"""Every router of the service, in the order they are mounted."""

__all__ = ["ROUTERS"]
