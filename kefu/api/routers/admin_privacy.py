"""Operator endpoints for erasure and retention: the same operations as ``kefu privacy``, audited with the
caller as actor. Answers name the subject by pseudonym only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from kefu.access.tokens import load_secret
from kefu.api.deps import RuntimeDep, actor_of, require_admin
from kefu.api.errors import ApiError
from kefu.api.schemas import ERRORS, ID_PATTERN
from kefu.guard.pseudonym import Pseudonymizer
from kefu.guard.setup import build_pseudonymizer
from kefu.runtime import Runtime
from kefu.store.privacy import audit_log, erase_conversation, erase_user, purge

router = APIRouter(prefix="/admin/privacy", tags=["privacy"], dependencies=[Depends(require_admin)])


class EraseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str | None = Field(None, min_length=1, max_length=256, description="Every record of this user.")
    conversation_id: str | None = Field(None, pattern=ID_PATTERN, description="One conversation, e.g. anonymous.")
    dry_run: StrictBool = Field(False, description="Count what would go; delete nothing (still audited).")

    @field_validator("user_id")
    @classmethod
    def _storable(cls, value: str | None) -> str | None:
        # No stored user id can hold these (PostgreSQL refuses NUL; no database takes an unpaired surrogate).
        if value is None:
            return value
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError("is not valid Unicode (unpaired surrogate)") from exc
        return value


class PurgeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    older_than_days: StrictInt | None = Field(None, ge=1, le=36500, description="Default: KEFU_RETENTION_DAYS.")
    dry_run: StrictBool = False


def _pseudonymizer(runtime: Runtime) -> Pseudonymizer:
    # The servers' own pseudonyms, so an audit subject matches the user's pseudonym in logs and metrics.
    if runtime.pseudonymize is not None:
        return runtime.pseudonymize
    settings = runtime.settings
    return build_pseudonymizer(settings, load_secret(settings.secret_key, settings.data_dir))


@router.post("/erase", responses=ERRORS)
async def erase(body: EraseIn, request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    """Remove every record of a user, or one conversation, in one transaction; ``found`` false: none."""
    if (body.user_id is None) == (body.conversation_id is None):
        raise ApiError(400, "invalid_subject", "give exactly one of 'user_id' and 'conversation_id'")
    pseudonymize = _pseudonymizer(runtime)
    if body.user_id is not None:
        erasure = await erase_user(
            runtime.engine, body.user_id, pseudonymize, actor=actor_of(request), dry_run=body.dry_run
        )
    else:
        conversation_id = body.conversation_id or ""
        async with runtime.pipeline.locks.hold(conversation_id):  # never between a turn's load and its commit
            erasure = await erase_conversation(
                runtime.engine, conversation_id, pseudonymize, actor=actor_of(request), dry_run=body.dry_run
            )
    return erasure.to_dict()


@router.post("/purge", responses=ERRORS)
async def purge_expired_now(body: PurgeIn, request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    """Erase conversations idle for longer than ``older_than_days`` (default: the retention period)."""
    days = body.older_than_days if body.older_than_days is not None else runtime.settings.retention_days
    if days < 1:
        raise ApiError(409, "retention_off", "retention is off (KEFU_RETENTION_DAYS=0): give 'older_than_days'")
    erasure = await purge(runtime.engine, days, now=datetime.now(UTC), actor=actor_of(request), dry_run=body.dry_run)
    return erasure.to_dict()


@router.get("/audit", responses=ERRORS)
async def privacy_audit(runtime: RuntimeDep, limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> dict[str, Any]:
    return {"audit": await audit_log(runtime.engine, limit)}
