"""JSON-lines logging on stdout (one object per line; ELK-ready), with PII kept out.

Every record passes a filter before any formatter sees it: PII in the message, in string fields and in a
traceback is redacted, and fields that name a person or a machine (user ids, client addresses) are replaced
by their pseudonyms, so no log line holds raw personal data whoever wrote the call.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kefu.guard.storage import scrub_value

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
# Field name -> what its value identifies (the pseudonym's kind).
PSEUDONYMISED_FIELDS = {"user_id": "user", "user": "user", "ip": "ip", "client_ip": "ip", "remote_addr": "ip"}
Pseudonymize = Callable[[str, str], str]


class PrivacyFilter(logging.Filter):
    """Redacts PII and pseudonymises identifying fields of every record, in place."""

    def __init__(self, pseudonymize: Pseudonymize | None = None) -> None:
        super().__init__()
        self.pseudonymize = pseudonymize

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = scrub_value(message), None
        for key, value in list(record.__dict__.items()):
            if key in _RESERVED or key.startswith("_"):
                continue
            kind = PSEUDONYMISED_FIELDS.get(key)
            if kind is not None and isinstance(value, str) and value:
                record.__dict__[key] = self.pseudonymize(value, kind) if self.pseudonymize else "[REDACTED]"
            elif key not in PSEUDONYMISED_FIELDS:
                record.__dict__[key] = scrub_value(value, key)
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub_value(logging.Formatter().formatException(record.exc_info))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _RESERVED and not k.startswith("_")})
        if record.exc_info or record.exc_text:
            entry["exc"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str = "info", as_json: bool = True, pseudonymize: Pseudonymize | None = None) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        JsonFormatter() if as_json else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    handler.addFilter(PrivacyFilter(pseudonymize))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("bm25s", "jieba", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
