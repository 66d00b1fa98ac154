"""``POST /v1/predict`` served below FastAPI's routing: the hot path as one pure ASGI layer.

FastAPI's per-request machinery (exception and exit-stack middleware, route matching, the
``Request`` object, dependency solving, the ``Response`` object and a chain of ``send``
wrappers) cost more than the whole prediction of a one-agent request (docs/performance.md).
:class:`PredictFastPath` sits inside the auth and serving middleware, so the request has been
authenticated, rate-limited, size-checked, read whole and is counted and audited as any other;
it answers ``POST /v1/predict`` itself with :func:`~trajops.serving.routes.answer_prediction`,
the same function the FastAPI route (kept for OpenAPI) calls, and hands every other request on.

Errors keep the service's one shape: a :class:`~trajops.errors.TrajopsError` is rendered here
exactly as the app's exception handler renders it; anything else propagates to the app's
catch-all 500 handler (outermost, in ``ServerErrorMiddleware``), as from a route.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.routing import BaseRoute, get_route_path
from starlette.types import ASGIApp, Receive, Scope, Send

from trajops.errors import TrajopsError
from trajops.serving.errors import trajops_error_response
from trajops.serving.middleware import BODY_KEY
from trajops.serving.routes import answer_prediction

PATH = "/v1/predict"
_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
_JSON = (b"content-type", b"application/json")


class PredictFastPath:
    """Answers ``POST /v1/predict`` directly; passes every other request to ``app``.

    Args:
        app: the wrapped ASGI app (FastAPI's own stack).
        app_state: the app's state, read per request (the lifespan fills it after the
            middleware stack is built).
        route: the FastAPI route of ``/v1/predict``, recorded in the scope as a matched route
            would be (metrics and audit rows label requests by its path).
    """

    def __init__(self, app: ASGIApp, *, app_state: Any, route: BaseRoute) -> None:
        self.app = app
        self.app_state = app_state
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or get_route_path(scope) != PATH:
            await self.app(scope, receive, send)
            return
        body = scope.get(BODY_KEY)
        if body is None:  # not read by ServingMiddleware: the FastAPI route reads it
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        try:
            content, request_id = await answer_prediction(self.app_state, scope, body)
        except TrajopsError as exc:
            response = trajops_error_response(exc, method="POST", path=scope["path"])
            await response(scope, receive, send)
            return
        payload = orjson.dumps(content, option=_OPTIONS)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    _JSON,
                    (b"content-length", str(len(payload)).encode()),
                    (b"x-request-id", request_id.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
