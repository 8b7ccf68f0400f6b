from __future__ import annotations

import pytest

from kefu.nlu.entities import build_extractor
from kefu.packs.loader import load_pack


@pytest.fixture(scope="module")
def extract():  # type: ignore[no-untyped-def]
    pack = load_pack("ecommerce")
    return build_extractor(pack.entities, pack.product_names()).extract


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("帮我看看订单 100001 现在到哪儿了", [("order_id", "100001")]),
        ("order #100002 please", [("order_id", "100002")]),
        ("订单号是100003，谢谢", [("order_id", "100003")]),
        ("my phone is 138 1234 5678", [("phone", "13812345678")]),
        ("电话+86-139-1234-5678", [("phone", "13912345678")]),
        ("call me on +44 20 7946 0958", [("phone", "+442079460958")]),
        ("email Li.Lei@Example.com", [("email", "li.lei@example.com")]),
        ("tracking SF1234567890 and order 100001", [("order_id", "100001")]),
        ("1234567 is not an order", []),
        ("how much are the Wireless Earbuds Pro", [("product", "EB-PRO-01")]),
        ("智能手表S3防水吗", [("product", "SW-S3-01")]),
        ("the left earbud stopped working", [("quality_issue", "yes")]),
        ("耳机坏了", [("quality_issue", "yes")]),
    ],
)
def test_entities(extract, text: str, expected: list[tuple[str, str]]) -> None:  # type: ignore[no-untyped-def]
    found = [(e.type, e.value) for e in extract(text)]
    for item in expected:
        assert item in found, found
    if not expected:
        assert found == []


def test_offsets_point_at_the_text(extract) -> None:  # type: ignore[no-untyped-def]
    text = "退货 100004，电话 13812345678"
    for entity in extract(text):
        assert text[entity.start : entity.end] == entity.text
