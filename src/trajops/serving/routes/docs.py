"""``/docs``: Swagger UI served from this process, with no request leaving the machine.

The page, its assets (Swagger UI 5 as vendored by the ``fastapi-offline`` package; only its
files are used) and ``/openapi.json`` are public:
the contract is not secret, and a browser must load them before Swagger's *Authorize* button
can take a key (the key schemes are declared in the OpenAPI document).
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

ASSETS = "/docs/assets"

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def docs() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="trajops prediction service",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon.png",
    )


def mount_assets(app: FastAPI) -> None:
    """Serve the Swagger UI files under :data:`ASSETS`."""
    folder = str(files("fastapi_offline") / "static")
    app.mount(ASSETS, StaticFiles(directory=folder), name="docs-assets")
