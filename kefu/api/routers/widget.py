"""The embeddable web widget: ``/widget.js`` (one ``<script>`` tag on any site), its ``/widget.css``, and a
demo host page at ``/widget-demo``.

The script and its stylesheet are cached briefly and revalidated by ETag, so a new kefu version reaches
every embedding site within minutes without a version in the URL. They may be loaded from other origins
(``Cross-Origin-Resource-Policy: cross-origin``); the widget's API calls from another origin need that
origin in ``KEFU_CORS_ORIGINS``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from fastapi import APIRouter, Request, Response

from kefu.api.routers.pages import STATIC

router = APIRouter(include_in_schema=False)

ASSET_MAX_AGE_S = 300  # how stale an embedding site's copy may be before it asks again (ETag: usually a 304)


def _asset(request: Request, path: Path, media_type: str, max_age_s: int) -> Response:
    body = path.read_bytes()
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    headers = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={max_age_s}, must-revalidate" if max_age_s else "no-cache",
        "Cross-Origin-Resource-Policy": "cross-origin",
        "X-Content-Type-Options": "nosniff",
    }
    if etag in {tag.strip() for tag in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


@router.api_route("/widget.js", methods=["GET", "HEAD"])
async def widget_script(request: Request) -> Response:
    return _asset(request, STATIC / "widget.js", "text/javascript; charset=utf-8", ASSET_MAX_AGE_S)


@router.api_route("/widget.css", methods=["GET", "HEAD"])
async def widget_stylesheet(request: Request) -> Response:
    return _asset(request, STATIC / "widget.css", "text/css; charset=utf-8", ASSET_MAX_AGE_S)


@router.api_route("/widget-demo", methods=["GET", "HEAD"])
async def widget_demo(request: Request) -> Response:
    """A shop page with hostile CSS that embeds the widget with one script tag (the browser test's host)."""
    return _asset(request, STATIC / "widget-demo.html", "text/html; charset=utf-8", 0)
