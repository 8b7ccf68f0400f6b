"""Passwords (scrypt), session tokens (JWT) and API keys: the pieces a credential is made of."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
from pathlib import Path

import jwt
import pytest

from kefu.access import keys
from kefu.access.passwords import (
    MIN_LENGTH,
    ScryptParams,
    hash_password,
    needs_rehash,
    password_problem,
    verify_password,
)
from kefu.access.tokens import SECRET_FILE, InvalidToken, SessionTokens, load_secret

SECRET = b"s" * 32


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("password", ["correct horse battery", "正确的马电池订书钉", "mixed 密码 1234"])
def test_a_password_verifies_and_a_wrong_one_does_not(password: str) -> None:
    encoded = hash_password(password)
    assert encoded.startswith("scrypt$16384$8$1$") and password not in encoded
    assert verify_password(password, encoded)
    assert not verify_password(password + "x", encoded)
    assert not verify_password(password[:-1], encoded)
    assert hash_password(password) != encoded  # a fresh salt each time


def test_full_width_input_is_the_same_password() -> None:
    # A Chinese input method in full-width mode types ｐａｓｓ for pass.
    assert verify_password("ｓｅｃｒｅｔ－ｐａｓｓ１", hash_password("secret-pass1"))


def test_malformed_or_tampered_hashes_never_verify() -> None:
    encoded = hash_password("a long enough password")
    scheme, n, r, p, salt, digest = encoded.split("$")
    flipped = base64.b64encode(bytes([base64.b64decode(digest + "=")[0] ^ 1])).decode()[:2] + digest[2:]
    for bad in (
        "",
        "plain text",
        f"bcrypt${n}${r}${p}${salt}${digest}",
        f"{scheme}$1000${r}${p}${salt}${digest}",  # n must be a power of two
        f"{scheme}${n}${r}${p}${salt}$!!!",
        f"{scheme}${n}${r}${p}${salt}${flipped}",
    ):
        assert not verify_password("a long enough password", bad), bad


def test_parameters_travel_with_the_hash_and_old_ones_ask_for_a_rehash() -> None:
    cheap = ScryptParams(n=2**10, r=4, p=1)
    old = hash_password("a long enough password", cheap)
    assert old.startswith("scrypt$1024$4$1$")
    assert verify_password("a long enough password", old)  # verified with its own parameters
    assert needs_rehash(old) and not needs_rehash(hash_password("a long enough password"))
    assert needs_rehash("garbage")


def test_password_policy_speaks_both_languages() -> None:
    short = password_problem("x" * (MIN_LENGTH - 1))
    assert short is not None and "at least 10" in short and "至少需要 10" in short
    assert password_problem("长" * MIN_LENGTH) is None
    assert password_problem("x" * 5000) is not None


def test_tokens_round_trip_and_expire_by_the_clock() -> None:
    clock = Clock()
    tokens = SessionTokens(SECRET, ttl_s=3600, clock=clock)
    token, expires_at = tokens.issue("王小明", "admin", gen=3)
    claims = tokens.read(token)
    assert (claims.username, claims.role, claims.gen) == ("王小明", "admin", 3)
    assert claims.expires_at == expires_at and expires_at.timestamp() == clock.now + 3600
    payload = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False, "verify_iat": False})
    assert set(payload) == {"sub", "role", "gen", "iat", "exp", "jti"}
    clock.now += 3599
    assert tokens.read(token).username == "王小明"
    clock.now += 1
    with pytest.raises(InvalidToken, match="expired"):
        tokens.read(token)


def _tamper(token: str, **changes: object) -> str:
    header, body, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims.update(changes)
    raw = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{raw}.{signature}"


def test_tampered_foreign_and_unsigned_tokens_are_refused() -> None:
    clock = Clock()
    tokens = SessionTokens(SECRET, ttl_s=3600, clock=clock)
    token, _ = tokens.issue("agent-1", "agent", gen=0)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False, "verify_iat": False})
    unsigned = jwt.encode({**claims, "role": "admin"}, key="", algorithm="none")
    missing_gen = jwt.encode({k: v for k, v in claims.items() if k != "gen"}, SECRET, algorithm="HS256")
    bad_role = jwt.encode({**claims, "role": "root"}, SECRET, algorithm="HS256")
    for bad in (
        _tamper(token, role="admin"),  # escalation attempt: the signature no longer matches
        _tamper(token, exp=int(clock.now) + 10**6),
        SessionTokens(b"o" * 32, ttl_s=3600, clock=clock).issue("agent-1", "agent", 0)[0],
        unsigned,
        missing_gen,
        bad_role,
        "not.a.token",
        token[:-2],
    ):
        with pytest.raises(InvalidToken):
            tokens.read(bad)
    assert tokens.read(token).role == "agent"


def test_short_signing_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="32"):
        SessionTokens(b"short", ttl_s=60)
    with pytest.raises(ValueError, match="KEFU_SECRET_KEY"):
        load_secret("too-short", Path("/nonexistent"))


def test_the_secret_is_made_once_privately_and_reused(tmp_path: Path) -> None:
    first = load_secret("", tmp_path / "data")
    path = tmp_path / "data" / SECRET_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(first) >= 64 and load_secret("", tmp_path / "data") == first
    assert [p.name for p in path.parent.iterdir()] == [SECRET_FILE]  # no temporary file left behind
    # The file's text is a valid KEFU_SECRET_KEY: replicas given it sign alike.
    assert load_secret(path.read_text().strip(), tmp_path / "elsewhere") == first
    configured = "k" * 40
    assert load_secret(configured, tmp_path / "other") == configured.encode()
    assert not (tmp_path / "other").exists()


def test_api_keys_have_the_documented_shape() -> None:
    made = keys.new_key()
    assert made.key.startswith(f"kefu_{made.id}_") and len(made.key) == keys.KEY_LENGTH == 46
    assert re.fullmatch(r"[a-z0-9]{8}", made.id)
    assert keys.key_id(made.key) == made.id
    assert keys.matches(made.key, made.sha256) and made.sha256 == keys.digest(made.key)
    assert not keys.matches(made.key[:-1] + ("A" if made.key[-1] != "A" else "B"), made.sha256)
    assert made.key not in made.sha256
    for bad in ("", "kefu_", made.key[:-1], made.key + "x", "kefu-" + made.key[5:], "kefu_ABCDEFGH_" + "x" * 32):
        assert keys.key_id(bad) is None, bad
    assert len({keys.new_key().key for _ in range(50)}) == 50
