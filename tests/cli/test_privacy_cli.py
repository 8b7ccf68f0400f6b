"""`kefu privacy`: erase, purge and audit through the real command, on a throwaway SQLite or PostgreSQL database."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kefu.guard.pseudonym import Pseudonymizer
from kefu.guard.storage import Sealer
from kefu.store.conversations import SqlConversationStore
from kefu.store.database import create_engine, migrate
from tests.cli.test_cli import kefu
from tests.store.test_privacy import PER_CONVERSATION, add_customer, age_conversations

SECRET = "cli-test-pseudonym-secret"
ZHANG = "用户-张三"


def _populate(url: str, conversations: dict[str, str | None], aged: dict[str, float] | None = None) -> None:
    async def run() -> None:
        engine = create_engine(url)
        try:
            await migrate(engine)
            store = SqlConversationStore(engine)
            for cid, user_id in conversations.items():
                await add_customer(engine, store, cid, user_id)
            for cid, days in (aged or {}).items():
                await age_conversations(engine, [cid], days)
        finally:
            await engine.dispose()

    asyncio.run(run())


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"KEFU_DATA_DIR": str(tmp_path / "data"), "KEFU_PSEUDONYM_SECRET": SECRET, **extra}


def _sqlite(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'data' / 'kefu.db'}"


def _last_json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_erase_a_user_dry_run_then_for_real(tmp_path: Path) -> None:
    _populate(_sqlite(tmp_path), {"zh-1": ZHANG, "zh-2": ZHANG, "en-1": "alice"})
    env = _env(tmp_path)
    pseudonym = Pseudonymizer(SECRET.encode())(ZHANG)
    expected = {name: 2 * n for name, n in PER_CONVERSATION.items()}

    dry = kefu("privacy", "erase", "--user", ZHANG, "--dry-run", "--json", env=env)
    assert _last_json(dry) == {
        "action": "erase_user",
        "subject": pseudonym,
        "dry_run": True,
        "found": True,
        "total": sum(expected.values()),
        "counts": expected,
    }
    assert f"would erase {sum(expected.values())} rows" in dry.stdout and "events" in dry.stdout

    done = _last_json(kefu("privacy", "erase", "--user", ZHANG, "--json", env=env))
    assert (done["counts"], done["dry_run"]) == (expected, False)
    again = kefu("privacy", "erase", "--user", ZHANG, env=env)
    assert again.returncode == 0 and "no records found, nothing to erase" in again.stdout

    audit = kefu("privacy", "audit", "--json", env=env)
    entries = _last_json(audit)["audit"]
    assert [(e["action"], e["subject"], e["dry_run"], sum(e["counts"].values())) for e in entries] == [
        ("erase_user", pseudonym, False, 0),
        ("erase_user", pseudonym, False, sum(expected.values())),
        ("erase_user", pseudonym, True, sum(expected.values())),
    ]
    assert all(e["actor"].startswith("cli") for e in entries)
    assert ZHANG not in audit.stdout and "张三" not in audit.stdout

    # alice's conversation is untouched; erasing it by conversation id works too.
    one = _last_json(kefu("privacy", "erase", "--conversation", "en-1", "--json", env=env))
    assert one["counts"]["conversations"] == 1 and one["subject"].startswith("c_")


def test_refuses_unclear_requests(tmp_path: Path) -> None:
    env = _env(tmp_path)
    for args in ((), ("--user", "a", "--conversation", "b"), ("--user", " ")):
        done = kefu("privacy", "erase", *args, env=env)
        assert done.returncode == 2 and "error:" in done.stderr, (args, done.stderr)
    off = kefu("privacy", "purge", env=env)
    assert off.returncode == 2 and "retention is off" in off.stderr
    assert kefu("privacy", "purge", "--older-than", "0", env=env).returncode == 2


def test_purge_uses_the_retention_setting_and_shows_progress(tmp_path: Path) -> None:
    old = {f"old-{i}": None for i in range(5)}
    _populate(_sqlite(tmp_path), {**old, "fresh": ZHANG}, aged={cid: 40 for cid in old})
    env = _env(tmp_path, KEFU_RETENTION_DAYS="30")

    dry = _last_json(kefu("privacy", "purge", "--dry-run", "--json", env=env))
    assert dry["counts"] == {name: 5 * n for name, n in PER_CONVERSATION.items()} and dry["dry_run"]
    done = kefu("privacy", "purge", "--batch-size", "2", "--json", env=env)
    result = _last_json(done)
    assert result["counts"]["conversations"] == 5 and result["subject"].startswith("before:")
    assert "purging" in done.stderr and "5/5" in done.stderr  # the progress bar
    assert _last_json(kefu("privacy", "purge", "--older-than", "1", "--dry-run", "--json", env=env))["found"] is False
    kept = _last_json(kefu("privacy", "erase", "--user", ZHANG, "--dry-run", "--json", env=env))
    assert kept["counts"]["conversations"] == 1


def test_new_key_is_a_usable_sealing_key(tmp_path: Path) -> None:
    keys = [kefu("privacy", "new-key", env=_env(tmp_path)).stdout.strip() for _ in range(2)]
    assert keys[0] != keys[1]
    sealer = Sealer(keys[0])
    assert sealer.open(sealer.seal("电话 13800138000")) == "电话 13800138000"


@pytest.mark.postgres
def test_erase_on_postgres(tmp_path: Path, postgres_url: str) -> None:
    _populate(postgres_url, {"pg-zh-1": ZHANG, "pg-en-1": "bob"})
    env = _env(tmp_path, KEFU_DATABASE_URL=postgres_url)
    done = _last_json(kefu("privacy", "erase", "--user", ZHANG, "--json", env=env))
    assert done["counts"]["conversations"] >= 1 and done["counts"]["events"] >= 5
    assert _last_json(kefu("privacy", "erase", "--user", ZHANG, "--json", env=env))["found"] is False
    assert _last_json(kefu("privacy", "erase", "--user", "bob", "--dry-run", "--json", env=env))["found"] is True
