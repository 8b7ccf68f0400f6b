"""Pseudonyms: keyed, stable, kind-separated, and never the raw value."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from kefu.guard.pseudonym import Pseudonymizer

KEY = b"k" * 32


def test_is_a_truncated_hmac_sha256_of_kind_and_value() -> None:
    expected = hmac.new(KEY, b"user:alice", hashlib.sha256).hexdigest()[:16]
    assert Pseudonymizer(KEY)("alice") == "u_" + expected
    zh = hmac.new(KEY, "user:用户-张三".encode(), hashlib.sha256).hexdigest()[:16]
    assert Pseudonymizer(KEY)("用户-张三") == "u_" + zh


def test_stable_for_one_secret_and_different_for_another() -> None:
    one, same, other = Pseudonymizer(KEY), Pseudonymizer(KEY), Pseudonymizer(b"another secret")
    for value in ("alice", "用户-张三", "13800138000"):
        assert one(value) == same(value)
        assert one(value) != other(value)
        assert value not in one(value)
    assert one("alice") != one("alicf")


def test_kinds_have_their_own_prefix_and_never_collide() -> None:
    pseudonymize = Pseudonymizer(KEY)
    user, ip, conversation = (
        pseudonymize("10.0.0.1"),
        pseudonymize("10.0.0.1", "ip"),
        pseudonymize("c1", "conversation"),
    )
    assert user.startswith("u_") and ip.startswith("ip_") and conversation.startswith("c_")
    assert user[2:] != ip[3:]  # the kind is hashed too, not only the prefix
    assert pseudonymize("x", "session").startswith("session_")
    for bad in ("", "User", "ip addr", "a" * 17):
        with pytest.raises(ValueError):
            pseudonymize("x", bad)


def test_any_string_has_a_pseudonym_and_the_key_stays_hidden() -> None:
    pseudonymize = Pseudonymizer(KEY)
    assert len(pseudonymize("\ud800broken")) == 18  # an unpaired surrogate does not crash a log line
    assert len(pseudonymize("")) == 18
    assert "k" * 8 not in repr(pseudonymize)
    with pytest.raises(ValueError):
        Pseudonymizer(b"")
