"""The FastAPI app factory. The runtime is built in the lifespan, once, from the settings."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from kefu import __version__
from kefu.access.control import build_access
from kefu.api.errors import install_error_handlers
from kefu.api.limits import BodyLimitMiddleware
from kefu.api.routers import (
    admin_kb,
    admin_models,
    admin_nlu,
    admin_privacy,
    agent,
    agent_live,
    auth,
    channel_voice,
    channel_webhook,
    channel_wechat,
    channel_wecom,
    chat_completions,
    conversations,
    docs,
    health,
    messages,
    pages,
    widget,
    ws,
)
from kefu.config import Settings, load_settings
from kefu.obs.http import ObservedRequests
from kefu.runtime import Runtime, build_runtime

log = logging.getLogger(__name__)


def create_app(settings: Settings, runtime: Runtime | None = None) -> FastAPI:
    """An app for ``settings``; pass ``runtime`` to share one already built (tests, benchmarks)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = runtime is None
        app.state.runtime = runtime or await build_runtime(settings)
        if owned:
            app.state.access = build_access(settings, app.state.runtime.engine)
        log.info("kefu ready", extra={"pack": app.state.runtime.pack.name})
        try:
            yield
        finally:
            await app.state.access.close()
            if owned:
                await app.state.runtime.close()

    app = FastAPI(
        title="kefu",
        version=__version__,
        description="kefu (客服): customer-service API. Contract in ARCHITECTURE.md.",
        lifespan=lifespan,
        docs_url=None,  # served by routers.docs from local files
        redoc_url=None,
    )
    install_error_handlers(app)
    if runtime is not None:  # ready now: tests may drive the app without running its lifespan
        app.state.runtime = runtime
        app.state.access = build_access(settings, runtime.engine)
    for module in (
        messages,
        conversations,
        chat_completions,
        health,
        ws,
        pages,
        docs,
        admin_nlu,
        admin_kb,
        admin_models,
        admin_privacy,
        auth,
        widget,
        channel_webhook,
        channel_wechat,
        channel_wecom,
        channel_voice,
        agent,
        agent_live,
    ):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=pages.STATIC), name="static")
    app.mount(docs.ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Accept"],
            expose_headers=["Retry-After"],
            allow_credentials=False,  # other sites call with a key; the session cookie stays on this one
        )
    # A document upload carries a file of up to KEFU_KB_MAX_FILE_MB, base64-encoded (a third larger).
    upload = int(settings.kb_max_file_mb * 1024 * 1024 * 4 / 3) + 64 * 1024
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, prefix_limits={"/admin/kb/": upload})
    # Outermost: a trace id for every request and log line, and every answer counted (a 413 included).
    app.add_middleware(ObservedRequests, observer=lambda: getattr(getattr(app.state, "runtime", None), "metrics", None))
    return app


def create_app_from_environment() -> FastAPI:
    """The factory each process of ``kefu serve --workers N`` calls: the settings come from the
    environment (the parent passes its command-line choices on as ``KEFU_*`` variables)."""
    from kefu.access.tokens import load_secret
    from kefu.guard.setup import build_pseudonymizer
    from kefu.obs.logs import configure_logging

    settings = load_settings()
    configure_logging(
        settings.log_level,
        settings.log_json,
        build_pseudonymizer(settings, load_secret(settings.secret_key, settings.data_dir)),
    )
    return create_app(settings)
