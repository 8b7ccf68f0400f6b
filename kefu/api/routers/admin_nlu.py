"""Operator endpoints for the NLU: swap in a retrained intent model now instead of at the next poll."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends

from kefu.api.deps import RuntimeDep, require_admin
from kefu.api.errors import ApiError

router = APIRouter(prefix="/admin/nlu", tags=["operations"], dependencies=[Depends(require_admin)])


@router.post("/reload")
async def reload_model(runtime: RuntimeDep) -> dict[str, object]:
    """Look for a retrained model (KEFU_INTENT_MODEL, or the pack's models from `kefu pack prepare`)."""
    if runtime.reloader is None:
        raise ApiError(409, "reload_disabled", "model reloading is off (KEFU_MODEL_RELOAD_S=0)")
    swapped = await asyncio.to_thread(runtime.reloader.reload_if_changed)
    return {
        "swapped": swapped,
        "reloads": runtime.reloader.reloads,
        "labels": len(runtime.nlu.intents.labels),
        "info": runtime.nlu.intents.info,
    }
