"""A real kefu server process on 127.0.0.1 for the end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import MODEL_CACHE, ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(data_dir: Path, port: int | None = None, **env: str) -> tuple[subprocess.Popen[bytes], str]:
    """A server on ``port`` (a free one by default; pass the same one to restart a server in place)."""
    port = port or free_port()
    environment = {
        **os.environ,
        "KEFU_DATA_DIR": str(data_dir),
        "KEFU_MODEL_CACHE_DIR": str(MODEL_CACHE),
        "KEFU_LOG_LEVEL": "warning",
        "OPENBLAS_NUM_THREADS": "1",
        **env,
    }
    log = open(data_dir / "server.log", "ab")  # noqa: SIM115 - kept open for the process's lifetime
    process = subprocess.Popen(
        [sys.executable, "-m", "kefu.cli.main", "serve", "--port", str(port)],
        cwd=ROOT,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{(data_dir / 'server.log').read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"server not ready in 90 s:\n{(data_dir / 'server.log').read_text()[-3000:]}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, base = start_server(tmp_path_factory.mktemp("server"))
    try:
        yield base
    finally:
        stop_server(process)


def post_concurrently(bases: list[str], conversation_id: str, texts: list[str]) -> list[httpx.Response]:
    """Post every text at once (text i as message ``m{i}``), round-robin over the server bases."""
    import asyncio

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=60) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        f"{bases[i % len(bases)]}/v1/conversations/{conversation_id}/messages",
                        json={"text": text, "message_id": f"m{i}"},
                    )
                    for i, text in enumerate(texts)
                )
            )

    return asyncio.run(burst())
