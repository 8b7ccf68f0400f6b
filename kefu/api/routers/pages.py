"""The plain chat page at ``/``, the agent console at ``/console``, and their static files."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC = Path(__file__).resolve().parent.parent / "static"
router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")


@router.get("/console")
async def console() -> FileResponse:
    """The agent console (docs/handoff.md); it signs in with POST /auth/login and talks to /agent."""
    return FileResponse(STATIC / "console.html", media_type="text/html; charset=utf-8")
