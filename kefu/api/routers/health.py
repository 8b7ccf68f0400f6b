"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from kefu.api.deps import RuntimeDep
from kefu.obs.metrics import CONTENT_TYPE

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        await runtime.store.ping()
        checks["store"] = "ok"
    except Exception as exc:  # any failure of the database means "not ready", with the reason shown
        checks["store"] = f"error: {type(exc).__name__}"
    checks["index"] = "ok" if runtime.knowledge.size > 0 else "empty"
    checks["model"] = "ok" if runtime.nlu.intents.labels else "missing"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks}, status_code=200 if ready else 503
    )


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE: {}}}})
async def metrics(runtime: RuntimeDep) -> Response:
    return Response(runtime.metrics.render(), media_type=CONTENT_TYPE)
