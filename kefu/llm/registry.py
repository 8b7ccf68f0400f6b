"""The model registry in the store: versions, the ``stable`` and ``canary`` aliases, an audit trail, and
per-call accounting. Every change is one transaction that also bumps a revision number, so a change is
either wholly applied or not at all, and every server process sees it on its next turn."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kefu.llm.profiles import profile_for
from kefu.llm.types import ALIASES, SAMPLING_KEYS, ModelVersion
from kefu.store.models import FeedbackRow, LlmAliasRow, LlmAuditRow, LlmCallRow, LlmModelRow, LlmRevisionRow

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")


class RegistryError(ValueError):
    """A registry request that cannot be applied; the message says why (nothing was changed)."""


class UnknownModel(RegistryError):
    """The request names a version that is not registered."""


class ModelExists(RegistryError):
    """A version of that name is registered already (versions are immutable)."""


@dataclass(frozen=True, slots=True)
class Routing:
    """What the gateway needs per turn: the versions behind the aliases and the canary's share of users."""

    revision: int
    stable: ModelVersion | None
    canary: ModelVersion | None
    canary_percent: float


@dataclass(frozen=True, slots=True)
class CallRecord:
    conversation_id: str
    message_id: str
    name: str
    model: str
    variant: str
    outcome: str  # ok, rejected, no_answer, or the error kind
    prompt_tokens: int
    completion_tokens: int
    ttft_ms: float | None
    total_ms: float


def _version(row: Any) -> ModelVersion:
    return ModelVersion(
        name=row.name,
        base_url=row.base_url,
        model=row.model,
        params=dict(row.params or {}),
        profile=row.profile,
        languages=tuple(row.languages or ()),
        notes=row.notes or "",
    )


def check_version(version: ModelVersion) -> None:
    """Refuse a version that could never be called, with the reason."""
    if not _NAME.match(version.name):
        raise RegistryError(f"model name {version.name!r}: use 1-100 characters of [A-Za-z0-9._:-]")
    if version.name in ALIASES:
        raise RegistryError(f"model name {version.name!r} is an alias name; choose another")
    if not re.match(r"^https?://[^\s/]+", version.base_url):
        raise RegistryError(f"base URL {version.base_url!r} must start with http:// or https:// and name a host")
    if not version.model.strip():
        raise RegistryError("the model id (the server's model name) must not be empty")
    unknown = sorted(set(version.params) - SAMPLING_KEYS)
    if unknown:
        raise RegistryError(f"unknown sampling parameters {unknown}; allowed: {sorted(SAMPLING_KEYS)}")
    bad_languages = [lang for lang in version.languages if lang not in ("zh", "en")]
    if bad_languages:
        raise RegistryError(f"languages {bad_languages}: kefu speaks zh and en")
    try:
        profile_for(version.model, version.profile)
    except ValueError as exc:
        raise RegistryError(str(exc)) from exc


def _check_percent(percent: float) -> None:
    if not 0.0 <= percent <= 100.0:
        raise RegistryError(f"percent must be between 0 and 100, got {percent}")


