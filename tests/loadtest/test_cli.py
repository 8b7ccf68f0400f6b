"""``kefu loadtest``: argument errors exit 2 with a clear message; a run prints its table, ends with one
JSON line and writes its report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kefu.cli.main import app
from tests.conftest import ROOT


def loadtest(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KEFU_CLIENT_API_KEY"}
    return subprocess.run(
        [sys.executable, "-m", "kefu.cli.main", "loadtest", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env={**env, "COLUMNS": "200"},
    )  # fmt: skip


BASE = ("--url", "http://127.0.0.1:9", "--rps", "10", "--duration", "1")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--rps": "0"}, "--rps must be above 0"),
        ({"--rps": "nan"}, "--rps must be above 0"),
        ({"--duration": "-5"}, "--duration must be above 0"),
        ({"--duration": "7200"}, "at most 3600 seconds"),
        ({"--rps": "20000", "--duration": "3600"}, "requests; at most 2,000,000"),
        ({"--url": "http://10.1.2.3:8000"}, "is not a loopback address; pass --allow-remote"),
        ({"--url": "http://kefu.example.com"}, "is not a loopback address"),
        ({"--url": "https://127.0.0.1:8443"}, "only http:// URLs are supported"),
        ({"--url": "http://127.0.0.1:8000/?x=1"}, "without a query"),
        ({"--sessions": "zh,fr"}, "--sessions takes a comma-separated list of zh, en"),
        ({"--arrival": "bursty"}, "--arrival must be one of poisson, fixed"),
        ({"--timeout": "0"}, "--timeout must be above 0"),
        ({"--max-connections": "0"}, "--max-connections must be between 1 and 10000"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(change: dict[str, str], message: str) -> None:
    args = dict(zip(BASE[::2], BASE[1::2], strict=True)) | change
    done = CliRunner().invoke(app, ["loadtest", *(part for pair in args.items() for part in pair)])
    assert done.exit_code == 2, done.output
    assert message in " ".join(done.stderr.split()), done.stderr
    assert done.stdout == ""  # nothing was sent, nothing reported


def test_a_run_prints_its_summary_and_ends_with_one_json_line(floor_url: str, tmp_path: Path) -> None:
    report = tmp_path / "report"
    done = loadtest("--url", floor_url, "--rps", "100", "--duration", "2", "--json", "--report", str(report),
                    "--seed", "4", "--sessions", "en,zh")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "throughput req/s" in done.stdout and "per second" in done.stdout
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["errors"] == 0 and result["ok"] == result["requests"] > 150
    assert result["plan"]["seed"] == 4 and result["plan"]["sessions"] == ["en", "zh"]
    assert len(result["timeline"]) == 2 and result["latency"]["p99_ms"] < 500
    assert (report / "index.html").is_file() and json.loads((report / "result.json").read_text())["ok"] == result["ok"]


def test_an_unreachable_server_is_an_error_exit(tmp_path: Path) -> None:
    done = loadtest("--url", "http://127.0.0.1:9", "--rps", "20", "--duration", "0.5", "--json")
    assert done.returncode == 1
    assert "no request was answered" in done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["errors_by_kind"] == {"connection": 10}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gpu", "v100"], "unknown GPU 'v100'; expected one of: a100-40gb, a100-80gb, h100"),
        (["--gpu", "h100", "--precision", "int4"], "unknown precision 'int4'; expected one of: bf16, fp8"),
    ],
)
def test_the_simulator_names_what_it_can_simulate(args: list[str], message: str) -> None:
    done = CliRunner().invoke(app, ["llm", "simulate", *args])
    assert done.exit_code == 2 and message in " ".join(done.stderr.split())
