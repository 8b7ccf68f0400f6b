"""No log line holds raw PII: messages, fields and tracebacks are redacted, ids are pseudonymised."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from kefu.guard.pseudonym import Pseudonymizer
from kefu.obs.logs import JsonFormatter, PrivacyFilter

PHONE = "13812345678"


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(PrivacyFilter(Pseudonymizer(b"test-secret")))
    logger = logging.getLogger("kefu.test.privacy")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield logger, stream
    logger.handlers.clear()


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_message_fields_and_ids(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.info(
        "customer %s wrote from %s", PHONE, "alice@example.com",
        extra={"user_id": "alice", "ip": "203.0.113.9", "conversation_id": "c-1", "note": "card 4111 1111 1111 1111"},
    )  # fmt: skip
    [entry] = _lines(stream)
    raw = json.dumps(entry, ensure_ascii=False)
    assert entry["msg"] == "customer [PHONE] wrote from [EMAIL]"
    assert entry["note"] == "card [BANK_CARD]"
    assert entry["conversation_id"] == "c-1"
    assert entry["user_id"] == Pseudonymizer(b"test-secret")("alice")
    assert str(entry["ip"]).startswith("ip_") and "203.0.113.9" not in raw and "alice" not in raw


def test_traceback_is_redacted(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    try:
        raise ValueError(f"bad phone {PHONE}")
    except ValueError:
        logger.exception("turn failed")
    [entry] = _lines(stream)
    assert "ValueError: bad phone [PHONE]" in str(entry["exc"]) and PHONE not in json.dumps(entry)


def test_without_a_secret_ids_are_withheld() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    record.__dict__["user_id"] = "alice"
    PrivacyFilter().filter(record)
    assert record.__dict__["user_id"] == "[REDACTED]"
