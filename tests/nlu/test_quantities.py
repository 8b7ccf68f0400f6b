from __future__ import annotations

import pytest

from kefu.nlu.quantities import QuantityFinder


@pytest.fixture(scope="module")
def quantities() -> QuantityFinder:
    return QuantityFinder()


@pytest.mark.parametrize(
    ("text", "value", "span"),
    [
        ("买3件", "3", "3件"),
        ("两个", "2", "两个"),
        ("我要两个充电器", "2", "两个"),
        ("来十二台", "12", "十二台"),
        ("一副耳机不够，再来两副", "2", "两副"),
        ("S3两个", "2", "两个"),
        ("买一个也包邮吗", "1", "一个"),
        ("少发了一件", "1", "一件"),
        ("数量5", "5", "数量5"),
        ("数量：3", "3", "数量：3"),
        ("数量改为两", "2", "数量改为两"),
        ("x2", "2", "x2"),
        ("earbuds x2.", "2", "x2"),
        ("earbuds x 3", "3", "x 3"),
        ("×4", "4", "×4"),
        ("2x earbuds", "2", "2x"),
        ("2 pcs", "2", "2 pcs"),
        ("5 pieces", "5", "5 pieces"),
        ("3 units", "3", "3 units"),
        ("two items", "2", "two items"),
        ("one item", "1", "one item"),
        ("two pairs of earbuds", "2", "two pairs"),
        ("three of them", "3", "three of them"),
        ("2 of these", "2", "2 of these"),
        ("qty 4", "4", "qty 4"),
        ("Quantity: 10", "10", "Quantity: 10"),
    ],
)
def test_quantities(quantities: QuantityFinder, text: str, value: str, span: str) -> None:
    found = list(quantities.find(text))
    assert [(v, text[s:e]) for s, e, v in found] == [(value, span)]


@pytest.mark.parametrize(
    "text",
    [
        "我有一个问题",  # 一个 as an article
        "这个怎么用",
        "第2件半价",
        "几个",
        "one of them is broken",  # picks one out, does not count
        "solve x^2 + 3x = 10",
        "解方程x²+3x=10",
        "model X2000",
        "zoom x2.5",
        "the box is damaged",
        "100001",
    ],
)
def test_no_quantity(quantities: QuantityFinder, text: str) -> None:
    assert list(quantities.find(text)) == []


@pytest.mark.parametrize(
    ("text", "product_at", "expected"),
    [
        ("I want 2 chargers", 9, ("2", 7, 8)),
        ("three earbuds", 6, ("3", 0, 5)),
        ("the chargers", 4, None),
        ("order 100001 earbuds", 13, None),
    ],
)
def test_count_before_a_product(
    quantities: QuantityFinder, text: str, product_at: int, expected: tuple[str, int, int] | None
) -> None:
    assert quantities.before(text, product_at) == expected
