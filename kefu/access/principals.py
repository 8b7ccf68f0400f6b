"""Who is calling: roles and the principal a request was authenticated as."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Role = Literal["channel", "agent", "admin"]
# Each role may do what the ones before it may: admin ⊇ agent ⊇ channel.
ROLES: tuple[Role, ...] = ("channel", "agent", "admin")
ACCOUNT_ROLES: tuple[Role, ...] = ("agent", "admin")  # people sign in; channels use API keys


def role_allows(role: Role | None, needed: Role) -> bool:
    return role is not None and ROLES.index(role) >= ROLES.index(needed)


def as_role(value: str) -> Role:
    for role in ROLES:
        if role == value:
            return role
    raise ValueError(f"unknown role {value!r}; use one of {', '.join(ROLES)}")


@dataclass(frozen=True)
class Principal:
    """``kind`` says how the caller proved who it is; ``via`` where the credential came from (a session
    cookie needs a same-origin check on unsafe methods); ``bucket`` names its rate-limit bucket."""

    kind: Literal["anonymous", "key", "user"]
    name: str  # key id, "env" for a KEFU_API_KEYS key, the username, or "" when anonymous
    role: Role | None
    bucket: str
    via: Literal["none", "header", "query", "cookie"] = "none"
    expires_at: datetime | None = None


def anonymous(address: str) -> Principal:
    return Principal("anonymous", "", None, f"ip:{address}")
