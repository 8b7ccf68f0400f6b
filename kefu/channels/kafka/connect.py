"""Reaching the broker: the bootstrap list, a clear error when it cannot be reached, and the topics."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

_HOST_PORT = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(?P<port>\d{1,5})")
DEFAULT_PARTITIONS = 6  # for topics kefu creates itself; a production cluster usually creates them first
# How long a fetch may wait for records. Some brokers (tansu) hold an empty fetch for the whole wait even
# when a record arrives: a short wait keeps a quiet conversation's answer from waiting half a second.
FETCH_MAX_WAIT_MS = 100
CONNECT_TIMEOUT_S = 15.0
_TOPIC_EXISTS = TopicAlreadyExistsError.errno


class BrokerUnavailable(RuntimeError):
    """The broker cannot be reached or refused what kefu asked of it."""


def parse_bootstrap(value: str) -> str:
    """``HOST:PORT[,HOST:PORT...]`` normalised (spaces removed); ``ValueError`` says what is wrong."""
    servers = [part.strip() for part in value.split(",") if part.strip()]
    if not servers:
        raise ValueError("expected HOST:PORT[,HOST:PORT...], got an empty value")
    for server in servers:
        match = _HOST_PORT.fullmatch(server)
        if match is None:
            raise ValueError(f"{server!r} is not HOST:PORT")
        if not 1 <= int(match["port"]) <= 65535:
            raise ValueError(f"{server!r}: the port must be 1-65535")
    return ",".join(servers)


async def ensure_topics(
    bootstrap: str,
    topics: Iterable[str],
    partitions: int = DEFAULT_PARTITIONS,
    timeout_s: float = CONNECT_TIMEOUT_S,
) -> None:
    """Create the topics that do not exist yet (``partitions`` each, one replica). Raises
    ``BrokerUnavailable`` when the broker cannot be reached within ``timeout_s``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
    try:
        try:
            await asyncio.wait_for(admin.start(), timeout_s)
            existing = set(await asyncio.wait_for(admin.list_topics(), timeout_s))
        except (KafkaError, OSError, TimeoutError) as exc:
            raise BrokerUnavailable(f"cannot reach the Kafka broker at {bootstrap}: {_why(exc)}") from exc
        missing = [name for name in dict.fromkeys(topics) if name not in existing]
        if missing:
            try:
                response = await asyncio.wait_for(
                    admin.create_topics([NewTopic(name, partitions, 1) for name in missing]), timeout_s
                )
            except (KafkaError, OSError, TimeoutError) as exc:
                raise BrokerUnavailable(f"cannot create topics {missing} at {bootstrap}: {_why(exc)}") from exc
            # Each entry is (topic, error code[, message]); "already exists" means another process won the race.
            refused = [entry for entry in response.topic_errors if entry[1] not in (0, _TOPIC_EXISTS)]
            if refused:
                raise BrokerUnavailable(f"the broker at {bootstrap} refused to create topics: {refused}")
    finally:
        await admin.close()


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
