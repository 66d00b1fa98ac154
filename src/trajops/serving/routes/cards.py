"""``GET /v1/models/{version}/card``: a registered version's model card or performance card.

The cards are rendered from the version's training-run artifacts (``trajops.cards``); a
run's logged facts are fetched once per process and kept, the version's aliases are read on
each request. Blocking registry and artifact calls run in a worker thread.
"""

from __future__ import annotations

from typing import Annotated, Literal

import anyio.to_thread
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from mlflow.tracking import MlflowClient

from trajops.cards.store import VersionCards
from trajops.registry.adapter import Registry
from trajops.serving.openapi import error_responses
from trajops.settings import Settings

router = APIRouter(tags=["models"])

MARKDOWN = "text/markdown; charset=utf-8"


def _cards(request: Request) -> VersionCards:
    # Built on first use, kept on app.state: the registry client does no I/O until a card is
    # asked for, so an app that never serves a card never opens the tracking store for it.
    state = request.app.state
    cards: VersionCards | None = getattr(state, "cards", None)
    if cards is None:
        settings: Settings = state.settings
        client = MlflowClient(
            tracking_uri=settings.resolved_tracking_uri,
            registry_uri=settings.resolved_registry_uri,
        )
        registry = Registry(client, settings.model_name, uri=settings.resolved_registry_uri)
        cards = state.cards = VersionCards(registry)
    return cards


@router.get(
    "/v1/models/{version}/card",
    summary="The model card (or, with kind=performance, the performance card) of a version",
    response_class=Response,
    responses={
        200: {"content": {MARKDOWN: {}}, "description": "The card as markdown."},
        **error_responses(404, 422, 503),
    },
)
async def model_card(
    request: Request,
    version: Annotated[
        str, Path(description="Version number (3, v3) or alias (champion).", max_length=64)
    ],
    kind: Annotated[
        Literal["model", "performance"],
        Query(description="model: use, data, metrics, limits; performance: error by group."),
    ] = "model",
) -> Response:
    """Markdown rendered from the version's training run: intended and out-of-scope uses,
    training data and lineage, metrics per scene and horizon, limitations and ethical
    considerations; or error by group with disparity ratios, intervals and flags. 404 for an
    unknown version or a run without the artifacts."""
    text = await anyio.to_thread.run_sync(lambda: _cards(request).markdown(version, kind=kind))
    return Response(text, media_type=MARKDOWN)