class ModelRegistry:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def revision(self) -> int:
        async with self.engine.connect() as conn:
            value = await conn.scalar(select(LlmRevisionRow.revision).where(LlmRevisionRow.id == 1))
        return int(value or 0)

    async def versions(self) -> list[ModelVersion]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(LlmModelRow).order_by(LlmModelRow.created_at, LlmModelRow.name))).all()
        return [_version(r) for r in rows]

    async def get(self, name: str) -> ModelVersion | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(LlmModelRow).where(LlmModelRow.name == name))).first()
        return None if row is None else _version(row)

    async def routing(self) -> Routing:
        async with self.engine.connect() as conn:
            revision = await conn.scalar(select(LlmRevisionRow.revision).where(LlmRevisionRow.id == 1))
            rows = (
                await conn.execute(
                    select(LlmAliasRow.alias, LlmAliasRow.percent, LlmModelRow).join(
                        LlmModelRow, LlmModelRow.name == LlmAliasRow.name
                    )
                )
            ).all()
        found = {r.alias: r for r in rows}
        canary = found.get("canary")
        return Routing(
            revision=int(revision or 0),
            stable=_version(found["stable"]) if "stable" in found else None,
            canary=_version(canary) if canary is not None else None,
            canary_percent=float(canary.percent) if canary is not None else 0.0,
        )

    async def aliases(self) -> dict[str, dict[str, Any]]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(LlmAliasRow))).all()
        return {r.alias: {"name": r.name, "percent": r.percent, "updated_at": r.updated_at.isoformat()} for r in rows}

    async def add(self, version: ModelVersion, *, actor: str, replace: bool = False) -> ModelVersion:
        """Register a version. An existing name is refused unless ``replace`` (used for the engines kefu
        itself starts, whose address can change between runs); an operator's version is immutable."""
        check_version(version)
        now = datetime.now(UTC)
        async with self.engine.begin() as conn:
            existing = await conn.scalar(select(LlmModelRow.name).where(LlmModelRow.name == version.name))
            if existing is not None and not replace:
                raise ModelExists(f"a model version named {version.name!r} exists; versions are immutable")
            values = {
                "base_url": version.base_url,
                "model": version.model,
                "profile": version.profile,
                "params": dict(version.params),
                "languages": list(version.languages),
                "notes": version.notes,
            }
            if existing is None:
                await conn.execute(insert(LlmModelRow).values(name=version.name, created_at=now, **values))
            else:
                await conn.execute(update(LlmModelRow).where(LlmModelRow.name == version.name).values(**values))
            await self._audit(conn, actor, "add" if existing is None else "replace", None, None, version.name)
            await self._bump(conn)
        return version

    async def promote(self, name: str, *, alias: str = "stable", actor: str, percent: float = 100.0) -> str | None:
        """Point ``alias`` at version ``name``; returns the version it pointed at before."""
        if alias not in ALIASES:
            raise RegistryError(f"unknown alias {alias!r}; aliases: {', '.join(ALIASES)}")
        _check_percent(percent)
        async with self.engine.begin() as conn:
            await self._require(conn, name)
            before = await self._point(conn, alias, name, percent if alias == "canary" else 100.0)
            await self._audit(conn, actor, "promote", alias, before, name, {"percent": percent})
            await self._bump(conn)
        return before

    async def rollback(self, *, alias: str = "stable", actor: str) -> tuple[str, str | None]:
        """Point ``alias`` back at the version it had before its last promotion; (from, to). Rolling back
        a canary with no earlier version removes it (its traffic returns to stable)."""
        if alias not in ALIASES:
            raise RegistryError(f"unknown alias {alias!r}; aliases: {', '.join(ALIASES)}")
        async with self.engine.begin() as conn:
            history = await self._history(conn, alias)
            if not history:
                raise RegistryError(f"{alias} points at no model version; nothing to roll back")
            current = history[-1]
            previous = history[-2] if len(history) > 1 else None
            if previous is None and alias == "stable":
                raise RegistryError(f"stable has had only {current!r}; there is no earlier version to roll back to")
            if previous is None:
                await conn.execute(delete(LlmAliasRow).where(LlmAliasRow.alias == alias))
            else:
                await self._point(conn, alias, previous, None)
            await self._audit(conn, actor, "rollback", alias, current, previous)
            await self._bump(conn)
        return current, previous

    async def start_experiment(self, canary: str, percent: float, *, actor: str) -> None:
        _check_percent(percent)
        async with self.engine.begin() as conn:
            await self._require(conn, canary)
            stable = await conn.scalar(select(LlmAliasRow.name).where(LlmAliasRow.alias == "stable"))
            if stable is None:
                raise RegistryError("no stable model: promote one before starting an experiment against it")
            if stable == canary:
                raise RegistryError(f"{canary!r} is already stable; a canary must be another version")
            before = await self._point(conn, "canary", canary, percent)
            await self._audit(
                conn, actor, "experiment_start", "canary", before, canary, {"percent": percent, "stable": stable}
            )
            await self._bump(conn)

    async def stop_experiment(self, *, actor: str) -> str:
        async with self.engine.begin() as conn:
            current = await conn.scalar(select(LlmAliasRow.name).where(LlmAliasRow.alias == "canary"))
            if current is None:
                raise RegistryError("no experiment is running (no canary)")
            await conn.execute(delete(LlmAliasRow).where(LlmAliasRow.alias == "canary"))
            await self._audit(conn, actor, "experiment_stop", "canary", current, None)
            await self._bump(conn)
        return str(current)

    async def audit(self, limit: int = 50) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(LlmAuditRow).order_by(LlmAuditRow.id.desc()).limit(limit))).all()
        return [
            {
                "at": r.at.isoformat(),
                "actor": r.actor,
                "action": r.action,
                "alias": r.alias,
                "from": r.from_name,
                "to": r.to_name,
                "detail": r.detail,
            }
            for r in rows
        ]

    async def record(self, calls: Sequence[CallRecord]) -> None:
        if not calls:
            return
        now = datetime.now(UTC)
        async with self.engine.begin() as conn:
            await conn.execute(insert(LlmCallRow), [{"at": now, **_call_values(c)} for c in calls])

    async def usage(self, since: datetime | None = None) -> list[dict[str, Any]]:
        """Per version and variant: calls, answers, tokens, mean time to first token, and the customers'
        ratings of conversations it answered in (the A/B read-out)."""
        query = select(
            LlmCallRow.name,
            LlmCallRow.variant,
            func.count().label("calls"),
            func.sum(LlmCallRow.prompt_tokens).label("prompt_tokens"),
            func.sum(LlmCallRow.completion_tokens).label("completion_tokens"),
            func.avg(LlmCallRow.ttft_ms).label("mean_ttft_ms"),
            func.avg(LlmCallRow.total_ms).label("mean_ms"),
        ).group_by(LlmCallRow.name, LlmCallRow.variant)
        ok = select(LlmCallRow.name, LlmCallRow.variant, func.count().label("ok")).where(LlmCallRow.outcome == "ok")
        if since is not None:
            query = query.where(LlmCallRow.at >= since)
            ok = ok.where(LlmCallRow.at >= since)
        ok = ok.group_by(LlmCallRow.name, LlmCallRow.variant)
        # CSAT per variant: ratings of conversations that variant answered in (the A/B read-out).
        answered_in = (
            select(LlmCallRow.conversation_id, LlmCallRow.name, LlmCallRow.variant)
            .where(LlmCallRow.outcome == "ok")
            .distinct()
            .subquery()
        )
        csat = (
            select(
                answered_in.c.name,
                answered_in.c.variant,
                func.count(FeedbackRow.id).label("ratings"),
                func.avg(FeedbackRow.rating).label("mean_rating"),
            )
            .join(answered_in, answered_in.c.conversation_id == FeedbackRow.conversation_id)
            .group_by(answered_in.c.name, answered_in.c.variant)
        )
        if since is not None:
            csat = csat.where(FeedbackRow.created_at >= since)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(LlmCallRow.name, LlmCallRow.variant))).all()
            answered = {(r.name, r.variant): int(r.ok) for r in (await conn.execute(ok)).all()}
            ratings = {(r.name, r.variant): r for r in (await conn.execute(csat)).all()}
        return [
            {
                "name": r.name,
                "variant": r.variant,
                "calls": int(r.calls),
                "answered": answered.get((r.name, r.variant), 0),
                "prompt_tokens": int(r.prompt_tokens or 0),
                "completion_tokens": int(r.completion_tokens or 0),
                "mean_ttft_ms": None if r.mean_ttft_ms is None else round(float(r.mean_ttft_ms), 1),
                "mean_ms": round(float(r.mean_ms or 0.0), 1),
                "ratings": int(ratings[r.name, r.variant].ratings) if (r.name, r.variant) in ratings else 0,
                "mean_rating": round(float(ratings[r.name, r.variant].mean_rating), 2)
                if (r.name, r.variant) in ratings
                else None,
            }
            for r in rows
        ]

    async def _require(self, conn: AsyncConnection, name: str) -> None:
        if await conn.scalar(select(LlmModelRow.name).where(LlmModelRow.name == name)) is None:
            known = (await conn.scalars(select(LlmModelRow.name).order_by(LlmModelRow.name))).all()
            listed = ", ".join(known) if known else "none yet (kefu model add)"
            raise UnknownModel(f"no model version named {name!r}; registered: {listed}")

    async def _point(self, conn: AsyncConnection, alias: str, name: str, percent: float | None) -> str | None:
        row = (await conn.execute(select(LlmAliasRow).where(LlmAliasRow.alias == alias))).first()
        now = datetime.now(UTC)
        if row is None:
            await conn.execute(
                insert(LlmAliasRow).values(
                    alias=alias, name=name, percent=100.0 if percent is None else percent, updated_at=now
                )
            )
            return None
        values: dict[str, Any] = {"name": name, "updated_at": now}
        if percent is not None:
            values["percent"] = percent
        await conn.execute(update(LlmAliasRow).where(LlmAliasRow.alias == alias).values(**values))
        return str(row.name)

    async def _history(self, conn: AsyncConnection, alias: str) -> list[str]:
        """The alias's versions, oldest first, replayed from the audit trail (a rollback pops one)."""
        rows = (
            await conn.execute(
                select(LlmAuditRow.action, LlmAuditRow.to_name)
                .where(LlmAuditRow.alias == alias)
                .order_by(LlmAuditRow.id)
            )
        ).all()
        stack: list[str] = []
        for action, to_name in rows:
            if action in ("promote", "experiment_start") and to_name:
                stack.append(to_name)
            elif action == "rollback" and stack:
                stack.pop()
            elif action == "experiment_stop":
                stack.clear()
        return stack

    async def _audit(
        self,
        conn: AsyncConnection,
        actor: str,
        action: str,
        alias: str | None,
        from_name: str | None,
        to_name: str | None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        await conn.execute(
            insert(LlmAuditRow).values(
                at=datetime.now(UTC),
                actor=actor[:100],
                action=action,
                alias=alias,
                from_name=from_name,
                to_name=to_name,
                detail=dict(detail or {}),
            )
        )

    async def _bump(self, conn: AsyncConnection) -> None:
        await conn.execute(
            update(LlmRevisionRow).where(LlmRevisionRow.id == 1).values(revision=LlmRevisionRow.revision + 1)
        )


def _call_values(call: CallRecord) -> dict[str, Any]:
    return {
        "conversation_id": call.conversation_id,
        "message_id": call.message_id,
        "name": call.name,
        "model": call.model,
        "variant": call.variant,
        "outcome": call.outcome,
        "prompt_tokens": call.prompt_tokens,
        "completion_tokens": call.completion_tokens,
        "ttft_ms": call.ttft_ms,
        "total_ms": call.total_ms,
    }
