"""A retrained intent model is swapped into the running server without a restart; a model whose labels
the pack cannot route is refused and the running one kept."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import httpx
import pytest

from kefu.packs.loader import load_pack
from tests.cli.test_cli import kefu
from tests.e2e.admin import add_admin, admin_headers
from tests.e2e.conftest import start_server, stop_server

pytestmark = pytest.mark.e2e
PROBE = "zebra crossing lighthouse"  # a made-up phrase whose meaning each model version decides


def train(folder: Path, probe_label: str) -> None:
    rows = []
    for examples in load_pack("ecommerce").intent_examples.values():
        for intent in ("order_status", "invoice", "cancel_order", "greeting"):
            rows += [{"text": t, "label": intent} for t in examples[intent][:30]]
    rows += [{"text": f"{PROBE} {suffix}", "label": probe_label} for suffix in ("", "please", "now", "?", "again")]
    data = folder.parent / f"train-{probe_label}.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    done = kefu(
        "intent",
        "train",
        "--data",
        str(data),
        "--out",
        str(folder),
        "--encoders",
        "use-multilingual-v3",
        "--finetune",
        "no",
    )
    assert done.returncode == 0, done.stderr


def intent_of(base: str, text: str) -> str:
    reply = httpx.post(f"{base}/v1/conversations/c-{uuid.uuid4().hex}/messages", json={"text": text}, timeout=10)
    assert reply.status_code == 200, reply.text
    return str(reply.json()["intent"]["name"])


def test_retrained_model_is_picked_up_and_a_bad_one_refused(tmp_path: Path) -> None:
    model = tmp_path / "intent-model"
    train(model, "invoice")
    add_admin(tmp_path)
    process, base = start_server(tmp_path, KEFU_INTENT_MODEL=str(model), KEFU_MODEL_RELOAD_S="0.5")
    try:
        assert intent_of(base, PROBE) == "invoice"
        assert intent_of(base, "我的订单100001到哪了") == "order_status"
        assert httpx.post(f"{base}/admin/nlu/reload", timeout=10).status_code == 401  # admins only
        unchanged = httpx.post(f"{base}/admin/nlu/reload", headers=admin_headers(base), timeout=10).json()
        assert unchanged["swapped"] is False and unchanged["labels"] == 4

        train(model, "cancel_order")  # in place, while the server runs
        deadline = time.monotonic() + 30
        while intent_of(base, PROBE) != "cancel_order":
            assert time.monotonic() < deadline, "the retrained model was not picked up"
            time.sleep(0.3)

        train(model, "tax_question")  # a label the pack has no flow for
        time.sleep(2.5)
        assert intent_of(base, PROBE) == "cancel_order"
        metrics = httpx.get(f"{base}/metrics", timeout=5).text
        assert 'kefu_model_reloads_total{result="swapped"} 1.0' in metrics
        assert 'kefu_model_reloads_total{result="refused"} 1.0' in metrics
    finally:
        stop_server(process)


def test_an_intent_model_the_pack_cannot_route_stops_the_start(tmp_path: Path) -> None:
    model = tmp_path / "foreign"
    train(model, "tax_question")
    with pytest.raises(RuntimeError, match=r"KEFU_INTENT_MODEL.*tax_question"):
        start_server(tmp_path, KEFU_INTENT_MODEL=str(model))
