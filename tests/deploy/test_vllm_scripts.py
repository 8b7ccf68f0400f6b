"""The vLLM launch scripts in deploy/vllm: valid bash, the flags kefu relies on, and a README that quotes
the same KV-cache figures as kefu.llm.capacity."""

import itertools
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kefu.llm.capacity import SHAPES, kv_token_capacity

VLLM_DIR = Path(__file__).resolve().parents[2] / "deploy" / "vllm"
SCRIPTS = ["serve-bf16.sh", "serve-fp8.sh", "serve-awq.sh", "serve-lora.sh"]
MUST_HAVE = [
    "--enable-prefix-caching",
    "--reasoning-parser qwen3",
    "--tool-call-parser hermes",
    "--enable-auto-tool-choice",
    "--max-model-len",
]
BASH = shutil.which("bash")
needs_bash = pytest.mark.skipif(BASH is None, reason="bash not installed")


@needs_bash
@pytest.mark.parametrize("name", SCRIPTS)
def test_script_is_valid_bash(name: str) -> None:
    result = subprocess.run([BASH or "bash", "-n", str(VLLM_DIR / name)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_has_the_flags_kefu_needs(name: str) -> None:
    text = (VLLM_DIR / name).read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert "exec vllm serve" in text
    for flag in MUST_HAVE:
        assert flag in text, f"{name} lacks {flag}"
    assert os.access(VLLM_DIR / name, os.X_OK), f"{name} is not executable"


@needs_bash
@pytest.mark.parametrize("name", SCRIPTS)
def test_script_passes_the_flags_and_env_overrides_to_vllm(name: str, tmp_path: Path) -> None:
    fake = tmp_path / "vllm"
    fake.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@"\n', encoding="utf-8")
    fake.chmod(0o755)
    env = {
        "PATH": f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}",
        "VLLM_API_KEY": "secret-key",
        "PORT": "9001",
        "MAX_MODEL_LEN": "12345",
        "MODEL": "/models/qwen3",
    }
    result = subprocess.run([BASH or "bash", str(VLLM_DIR / name)], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    args = result.stdout.splitlines()
    assert args[:2] == ["serve", "/models/qwen3"]
    pairs = dict(itertools.pairwise(args))
    assert pairs["--port"] == "9001"
    assert pairs["--max-model-len"] == "12345"
    assert pairs["--api-key"] == "secret-key"
    assert pairs["--reasoning-parser"] == "qwen3"
    assert pairs["--tool-call-parser"] == "hermes"
    assert pairs["--gpu-memory-utilization"] == "0.90"
    assert {"--enable-prefix-caching", "--enable-auto-tool-choice"} <= set(args)


@needs_bash
def test_script_refuses_to_start_without_an_api_key(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", "")}
    result = subprocess.run([BASH or "bash", str(VLLM_DIR / "serve-bf16.sh")], capture_output=True, text=True, env=env)
    assert result.returncode != 0
    assert "VLLM_API_KEY" in result.stderr


def _quoted_tokens(conclusion: str, label: str) -> int:
    match = re.search(rf"~([\d,]+) tokens {label}", conclusion)
    assert match, f"README conclusion does not quote '~N tokens {label}'"
    return int(match.group(1).replace(",", ""))


def test_readme_conclusion_agrees_with_the_arithmetic() -> None:
    readme = (VLLM_DIR / "README.md").read_text(encoding="utf-8")
    start = readme.index("**Conclusion")
    end = readme.find("\n\n", start)
    conclusion = readme[start : end if end != -1 else None]
    shape = SHAPES["qwen3-14b"]
    for label, dtype in (("in bf16", "bf16"), ("with FP8 weights", "fp8")):
        quoted = _quoted_tokens(conclusion, label)
        computed = kv_token_capacity(shape, 40, dtype)
        assert abs(quoted - computed) <= 0.10 * computed, (label, quoted, computed)
