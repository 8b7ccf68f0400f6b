from __future__ import annotations

import pytest

from kefu.nlu.fuzzy_names import NameMatcher
from kefu.nlu.specs import NameSpec
from kefu.packs.loader import load_pack


@pytest.fixture(scope="module")
def names() -> NameMatcher:
    return NameMatcher(load_pack("ecommerce").product_names())


def skus(matcher: NameMatcher, text: str) -> list[tuple[str, str]]:
    return [(value, text[s:e]) for s, e, (_, value) in matcher.find(text)]


@pytest.mark.parametrize(
    ("text", "sku", "span"),
    [
        # exact, as before
        ("how much are the Wireless Earbuds Pro", "EB-PRO-01", "Wireless Earbuds Pro"),
        ("智能手表S3防水吗", "SW-S3-01", "智能手表S3"),
        ("usb-c cable", "CB-C2C-01", "usb-c cable"),
        ("65W充电器", "CH-65W-01", "65W充电器"),
        # English typos, plurals, partial names
        ("wireles earbud", "EB-PRO-01", "wireles earbud"),
        ("earbuds pro", "EB-PRO-01", "earbuds pro"),
        ("the pro earbud", "EB-PRO-01", "pro earbud"),
        ("my earbud is broken", "EB-PRO-01", "earbud"),
        ("wireles charger", "WC-15W-01", "wireles charger"),  # not the "charger" inside it
        ("smartwach", "SW-S3-01", "smartwach"),
        ("gimbel", "GB-G3-01", "gimbel"),
        ("headphone h1", "HP-H1-01", "headphone h1"),
        ("any eta on my h1 headphones", "HP-H1-01", "h1 headphones"),
        ("bluetooth speakr mini", "SPK-MINI-01", "bluetooth speakr mini"),
        ("securty camera", "CAM-C2-01", "securty camera"),
        ("i need the braided cable", "CB-C2C-01", "braided cable"),
        ("desk lamp l2", "LMP-L2-01", "desk lamp l2"),
        ("the Foldable Phone Stnd", "PS-FOLD-01", "Foldable Phone Stnd"),
        ("invoice for the security cameras", "CAM-C2-01", "security cameras"),
        ("two speaker minis", "SPK-MINI-01", "speaker minis"),
        ("Stuido Headphones", "HP-H1-01", "Stuido Headphones"),
        # Chinese near-misses of 4+ character names
        ("无线降躁耳机多少钱", "EB-PRO-01", "无线降躁耳机"),  # one wrong character
        ("智能表防水吗", "SW-S3-01", "智能表"),  # one missing character
        ("能智手表", "SW-S3-01", "能智手表"),  # two characters swapped
        ("买个手机架", "PS-FOLD-01", "手机架"),  # 手机支架 less a character
        ("家用监控摄象头", "CAM-C2-01", "家用监控摄象头"),
        ("键盘保户套", "TB-KB11-01", "键盘保户套"),
        ("运动像机", "CAM-A4-01", "运动像机"),
    ],
)
def test_finds(names: NameMatcher, text: str, sku: str, span: str) -> None:
    assert (sku, span) in skus(names, text)


@pytest.mark.parametrize(
    "text",
    [
        "I have a problem",  # no "pro" in "problem"
        "in case it breaks",  # "case" alone is never a product
        "I was charged twice",  # "charged" is not "charger"
        "it won't charge",
        "the table is wobbly",
        "my new sneakers",
        "what a game changer",
        "does it support wireless charging",  # a feature, not the charging pad
        "has noise cancelling",
        "usb c port",
        "smart home",
        "wireless",
        "我的智能手机坏了",  # a phone, not the smart watch
        "手机支付不了",  # paying by phone, not a phone stand
        "包装里无耳机",  # "no earphones", not 无线耳机 less a character
        "头戴式耳麦",  # a different end character is not a typo
        "运动鞋",
        "智能",
    ],
)
def test_no_product(names: NameMatcher, text: str) -> None:
    assert skus(names, text) == []


def test_ambiguous_parts_are_left_out() -> None:
    matcher = NameMatcher(
        [
            NameSpec("product", "A", ("Smart Watch Red",)),
            NameSpec("product", "B", ("Smart Watch Blue",)),
        ]
    )
    assert skus(matcher, "smart watch") == []
    assert skus(matcher, "smart watch bleu") == [("B", "smart watch bleu")]


def test_wired_is_not_wireless(names: NameMatcher) -> None:
    # 有线充电器 is one character away from 无线充电器 (the charging pad) but starts differently.
    assert skus(names, "有线充电器") == [("CH-65W-01", "充电器")]


def test_same_product_names_that_touch_are_one_span(names: NameMatcher) -> None:
    assert skus(names, "智能手表 S3") == [("SW-S3-01", "智能手表 S3")]
    assert skus(names, "watch and watch") == [("SW-S3-01", "watch"), ("SW-S3-01", "watch")]


def test_empty_catalogue() -> None:
    assert NameMatcher([]).find("wireless earbuds 耳机") == []
