from __future__ import annotations

import pytest

from kefu.nlu.language import detect, reply_locale


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("你好", "zh"),
        ("hello", "en"),
        ("我的 AirPods 坏了", "zh"),
        ("订单status怎么查", "zh"),
        ("我想 return this item 可以吗", "mixed"),
        ("please 帮我 check the order status now", "en"),
        ("100001", "en"),
    ],
)
def test_detect(text: str, expected: str) -> None:
    assert detect(text) == expected


def test_reply_locale_uses_the_hint_for_wordless_text() -> None:
    assert reply_locale("100001", "zh") == "zh"
    assert reply_locale("100001", "en") == "en"
    assert reply_locale("hi", "zh") == "en"
    assert reply_locale("请 check 一下", "en") == "zh"
