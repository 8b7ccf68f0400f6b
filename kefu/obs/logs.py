"""JSON-lines logging on stdout (one object per line; ELK-ready) through structlog, with PII kept out.

structlog loggers and the standard library's loggers end in one handler whose formatter runs one structlog
processor chain: the request's context (its trace id, bound by ``kefu.obs.http``) is merged in, ``extra``
fields and a traceback are added, and then every field passes the privacy step before rendering. PII in
the message, in string fields and in a traceback is redacted, and fields that name a person or a machine
(user ids, client addresses) are replaced by their pseudonyms, so no log line holds raw personal data
whoever wrote the call. ``PrivacyFilter`` is the same step for a handler that formats records itself.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, MutableMapping
from typing import Any, TextIO

import structlog
from structlog.stdlib import ProcessorFormatter
from structlog.typing import EventDict, Processor, WrappedLogger

from kefu.guard.storage import scrub_value

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
# Field name -> what its value identifies (the pseudonym's kind).
PSEUDONYMISED_FIELDS = {"user_id": "user", "user": "user", "ip": "ip", "client_ip": "ip", "remote_addr": "ip"}
# Fields kefu writes itself, never from what anyone typed: not searched for PII (it costs time per line).
_OWN_FIELDS = frozenset({"ts", "level", "logger"})
# uvicorn's coloured copy of its message: the same text again.
_DROPPED_FIELDS = ("color_message",)
Pseudonymize = Callable[[str, str], str]


def scrub_fields(fields: MutableMapping[str, Any], pseudonymize: Pseudonymize | None) -> None:
    """Redacts PII in every field in place; identifying fields get their pseudonym (withheld without one)."""
    for key, value in list(fields.items()):
        if key in _OWN_FIELDS or key.startswith("_"):
            continue
        kind = PSEUDONYMISED_FIELDS.get(key)
        if kind is None:
            fields[key] = scrub_value(value, key)
        elif isinstance(value, str) and value:
            fields[key] = pseudonymize(value, kind) if pseudonymize else "[REDACTED]"


class PrivacyFilter(logging.Filter):
    """Redacts PII and pseudonymises identifying fields of every record, in place."""

    def __init__(self, pseudonymize: Pseudonymize | None = None) -> None:
        super().__init__()
        self.pseudonymize = pseudonymize

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, dict):  # a structlog event on its way to a ProcessorFormatter
            scrub_fields(record.msg, self.pseudonymize)
        else:
            record.msg, record.args = scrub_value(record.getMessage()), None
        extras = {k: v for k, v in record.__dict__.items() if k not in _RESERVED and not k.startswith("_")}
        scrub_fields(extras, self.pseudonymize)
        record.__dict__.update(extras)
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub_value(logging.Formatter().formatException(record.exc_info))
        return True


class PrivacyProcessor:
    """The privacy step as a structlog processor: last before rendering, so it sees every field."""

    def __init__(self, pseudonymize: Pseudonymize | None = None) -> None:
        self.pseudonymize = pseudonymize

    def __call__(self, logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
        scrub_fields(event, self.pseudonymize)
        return event


def _drop_noise(logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
    for key in _DROPPED_FIELDS:
        event.pop(key, None)
    return event


def _context() -> list[Processor]:
    """What every event gets before formatting, whichever logger wrote it."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
    ]


def build_formatter(as_json: bool = True, pseudonymize: Pseudonymize | None = None) -> ProcessorFormatter:
    """A logging formatter: one JSON object per line (or a readable line), PII redacted."""
    renderer: Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False, default=str)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *_context()],
        processors=[
            ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _drop_noise,
            PrivacyProcessor(pseudonymize),
            structlog.processors.EventRenamer("msg"),
            renderer,
        ],
    )


def configure_logging(
    level: str = "info",
    as_json: bool = True,
    pseudonymize: Pseudonymize | None = None,
    stream: TextIO | None = None,
) -> None:
    """Routes every logger of the process to ``stream`` (stdout) through ``build_formatter``."""
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *_context(), ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(build_formatter(as_json, pseudonymize))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("bm25s", "jieba", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
