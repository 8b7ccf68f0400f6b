from __future__ import annotations

import pytest

from kefu.nlu.money import MoneyFinder


@pytest.fixture(scope="module")
def money() -> MoneyFinder:
    return MoneyFinder()


@pytest.mark.parametrize(
    ("text", "value", "span"),
    [
        ("¥199", "199.00 CNY", "¥199"),
        ("￥1,299.00", "1299.00 CNY", "￥1,299.00"),
        ("价格是199元吗", "199.00 CNY", "199元"),
        ("退我 199.5 元", "199.50 CNY", "199.5 元"),
        ("RMB 200", "200.00 CNY", "RMB 200"),
        ("rmb200", "200.00 CNY", "rmb200"),
        ("CNY 88", "88.00 CNY", "CNY 88"),
        ("200块", "200.00 CNY", "200块"),
        ("才五十块钱", "50.00 CNY", "五十块钱"),
        ("200块的耳机", "200.00 CNY", "200块"),
        ("3块5", "3.50 CNY", "3块5"),
        ("两块五毛", "2.50 CNY", "两块五毛"),
        ("两百元", "200.00 CNY", "两百元"),
        ("三千五百元", "3500.00 CNY", "三千五百元"),
        ("1.2万元", "12000.00 CNY", "1.2万元"),
        ("100人民币", "100.00 CNY", "100人民币"),
        ("under 200 yuan", "200.00 CNY", "200 yuan"),
        ("$25", "25.00 USD", "$25"),
        ("$25.5 please", "25.50 USD", "$25.5"),
        ("25 dollars", "25.00 USD", "25 dollars"),
        ("25 bucks", "25.00 USD", "25 bucks"),
        ("USD 25.00", "25.00 USD", "USD 25.00"),
        ("US$30", "30.00 USD", "US$30"),
        ("30美元", "30.00 USD", "30美元"),
        ("退我30刀", "30.00 USD", "30刀"),
        ("€10", "10.00 EUR", "€10"),
        ("10 euros", "10.00 EUR", "10 euros"),
        ("20欧元", "20.00 EUR", "20欧元"),
        ("£5", "5.00 GBP", "£5"),
        ("HK$100", "100.00 HKD", "HK$100"),
        ("500日元", "500.00 JPY", "500日元"),
    ],
)
def test_money(money: MoneyFinder, text: str, value: str, span: str) -> None:
    found = list(money.find(text))
    assert [(v, text[s:e]) for s, e, v in found] == [(value, span)]


@pytest.mark.parametrize(
    "text",
    [
        "iPhone 15",
        "15W充电器",
        "充电宝 20000mAh",
        "订单100001",
        "两块手表",  # 块 as a measure word
        "元旦快到了",
        "订单100001元旦前能到吗",
        "电子元件坏了",
        "打五折 50%",
        "the $ sign",
        "Pad 11 Keyboard Cover",
        "几块钱",
    ],
)
def test_no_money(money: MoneyFinder, text: str) -> None:
    assert list(money.find(text)) == []


def test_two_amounts(money: MoneyFinder) -> None:
    found = sorted(money.find("扣了两次，每次899元，共¥1798"))
    assert [v for _, _, v in found] == ["899.00 CNY", "1798.00 CNY"]
