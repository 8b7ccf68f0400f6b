"""The demo pack holds every fact ARCHITECTURE.md promises, in both languages."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kefu.packs.loader import BUNDLED, PackError, check_pack, load_pack

INTENTS = {
    "greeting", "goodbye", "thanks", "product_inquiry", "order_status", "cancel_order", "return_refund",
    "change_address", "shipping_policy", "payment_issue", "invoice", "account_security", "complaint",
    "human_agent", "out_of_scope",
}  # fmt: skip


@pytest.fixture(scope="module")
def pack():  # type: ignore[no-untyped-def]
    return load_pack("ecommerce")


def test_intents_and_examples(pack) -> None:  # type: ignore[no-untyped-def]
    assert set(pack.intents) == INTENTS
    for language in ("zh", "en"):
        for intent in INTENTS:
            examples = pack.intent_examples[language][intent]
            assert len(examples) >= 40, (language, intent)
            assert len({e.lower() for e in examples}) == len(examples)


def test_orders(pack) -> None:  # type: ignore[no-untyped-def]
    orders = {o["id"]: o for o in pack.orders}
    assert set(orders) == {"100001", "100002", "100003", "100004"}
    assert orders["100001"]["status"] == "shipped" and orders["100001"]["tracking"] == "SF1234567890"
    assert orders["100001"]["carrier"] == {"en": "SF Express", "zh": "顺丰速运"}
    assert orders["100002"]["status"] == "delivered" and orders["100002"]["delivered_days_ago"] == 3
    assert orders["100003"]["status"] == "processing"
    assert orders["100004"]["status"] == "delivered" and orders["100004"]["delivered_days_ago"] == 45
    assert (
        orders["100001"]["item"] == orders["100004"]["item"] == {"en": "Wireless Earbuds Pro", "zh": "无线降噪耳机 Pro"}
    )
    assert (
        orders["100002"]["item"]["zh"] == "智能手表 S3" and orders["100003"]["item"]["en"] == "Bluetooth Speaker Mini"
    )


def test_catalogue(pack) -> None:  # type: ignore[no-untyped-def]
    assert len(pack.catalogue) >= 12
    skus = {p["sku"] for p in pack.catalogue}
    assert {o["sku"] for o in pack.orders} <= skus
    for product in pack.catalogue:
        assert product["price"] > 0 and product["stock"] >= 0
        assert set(product["name"]) == {"en", "zh"} and set(product["specs"]) == {"en", "zh"}


def test_knowledge(pack) -> None:  # type: ignore[no-untyped-def]
    by_language = {lang: {d.id for d in pack.documents if d.language == lang} for lang in ("zh", "en")}
    assert len(by_language["en"]) >= 25 and by_language["en"] == by_language["zh"]
    needed = {"shipping-times", "returns-policy", "quality-returns", "payment-methods", "invoices", "warranty",
              "password-reset", "account-security", "membership-points"}  # fmt: skip
    assert needed <= by_language["en"]
    text = {d.id: d.body for d in pack.documents if d.language == "en"}
    assert "7 days" in text["returns-policy"] and "15 days" in text["quality-returns"]
    assert "1-year" in text["warranty"] or "one year" in text["warranty"].lower()


def test_flows_templates_and_tools_are_consistent(pack) -> None:  # type: ignore[no-untyped-def]
    from kefu.actions.tools import builtin_tool_names

    assert check_pack(pack, builtin_tool_names()) == []


def test_broken_pack_is_refused_with_the_file_named(tmp_path: Path) -> None:
    copy = tmp_path / "shop"
    shutil.copytree(BUNDLED / "ecommerce", copy)
    templates = copy / "templates" / "en.yaml"
    kept = [line for line in templates.read_text().splitlines() if not line.startswith("ask_order_id:")]
    templates.write_text("\n".join(kept))
    with pytest.raises(PackError, match=r"templates/en.yaml: missing template 'ask_order_id'"):
        load_pack(str(copy))


def test_unknown_intent_in_examples_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "shop"
    shutil.copytree(BUNDLED / "ecommerce", copy)
    examples = copy / "nlu" / "intents.zh.yaml"
    examples.write_text(examples.read_text() + '  weather:\n    - "今天天气"\n')
    with pytest.raises(PackError, match=r"intents.zh.yaml: intent 'weather' is not declared"):
        load_pack(str(copy))
