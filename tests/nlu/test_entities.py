from __future__ import annotations

import itertools
import re
from datetime import date

import pytest

from kefu.nlu.entities import EntityExtractor, KeywordSpec, NameSpec, PatternSpec, build_extractor
from kefu.packs.loader import load_pack

TODAY = date(2026, 11, 25)  # a Wednesday


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
        # phones: +86, spaces and dashes; never inside a longer digit run or an order number
        ("手机号 +86 138-1234-5678", [("phone", "13812345678")]),
        ("86 13912345678", [("phone", "13912345678")]),
        ("订单 100001 电话 13812345678", [("order_id", "100001"), ("phone", "13812345678")]),
        ("卡号 6222138123456789012", []),
        ("order 100001", [("order_id", "100001")]),
        ("12345678901", []),
        # money, dates, durations and quantities through the whole extractor
        ("上周五买的耳机，退款199元还没到账", [("date", "2026-11-20"), ("money", "199.00 CNY")]),
        ("order 100001 on Nov 20, paid $25", [("order_id", "100001"), ("date", "2026-11-20"), ("money", "25.00 USD")]),
        ("我想买两个智能手表，24小时内能发货吗", [("quantity", "2"), ("product", "SW-S3-01"), ("duration", "P1D")]),
        ("I want 2 wireles earbuds", [("quantity", "2"), ("product", "EB-PRO-01")]),
        ("three of them arrived broken", [("quantity", "3"), ("quality_issue", "yes")]),
        ("x2 smartwach", [("quantity", "2"), ("product", "SW-S3-01")]),
        (
            "三千五百元的平板电脑下周一能到吗",
            [("money", "3500.00 CNY"), ("product", "TB-PAD11-01"), ("date", "2026-11-30")],
        ),
        ("USD 25.00 within 48 hours please", [("money", "25.00 USD"), ("duration", "P2D")]),
        ("email me at li.lei@example.com", [("email", "li.lei@example.com")]),
        # negatives
        ("iPhone 15 case", []),
        ("I have a problem with my account", []),
    ],
)
def test_entities(extract, text: str, expected: list[tuple[str, str]]) -> None:  # type: ignore[no-untyped-def]
    found = [(e.type, e.value) for e in extract(text, today=TODAY)]
    for item in expected:
        assert item in found, found
    if not expected:
        assert found == []


def test_offsets_point_at_the_text(extract) -> None:  # type: ignore[no-untyped-def]
    text = "退货 100004，电话 13812345678"
    for entity in extract(text):
        assert text[entity.start : entity.end] == entity.text


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("13812345678", "phone"),  # a phone number is no quantity, money or order id
        ("100001", "order_id"),  # an order number is no date or quantity
        ("2026-11-20", "date"),
        ("¥199", "money"),
        ("两个小时", "duration"),  # hours, not two items
        ("3天内", "duration"),
        ("两百元", "money"),  # not two of something
    ],
)
def test_more_specific_wins(extract, text: str, kind: str) -> None:  # type: ignore[no-untyped-def]
    assert [e.type for e in extract(text, today=TODAY)] == [kind]


@pytest.mark.parametrize(
    ("text", "banned"),
    [
        ("iPhone 15", "money"),
        ("订单号 20261120", "date"),
        ("order 100001", "date"),
        ("电话13812345678", "quantity"),
        ("call +44 20 7946 0958", "quantity"),
        ("我有一个问题", "quantity"),
        ("how long do refunds take?", "duration"),
        ("the pro is a problem", "product"),
        ("just in case", "product"),
        ("I was charged twice", "product"),
        ("我的智能手机坏了", "product"),
        ("15W fast", "money"),
    ],
)
def test_false_positives(extract, text: str, banned: str) -> None:  # type: ignore[no-untyped-def]
    assert banned not in [e.type for e in extract(text, today=TODAY)]


def test_relative_dates_default_to_today(extract) -> None:  # type: ignore[no-untyped-def]
    (entity,) = extract("昨天")
    assert entity.value == date.fromordinal(date.today().toordinal() - 1).isoformat()


def test_every_offset_points_at_the_text(extract) -> None:  # type: ignore[no-untyped-def]
    text = "上周五 order 100001 paid ¥199 for 2 wireles earbuds, call 138 1234 5678 within 48 hours x2 无线降躁耳机"
    found = extract(text, today=TODAY)
    assert {e.type for e in found} >= {"date", "order_id", "money", "quantity", "product", "phone", "duration"}
    spans = [(e.start, e.end) for e in found]
    assert spans == sorted(spans)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))
    for entity in found:
        assert text[entity.start : entity.end] == entity.text


def test_a_keyword_inside_another_entity_does_not_hide_the_flag() -> None:
    extractor = EntityExtractor(
        patterns=[PatternSpec("code", re.compile(r"AB\d+"))],
        keywords=[KeywordSpec("flag", "yes", ("ab1", "broken"))],
        names=[NameSpec("product", "P1", ("gizmo",))],
    )
    found = [(e.type, e.value) for e in extractor.extract("AB12 gizmo is broken", today=TODAY)]
    assert found == [("code", "AB12"), ("product", "P1"), ("flag", "yes")]
