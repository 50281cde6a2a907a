"""The API's own docs: Swagger UI at /api/docs and ReDoc at /api/redoc, from assets on this server.

FastAPI's built-in pages load Swagger UI and ReDoc from a CDN, so they are blank without internet. The
assets here are the ones the fastapi-offline package ships; the pages also forbid images from anywhere
else (ReDoc's footer logo would otherwise come from its vendor's CDN).
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

TITLE = "MNIST digit recognizer API"
OPENAPI_URL = "/api/openapi.json"
ASSETS_URL = "/api/docs/assets"
assets = StaticFiles(directory=Path(fastapi_offline.__file__).parent / "static")
# Images only from this server (and inline SVG): in the page itself, so a proxy that sets its own headers
# keeps it too.
_IMAGES_FROM_HERE = """<meta http-equiv="Content-Security-Policy" content="img-src 'self' data:">"""


def _offline(page: HTMLResponse) -> HTMLResponse:
    """The page with that policy first in its head."""
    return HTMLResponse(page.body.decode().replace("<head>", f"<head>\n{_IMAGES_FROM_HERE}", 1))


router = APIRouter(include_in_schema=False)


@router.get("/api/docs")
def swagger_ui() -> HTMLResponse:
    page = get_swagger_ui_html(
        openapi_url=OPENAPI_URL,
        title=f"{TITLE} - Swagger UI",
        swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
        swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from swagger.io
    )
    return _offline(page)


@router.get("/api/redoc")
def redoc() -> HTMLResponse:
    page = get_redoc_html(
        openapi_url=OPENAPI_URL,
        title=f"{TITLE} - ReDoc",
        redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
        redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
        with_google_fonts=False,
    )
    return _offline(page)
