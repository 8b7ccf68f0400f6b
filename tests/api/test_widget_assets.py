"""The widget's files: served with the right types, cached briefly and revalidated by ETag, loadable from
other sites, and the demo host page embeds the widget with a script tag."""

from __future__ import annotations

import httpx

from kefu.api import create_app
from kefu.runtime import Runtime


def client(runtime: Runtime) -> httpx.AsyncClient:
    app = create_app(runtime.settings, runtime)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kefu")


async def test_the_script_is_javascript_cached_briefly_and_revalidated(runtime: Runtime) -> None:
    async with client(runtime) as c:
        script = await c.get("/widget.js")
        assert script.status_code == 200
        assert script.headers["content-type"] == "text/javascript; charset=utf-8"
        assert script.headers["cache-control"] == "public, max-age=300, must-revalidate"
        assert script.headers["cross-origin-resource-policy"] == "cross-origin"
        assert script.headers["x-content-type-options"] == "nosniff"
        assert "window.KefuWidget" in script.text and "attachShadow" in script.text
        etag = script.headers["etag"]

        again = await c.get("/widget.js", headers={"If-None-Match": f'"other", {etag}'})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
        changed = await c.get("/widget.js", headers={"If-None-Match": '"stale"'})
        assert changed.status_code == 200 and changed.content == script.content

        head = await c.head("/widget.js")
        assert head.status_code == 200 and head.headers["etag"] == etag


async def test_the_stylesheet_and_the_demo_page(runtime: Runtime) -> None:
    async with client(runtime) as c:
        css = await c.get("/widget.css")
        assert css.status_code == 200 and css.headers["content-type"] == "text/css; charset=utf-8"
        assert ":host" in css.text
        assert css.headers["etag"] != (await c.get("/widget.js")).headers["etag"]

        demo = await c.get("/widget-demo")
        assert demo.status_code == 200 and demo.headers["content-type"] == "text/html; charset=utf-8"
        assert demo.headers["cache-control"] == "no-cache"
        assert "/widget.js" in demo.text

        missing = await c.get("/widget.json")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
