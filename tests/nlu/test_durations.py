from __future__ import annotations

from decimal import Decimal

import pytest

from kefu.nlu.durations import DurationFinder, to_iso


@pytest.fixture(scope="module")
def durations() -> DurationFinder:
    return DurationFinder()


@pytest.mark.parametrize(
    ("text", "value", "span"),
    [
        ("24小时内发货吗", "P1D", "24小时内"),
        ("48小时之内", "P2D", "48小时之内"),
        ("5小时", "PT5H", "5小时"),
        ("两个小时", "PT2H", "两个小时"),
        ("一个半小时", "PT1H30M", "一个半小时"),
        ("半小时", "PT30M", "半小时"),
        ("十分钟", "PT10M", "十分钟"),
        ("3天内", "P3D", "3天内"),
        ("三天", "P3D", "三天"),
        ("3日内", "P3D", "3日内"),
        ("半天", "PT12H", "半天"),
        ("一天半", "PT36H", "一天半"),
        ("两周", "P14D", "两周"),
        ("一个星期", "P7D", "一个星期"),
        ("两个礼拜", "P14D", "两个礼拜"),
        ("3-5个工作日", "P5D", "3-5个工作日"),
        ("七天无理由", "P7D", "七天"),
        ("智能手表S3七天内能退吗", "P7D", "七天内"),
        ("三个月", "P3M", "三个月"),
        ("半个月", "P15D", "半个月"),
        ("一年", "P1Y", "一年"),
        ("一年半", "P1Y6M", "一年半"),
        ("半年", "P6M", "半年"),
        ("within 48 hours", "P2D", "48 hours"),
        ("in 2 weeks", "P14D", "2 weeks"),
        ("7 days", "P7D", "7 days"),
        ("36 hours", "PT36H", "36 hours"),
        ("24h", "P1D", "24h"),
        ("1.5 hours", "PT1H30M", "1.5 hours"),
        ("90 minutes", "PT1H30M", "90 minutes"),
        ("ten minutes", "PT10M", "ten minutes"),
        ("twenty-four hours", "P1D", "twenty-four hours"),
        ("half an hour", "PT30M", "half an hour"),
        ("within a day", "P1D", "a day"),
        ("it takes an hour and a half", "PT1H30M", "an hour and a half"),
        ("3-5 business days", "P5D", "3-5 business days"),
        ("a 7-day return", "P7D", "7-day"),
        ("for 3 months", "P3M", "3 months"),
        ("2 years warranty", "P2Y", "2 years"),
    ],
)
def test_durations(durations: DurationFinder, text: str, value: str, span: str) -> None:
    found = list(durations.find(text))
    assert [(v, text[s:e]) for s, e, v in found] == [(value, span)]


@pytest.mark.parametrize(
    "text",
    [
        "3月份",  # March
        "3日发货",  # the 3rd
        "第3天",
        "2026年",
        "twice a day",
        "have a nice day",
        "he is 5 years old",
        "order 100001",
        "几天能到",
        "how long does it take",
        "h1 headphones",
    ],
)
def test_no_duration(durations: DurationFinder, text: str) -> None:
    assert list(durations.find(text)) == []


def test_two_durations(durations: DurationFinder) -> None:
    assert [v for _, _, v in durations.find("说好的三天到 现在一周了")] == ["P3D", "P7D"]


@pytest.mark.parametrize(
    ("amount", "unit", "iso"),
    [
        ("24", "hour", "P1D"),
        ("25", "hour", "PT25H"),
        ("0.5", "hour", "PT30M"),
        ("2", "week", "P14D"),
        ("1.5", "month", "P1M15D"),
        ("0.5", "year", "P6M"),
        ("0", "day", None),
        ("5000", "year", None),
    ],
)
def test_to_iso(amount: str, unit: str, iso: str | None) -> None:
    assert to_iso(Decimal(amount), unit) == iso
