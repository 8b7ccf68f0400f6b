"""The kefu command: pack validation, preparation and the in-process chat."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from kefu.packs.loader import BUNDLED
from tests.conftest import MODEL_CACHE, ROOT


def kefu(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "kefu.cli.main", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_pack_validate_ok() -> None:
    done = kefu("pack", "validate", str(BUNDLED / "ecommerce"))
    assert done.returncode == 0, done.stderr
    assert "pack ecommerce: ok" in done.stdout and "15 intents" in done.stdout


def test_pack_validate_names_the_bad_file_flow_and_step(tmp_path: Path) -> None:
    copy = tmp_path / "shop"
    shutil.copytree(BUNDLED / "ecommerce", copy)
    flow = copy / "flows" / "order_status.yaml"
    flow.write_text(flow.read_text().replace("next: confirm}", "next: nowhere}", 1))
    done = kefu("pack", "validate", str(copy))
    assert done.returncode == 1
    assert (
        "order_status.yaml" in done.stderr
        and "flow 'order_status'" in done.stderr
        and "step 'shipped'" in done.stderr
        and "nowhere" in done.stderr
    )


def test_pack_validate_not_a_pack(tmp_path: Path) -> None:
    done = kefu("pack", "validate", str(tmp_path))
    assert done.returncode == 2 and "no pack.yaml" in done.stderr


def test_bad_setting_is_a_clear_exit(tmp_path: Path) -> None:
    done = kefu("serve", env={"KEFU_PORT": "not-a-port", "KEFU_DATA_DIR": str(tmp_path)})
    assert done.returncode == 2 and "KEFU_PORT" in done.stderr


def test_chat_in_process(tmp_path: Path) -> None:
    done = kefu(
        "chat",
        "--locale",
        "en",
        stdin="where is order 100001\nexit\n",
        env={"KEFU_DATA_DIR": str(tmp_path), "KEFU_MODEL_CACHE_DIR": str(MODEL_CACHE)},
    )
    assert done.returncode == 0, done.stderr
    assert "SF1234567890" in done.stdout
