"""Fast JSON responses (orjson, numpy arrays serialised natively) and the one error shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


class OrjsonResponse(Response):
    """``application/json`` rendered by orjson; numpy float32 arrays go out as JSON lists."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=_OPTIONS)


def error_response(
    status_code: int,
    *,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> OrjsonResponse:
    """``{"error": {"code", "message", "details": [{"loc", "msg"}]}}`` with a status."""
    body = {"error": {"code": code, "message": message, "details": details or []}}
    return OrjsonResponse(body, status_code=status_code, headers=headers)
