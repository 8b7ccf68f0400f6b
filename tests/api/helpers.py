"""Signing in for in-process tests of protected routes."""

from __future__ import annotations

import uuid

from fastapi import FastAPI

from kefu.access.control import AccessControl
from kefu.access.principals import Role


async def signed_in_headers(app: FastAPI, role: Role = "admin") -> dict[str, str]:
    """A session of a new account with ``role`` on the app's database. The account has no usable password
    (it can never sign in by itself), and accounts do not close ``/v1`` the way API keys do."""
    access: AccessControl = app.state.access
    account = await access.store.create_account(f"test-{role}-{uuid.uuid4().hex[:10]}", role, "no-password")
    token, _ = access.tokens.issue(account.username, account.role, account.session_gen)
    return {"Authorization": f"Bearer {token}"}
