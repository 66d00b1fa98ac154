"""``POST /v1/predict`` answered below FastAPI's routing: one ASGI layer for the hot route.

FastAPI's per-request machinery (exception and exit-stack middleware, matching the route
list, the ``Request`` object, dependency solving, the ``Response`` object and its ``send``
wrappers) is kept off the one route that carries the traffic. :class:`PredictPath` sits inside
the auth and serving middleware, so the request has been authenticated, rate-limited,
size-checked and read whole, and is counted, audited and made durable as any other; it runs
:func:`~trajops.serving.routes.predict.predict_exchange`, the same exchange the FastAPI route
(kept for OpenAPI) runs. Kept because removing it costs more than 5 % requests/s in a
same-run comparison (docs/performance.md).
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from trajops.errors import TrajopsError
from trajops.serving.errors import trajops_error_response
from trajops.serving.middleware import BODY_KEY
from trajops.serving.routes.predict import predict_exchange

PATH = "/v1/predict"
_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
_JSON = (b"content-type", b"application/json")


class PredictPath:
    """Answers ``POST /v1/predict`` itself; passes every other request to ``app``.

    Args:
        app: the wrapped ASGI app (FastAPI's own stack).
        app_state: the app's state, read per request (the lifespan fills it).
        route: the FastAPI route of ``/v1/predict``, recorded in the scope as a matched route
            would be (metrics and audit rows label requests by its path).
    """

    def __init__(self, app: ASGIApp, *, app_state: Any, route: BaseRoute) -> None:
        self.app = app
        self.app_state = app_state
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = scope.get(BODY_KEY)
        if (
            scope["type"] != "http"
            or scope["path"] != PATH
            or scope["method"] != "POST"
            or body is None
        ):
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        try:
            content, request_id = await predict_exchange(self.app_state, scope, body)
        except TrajopsError as exc:
            await trajops_error_response(exc, method="POST", path=PATH)(scope, receive, send)
            return
        payload = orjson.dumps(content, option=_OPTIONS)
        headers = [
            _JSON,
            (b"content-length", b"%d" % len(payload)),
            (b"x-request-id", request_id.encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
