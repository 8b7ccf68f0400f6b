"""No log line holds raw PII: messages, fields and tracebacks are redacted, ids are pseudonymised, whether
the line comes from a standard-library logger or a structlog one; every line is one JSON object."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from kefu.guard.pseudonym import Pseudonymizer
from kefu.obs.logs import PrivacyFilter, build_formatter, configure_logging

PHONE = "13812345678"
SECRET = b"test-secret"


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(build_formatter(True, Pseudonymizer(SECRET)))
    logger = logging.getLogger("kefu.test.privacy")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield logger, stream
    logger.handlers.clear()


@pytest.fixture
def configured() -> Iterator[io.StringIO]:
    """``configure_logging`` on a stream; the root logger and structlog are put back afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging("info", True, Pseudonymizer(SECRET), stream=stream)
    yield stream
    root.handlers[:], _ = saved
    root.setLevel(saved[1])
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


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
    assert entry["user_id"] == Pseudonymizer(SECRET)("alice")
    assert str(entry["ip"]).startswith("ip_") and "203.0.113.9" not in raw and "alice" not in raw
    assert entry["level"] == "info" and entry["logger"] == "kefu.test.privacy" and str(entry["ts"]).endswith("Z")


def test_traceback_is_redacted(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    try:
        raise ValueError(f"bad phone {PHONE}")
    except ValueError:
        logger.exception("turn failed")
    [entry] = _lines(stream)
    assert "ValueError: bad phone [PHONE]" in str(entry["exception"]) and PHONE not in json.dumps(entry)


def test_chinese_stays_readable(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.info("客户来电 %s，要求退款", PHONE, extra={"备注": f"手机号{PHONE}"})
    line = stream.getvalue()
    assert "客户来电 [PHONE]，要求退款" in line and "\\u" not in line and PHONE not in line
    assert _lines(stream)[0]["备注"] == "手机号[PHONE]"


def test_structlog_and_stdlib_lines_share_the_request_context(configured: io.StringIO) -> None:
    structlog.contextvars.bind_contextvars(trace_id="trace-0001")
    structlog.get_logger("kefu.test.structured").info("refund asked", user_id="bob", phone=PHONE, order="100002")
    logging.getLogger("kefu.test.plain").warning("call %s back", PHONE, extra={"client_ip": "198.51.100.7"})
    structured, plain = _lines(configured)
    assert structured["msg"] == "refund asked" and structured["trace_id"] == "trace-0001"
    assert structured["user_id"] == Pseudonymizer(SECRET)("bob") and structured["phone"] == "[PHONE]"
    assert structured["order"] == "100002"  # an order number is not PII
    assert plain["msg"] == "call [PHONE] back" and plain["trace_id"] == "trace-0001"
    assert plain["level"] == "warning" and str(plain["client_ip"]).startswith("ip_")
    assert PHONE not in configured.getvalue() and "198.51.100.7" not in configured.getvalue()


def test_readable_lines_are_redacted_too() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(build_formatter(as_json=False))
    logger = logging.getLogger("kefu.test.console")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.warning("reach me at %s", "alice@example.com", extra={"user_id": "alice"})
    logger.handlers.clear()
    text = stream.getvalue()
    assert "reach me at [EMAIL]" in text and "alice" not in text and "[REDACTED]" in text


def test_filter_for_other_handlers() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "call %s", (PHONE,), None)
    record.__dict__["user_id"] = "alice"
    PrivacyFilter().filter(record)
    assert record.getMessage() == "call [PHONE]"
    assert record.__dict__["user_id"] == "[REDACTED]"  # no secret: withheld, not pseudonymised
    event = {"event": f"phone {PHONE}", "user_id": "alice"}
    structured = logging.LogRecord("x", logging.INFO, __file__, 1, event, None, None)
    PrivacyFilter(Pseudonymizer(SECRET)).filter(structured)
    assert event == {"event": "phone [PHONE]", "user_id": Pseudonymizer(SECRET)("alice")}
