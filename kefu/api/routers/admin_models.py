"""Operator endpoints for the model registry and experiments: the same operations as ``kefu model`` and
``kefu experiment``, audited with the caller as actor, applied from the next turn without a restart."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from kefu.api.deps import RuntimeDep, actor_of, require_admin
from kefu.api.errors import ApiError
from kefu.llm.registry import ModelExists, ModelRegistry, RegistryError, UnknownModel
from kefu.llm.types import ModelVersion
from kefu.runtime import Runtime

router = APIRouter(prefix="/admin", tags=["models"], dependencies=[Depends(require_admin)])
Percent = Annotated[float, Field(ge=0.0, le=100.0, description="Share of users, 0-100.")]


class NewVersion(BaseModel):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
    base_url: str = Field(min_length=8, max_length=500, description="OpenAI-compatible root, e.g. http://vllm:8000/v1")
    model: str = Field(min_length=1, max_length=200, description="The server's model id, e.g. Qwen/Qwen3-14B")
    profile: Literal["qwen3", "generic"] | None = None
    params: dict[str, Any] = Field(default_factory=dict, description="Sampling parameters (temperature, …)")
    languages: list[Literal["zh", "en"]] = Field(default_factory=list, description="Empty: all languages")
    notes: str = Field("", max_length=2000)


class Promotion(BaseModel):
    alias: Literal["stable", "canary"] = "stable"
    percent: Percent = 100.0


class Rollback(BaseModel):
    alias: Literal["stable", "canary"] = "stable"


class Experiment(BaseModel):
    canary: str = Field(min_length=1, max_length=100)
    percent: Percent


def _registry(runtime: Runtime) -> ModelRegistry:
    if runtime.registry is None:
        raise ApiError(503, "registry_unavailable", "the model registry is not available in this process")
    return runtime.registry


async def _applied(runtime: Runtime) -> None:
    """This process routes its next turn by the change at once (others within KEFU_LLM_RELOAD_S)."""
    if runtime.gateway is not None:
        await runtime.gateway.refresh()


def _refused(exc: RegistryError) -> ApiError:
    if isinstance(exc, UnknownModel):
        return ApiError(404, "model_not_found", str(exc))
    if isinstance(exc, ModelExists):
        return ApiError(409, "model_exists", str(exc))
    return ApiError(422, "registry_refused", str(exc))


@router.get("/models")
async def list_models(runtime: RuntimeDep) -> dict[str, Any]:
    registry = _registry(runtime)
    return {
        "versions": [v.to_dict() for v in await registry.versions()],
        "aliases": await registry.aliases(),
        "circuits": runtime.gateway.circuit_states() if runtime.gateway else {},
    }


@router.post("/models", status_code=201)
async def add_model(body: NewVersion, request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    version = ModelVersion(
        name=body.name,
        base_url=body.base_url.rstrip("/"),
        model=body.model,
        params=body.params,
        profile=body.profile,
        languages=tuple(body.languages),
        notes=body.notes,
    )
    try:
        await _registry(runtime).add(version, actor=actor_of(request))
        await _applied(runtime)
    except RegistryError as exc:
        raise _refused(exc) from exc
    return version.to_dict()


@router.post("/models/{name}/promote")
async def promote_model(name: str, body: Promotion, request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    try:
        before = await _registry(runtime).promote(name, alias=body.alias, actor=actor_of(request), percent=body.percent)
        await _applied(runtime)
    except RegistryError as exc:
        raise _refused(exc) from exc
    return {"alias": body.alias, "from": before, "to": name}


@router.post("/models/rollback")
async def rollback_model(body: Rollback, request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    try:
        current, previous = await _registry(runtime).rollback(alias=body.alias, actor=actor_of(request))
        await _applied(runtime)
    except RegistryError as exc:
        raise _refused(exc) from exc
    return {"alias": body.alias, "from": current, "to": previous}


@router.get("/models/audit")
async def model_audit(runtime: RuntimeDep, limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> dict[str, Any]:
    return {"audit": await _registry(runtime).audit(limit)}


@router.get("/experiments")
async def experiment_status(runtime: RuntimeDep) -> dict[str, Any]:
    registry = _registry(runtime)
    return {"aliases": await registry.aliases(), "usage": await registry.usage()}


@router.post("/experiments", status_code=201)
async def start_experiment(body: Experiment, request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    try:
        await _registry(runtime).start_experiment(body.canary, body.percent, actor=actor_of(request))
        await _applied(runtime)
    except RegistryError as exc:
        raise _refused(exc) from exc
    return {"canary": body.canary, "percent": body.percent}


@router.delete("/experiments")
async def stop_experiment(request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    try:
        name = await _registry(runtime).stop_experiment(actor=actor_of(request))
        await _applied(runtime)
    except RegistryError as exc:
        raise ApiError(409, "no_experiment", str(exc)) from exc
    return {"stopped": name}
