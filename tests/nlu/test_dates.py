from __future__ import annotations

from datetime import date

import pytest

from kefu.nlu.dates import DateFinder, add_months, nearest_month_day, weekday_in_week

TODAY = date(2026, 11, 25)  # a Wednesday


@pytest.fixture(scope="module")
def dates() -> DateFinder:
    return DateFinder()


@pytest.mark.parametrize(
    ("text", "value", "span"),
    [
        # Chinese, relative
        ("今天能发货吗", "2026-11-25", "今天"),
        ("昨天下的单", "2026-11-24", "昨天"),
        ("前天付的款", "2026-11-23", "前天"),
        ("大前天", "2026-11-22", "大前天"),
        ("明天能到吗", "2026-11-26", "明天"),
        ("后天", "2026-11-27", "后天"),
        ("大后天", "2026-11-28", "大后天"),
        ("上周五买的耳机", "2026-11-20", "上周五"),
        ("上个星期五", "2026-11-20", "上个星期五"),
        ("上礼拜天", "2026-11-22", "上礼拜天"),
        ("下周一要出差", "2026-11-30", "下周一"),
        ("下下周三", "2026-12-09", "下下周三"),
        ("这周五能到吗", "2026-11-27", "这周五"),
        ("周一发的货", "2026-11-23", "周一"),
        ("星期天在家", "2026-11-29", "星期天"),
        ("3天前买的", "2026-11-22", "3天前"),
        ("三天以前", "2026-11-22", "三天以前"),
        ("两周后", "2026-12-09", "两周后"),
        ("一个月前的单", "2026-10-25", "一个月前"),
        ("三个月后", "2027-02-25", "三个月后"),
        # Chinese, absolute
        ("11月20日下的单", "2026-11-20", "11月20日"),
        ("11月20号", "2026-11-20", "11月20号"),
        ("11月20发的货", "2026-11-20", "11月20"),
        ("十一月二十日", "2026-11-20", "十一月二十日"),
        ("十二月三号", "2026-12-03", "十二月三号"),
        ("1月5日", "2027-01-05", "1月5日"),  # nearest: next January, not last
        ("2026年11月20日", "2026-11-20", "2026年11月20日"),
        ("2025年3月1日", "2025-03-01", "2025年3月1日"),
        ("二零二六年十一月二十日", "2026-11-20", "二零二六年十一月二十日"),
        ("本月3号", "2026-11-03", "本月3号"),
        ("下个月5号", "2026-12-05", "下个月5号"),
        ("上个月28号", "2026-10-28", "上个月28号"),
        # ISO and other separators
        ("2026-11-20", "2026-11-20", "2026-11-20"),
        ("on 2026/11/20", "2026-11-20", "2026/11/20"),
        ("2026.11.20", "2026-11-20", "2026.11.20"),
        # English, relative
        ("yesterday", "2026-11-24", "yesterday"),
        ("ordered it Yesterday", "2026-11-24", "Yesterday"),
        ("today", "2026-11-25", "today"),
        ("tomorrow", "2026-11-26", "tomorrow"),
        ("the day before yesterday", "2026-11-23", "the day before yesterday"),
        ("day after tomorrow", "2026-11-27", "day after tomorrow"),
        ("last Friday", "2026-11-20", "last Friday"),
        ("next Monday", "2026-11-30", "next Monday"),
        ("this Friday", "2026-11-27", "this Friday"),
        ("since monday", "2026-11-23", "monday"),
        ("on Fri", "2026-11-27", "Fri"),
        ("coming Tuesday", "2026-12-01", "coming Tuesday"),
        ("this past Sunday", "2026-11-22", "this past Sunday"),
        ("3 days ago", "2026-11-22", "3 days ago"),
        ("a week ago", "2026-11-18", "a week ago"),
        ("two weeks ago", "2026-11-11", "two weeks ago"),
        ("a month ago", "2026-10-25", "a month ago"),
        ("2 weeks from now", "2026-12-09", "2 weeks from now"),
        # English, absolute
        ("Nov 20", "2026-11-20", "Nov 20"),
        ("Nov. 20th", "2026-11-20", "Nov. 20th"),
        ("November 20, 2025", "2025-11-20", "November 20, 2025"),
        ("20 November", "2026-11-20", "20 November"),
        ("the 3rd of December", "2026-12-03", "the 3rd of December"),
        ("Jan 5", "2027-01-05", "Jan 5"),
        ("delivered on the 3rd", "2026-12-03", "the 3rd"),
        ("by the 20th", "2026-11-20", "the 20th"),
    ],
)
def test_dates(dates: DateFinder, text: str, value: str, span: str) -> None:
    found = list(dates.find(text, TODAY))
    assert [(v, text[s:e]) for s, e, v in found][:1] == [(value, span)]


@pytest.mark.parametrize(
    "text",
    [
        "订单100001",
        "order 20261120",  # digits alone are an order number, not a date
        "单号 2026112012",
        "3月份的活动",
        "每周一发货",  # every Monday is not a date
        "一周一次",
        "I sat down",
        "the sun is out",
        "wed to my phone",
        "which of the 2 may be",
        "version 2.11.20",
        "2026/11/31",  # no such day
        "13月1日",
        "Pad 11",
        "iPhone 15",
    ],
)
def test_no_date(dates: DateFinder, text: str) -> None:
    assert list(dates.find(text, TODAY)) == []


def test_today_defaults_are_the_reference() -> None:
    finder = DateFinder()
    assert [v for _, _, v in finder.find("昨天", date(2026, 1, 1))] == ["2025-12-31"]
    assert [v for _, _, v in finder.find("yesterday", date(2024, 3, 1))] == ["2024-02-29"]


def test_helpers() -> None:
    assert weekday_in_week(TODAY, 4, -1) == date(2026, 11, 20)
    assert weekday_in_week(TODAY, 0, 1) == date(2026, 11, 30)
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2026, 11, 25), -12) == date(2025, 11, 25)
    assert nearest_month_day(TODAY, 31) == date(2026, 10, 31)  # November has none; October is nearer
    assert nearest_month_day(TODAY, 20, 11) == date(2026, 11, 20)
    assert nearest_month_day(TODAY, 30, 2) is None
