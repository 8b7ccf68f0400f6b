from __future__ import annotations

from decimal import Decimal

import pytest

from kefu.nlu.numerals import parse_int, parse_number


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("5", "5"),
        ("1,299", "1299"),
        ("199.5", "199.5"),
        ("1.2万", "12000"),
        ("3千", "3000"),
        ("一", "1"),
        ("两", "2"),
        ("十", "10"),
        ("十二", "12"),
        ("二十", "20"),
        ("二十五", "25"),
        ("一百零五", "105"),
        ("两百", "200"),
        ("三千五百", "3500"),
        ("三千五", "3500"),  # colloquial: the trailing digit counts in the next lower unit
        ("两百五", "250"),
        ("一万二", "12000"),
        ("一万零五百", "10500"),
        ("一亿两千万", "120000000"),
        ("二零二六", "2026"),  # digit by digit, as years are read
        ("三点五", "3.5"),
        ("叁佰", "300"),
        ("半", "0.5"),
        ("three", "3"),
        ("twelve", "12"),
        ("twenty-four", "24"),
        ("forty two", "42"),
        ("a dozen", "12"),
        ("a couple of", "2"),
    ],
)
def test_parse_number(text: str, value: str) -> None:
    assert parse_number(text) == Decimal(value)


@pytest.mark.parametrize("text", ["", "abc", "几", "十x", "twenty-ten", "1.2.3"])
def test_not_a_number(text: str) -> None:
    assert parse_number(text) is None


def test_parse_int_only_whole_numbers() -> None:
    assert parse_int("三") == 3
    assert parse_int("2.5") is None
    assert parse_int("半") is None
