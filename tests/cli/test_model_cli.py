"""`kefu model`, `kefu experiment` and `kefu llm local` through the real command, on a throwaway database
(SQLite per test, and once on PostgreSQL to show the registry is the shared one)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from kefu.llm.local import free_port
from kefu.llm.types import SAMPLING_KEYS
from tests.cli.test_cli import kefu
from tests.conftest import MODEL_CACHE

LLAMA_MODEL = "smollm2-135m-instruct"


def _env(data_dir: Path, database_url: str = "") -> dict[str, str]:
    # An empty KEFU_DATABASE_URL means the SQLite file in KEFU_DATA_DIR, whatever the caller's shell has set.
    return {"KEFU_DATA_DIR": str(data_dir), "KEFU_MODEL_CACHE_DIR": str(MODEL_CACHE), "KEFU_DATABASE_URL": database_url}


def _last_json(stdout: str) -> Any:
    return json.loads(stdout.strip().splitlines()[-1])


def _ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, f"exit {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"
    return done


def _refused(done: subprocess.CompletedProcess[str], code: int, *phrases: str) -> None:
    assert done.returncode == code, f"exit {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"
    assert "error:" in done.stderr
    for phrase in phrases:
        assert phrase in done.stderr, f"{phrase!r} not in stderr: {done.stderr}"


def _dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}/v1"  # a port nothing listens on


def test_life_cycle_on_sqlite(tmp_path: Path, llama_server: str) -> None:
    env = _env(tmp_path / "data")
    added = _ok(
        kefu(
            "model", "add", "v1", "--base-url", llama_server, "--model", LLAMA_MODEL,
            "--param", "temperature=0.3", "--language", "en", "--notes", "first", env=env,
        )
    )  # fmt: skip
    assert f"added model version v1 ({LLAMA_MODEL} at {llama_server.rstrip('/')})" in added.stdout
    dead = _dead_url()
    _ok(kefu("model", "add", "v2", "--base-url", dead, "--model", "qwen3-14b", "--no-check", env=env))
    assert (tmp_path / "data" / "kefu.db").is_file()

    listed = _last_json(_ok(kefu("model", "list", "--json", env=env)).stdout)
    versions = {v["name"]: v for v in listed["versions"]}
    assert list(versions) == ["v1", "v2"]
    assert versions["v1"] == {
        "name": "v1",
        "base_url": llama_server.rstrip("/"),
        "model": LLAMA_MODEL,
        "params": {"temperature": 0.3},
        "profile": None,
        "languages": ["en"],
        "notes": "first",
    }
    assert (versions["v2"]["base_url"], versions["v2"]["model"]) == (dead, "qwen3-14b")
    assert (versions["v2"]["params"], versions["v2"]["languages"], versions["v2"]["notes"]) == ({}, [], "")
    assert listed["aliases"] == {}

    assert _ok(kefu("model", "promote", "v1", env=env)).stdout.strip() == "stable: (none) -> v1"
    assert _ok(kefu("model", "promote", "v2", env=env)).stdout.strip() == "stable: v1 -> v2"
    assert _ok(kefu("model", "rollback", env=env)).stdout.strip() == "stable: v2 -> v1"
    _refused(kefu("model", "rollback", env=env), 2, "no earlier version", "'v1'")

    started = _ok(kefu("experiment", "start", "--canary", "v2", "--percent", "20", env=env))
    assert "experiment started: v2 for 20% of users" in started.stdout
    status = kefu("experiment", "status", "--json", env=env)
    assert "stable: v1" in _ok(status).stdout and "canary: v2 for 20% of users" in status.stdout
    aliases = _last_json(status.stdout)["aliases"]
    assert (aliases["canary"]["name"], aliases["canary"]["percent"]) == ("v2", 20.0)
    assert (aliases["stable"]["name"], aliases["stable"]["percent"]) == ("v1", 100.0)
    assert _last_json(status.stdout)["usage"] == []  # no turn has been served

    assert "experiment stopped: v2" in _ok(kefu("experiment", "stop", env=env)).stdout
    _refused(kefu("experiment", "stop", env=env), 2, "no experiment")

    audit = _last_json(_ok(kefu("model", "audit", "--json", env=env)).stdout)
    # Newest first; the refused rollback and stop left no trace.
    assert [(a["action"], a["alias"], a["from"], a["to"]) for a in audit] == [
        ("experiment_stop", "canary", "v2", None),
        ("experiment_start", "canary", None, "v2"),
        ("rollback", "stable", "v2", "v1"),
        ("promote", "stable", "v1", "v2"),
        ("promote", "stable", None, "v1"),
        ("add", None, None, "v2"),
        ("add", None, None, "v1"),
    ]
    assert audit[1]["detail"] == {"percent": 20.0, "stable": "v1"}
    assert all(a["actor"].startswith("cli") for a in audit), [a["actor"] for a in audit]
    assert [a["at"] for a in audit] == sorted((a["at"] for a in audit), reverse=True)


def test_bad_input_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    env = _env(tmp_path / "data")
    for name in ("v1", "v2"):
        _ok(kefu("model", "add", name, "--base-url", _dead_url(), "--model", "qwen3-14b", "--no-check", env=env))
    before = _last_json(_ok(kefu("model", "list", "--json", env=env)).stdout)
    assert [v["name"] for v in before["versions"]] == ["v1", "v2"] and before["aliases"] == {}

    dead = _dead_url()
    _refused(
        kefu("model", "add", "v3", "--base-url", dead, "--model", "qwen3-14b", env=env),
        1,
        f"cannot reach {dead}",
        "nothing was registered",
        "--no-check",
    )
    typo = kefu(
        "model", "add", "v3", "--base-url", dead, "--model", "m", "--param", "temprature=1", "--no-check", env=env
    )
    _refused(typo, 2, "temprature", *sorted(SAMPLING_KEYS))
    _refused(
        kefu("model", "add", "v3", "--base-url", "ftp://x", "--model", "m", "--no-check", env=env),
        2,
        "'ftp://x'",
        "must start with http:// or https://",
    )
    _refused(
        kefu("model", "add", "v1", "--base-url", dead, "--model", "other", "--no-check", env=env),
        2,
        "'v1'",
        "immutable",
    )
    _refused(kefu("model", "promote", "nope", env=env), 2, "no model version named 'nope'", "registered: v1, v2")
    _refused(kefu("model", "promote", "v1", "--alias", "beta", env=env), 2, "--alias must be one of stable, canary")
    _refused(
        kefu("experiment", "start", "--canary", "v2", "--percent", "150", env=env),
        2,
        "between 0 and 100",
        "150",
    )
    _refused(kefu("experiment", "start", "--canary", "v2", "--percent", "20", env=env), 2, "no stable model")

    after = _last_json(_ok(kefu("model", "list", "--json", env=env)).stdout)
    assert after == before
    audit = _last_json(_ok(kefu("model", "audit", "--json", env=env)).stdout)
    assert [(a["action"], a["to"]) for a in audit] == [("add", "v2"), ("add", "v1")]


@pytest.mark.postgres
def test_registry_is_shared_on_postgres(tmp_path: Path, postgres_url: str) -> None:
    # The session's database may hold other tests' versions: names of our own, and only our rows asserted.
    tag = uuid.uuid4().hex[:8]
    old, new = f"pg-{tag}-a", f"pg-{tag}-b"
    writer = _env(tmp_path / "writer", postgres_url)
    dead = _dead_url()
    add = ("model", "add", "--base-url", dead, "--model", "qwen3-14b", "--no-check")
    _ok(kefu(*add, old, "--language", "zh", env=writer))
    _ok(kefu(*add, new, "--param", "top_p=0.8", env=writer))
    _ok(kefu("model", "promote", old, env=writer))
    assert _ok(kefu("model", "promote", new, env=writer)).stdout.strip() == f"stable: {old} -> {new}"
    assert not (tmp_path / "writer" / "kefu.db").exists()  # nothing went to a local SQLite file

    # Another process with another data dir (as a second server would be) reads the same registry.
    reader = _env(tmp_path / "reader", postgres_url)
    listed = _last_json(_ok(kefu("model", "list", "--json", env=reader)).stdout)
    versions = {v["name"]: v for v in listed["versions"]}
    assert (versions[old]["languages"], versions[old]["params"]) == (["zh"], {})
    assert (versions[new]["languages"], versions[new]["params"]) == ([], {"top_p": 0.8})
    assert versions[new]["base_url"] == dead
    assert listed["aliases"]["stable"]["name"] == new
    assert _ok(kefu("model", "rollback", env=reader)).stdout.strip() == f"stable: {new} -> {old}"
    audit = _last_json(_ok(kefu("model", "audit", "--limit", "1", "--json", env=writer)).stdout)
    assert [(a["action"], a["from"], a["to"]) for a in audit] == [("rollback", new, old)]


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed")
def test_llm_local_refuses_a_file_that_is_not_gguf(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 this is a zip, not a model")
    env = _env(tmp_path / "data")
    _refused(kefu("llm", "local", "--gguf", str(fake), "--port", "0", env=env), 1, "not a GGUF model file")
    _refused(kefu("llm", "local", "--gguf", "/nonexistent.gguf", "--port", "0", env=env), 1, "no such GGUF file")
