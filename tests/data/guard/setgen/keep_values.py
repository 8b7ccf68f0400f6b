"""Non-PII numbers that must survive redaction verbatim: order numbers, prices, dates and times."""

from datetime import date, timedelta
from random import Random

from .common import digits, maybe_full_width, weighted

DEMO_ORDERS = ("100001", "100002", "100003", "100004")


def order(rng: Random, lang: str, variant: str | None) -> str:
    if variant is None:
        variant = weighted(rng, [("demo", 32), ("long", 58), ("pdd" if lang == "zh" else "amazon", 10)])
    if variant == "demo":
        return rng.choice(DEMO_ORDERS)
    if variant == "pdd":  # Pinduoduo: yymmdd-15 digits
        return f"{rng.randrange(23, 26)}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}-{digits(rng, 15)}"
    if variant == "amazon":
        return f"{rng.randrange(100, 999)}-{digits(rng, 7)}-{digits(rng, 7)}"
    # Platform order numbers: 12-19 random digits, some of which pass Luhn or look like ids, as in real traffic.
    number = digits(rng, rng.randrange(12, 20), first_nonzero=True)
    return maybe_full_width(rng, lang, number, zh_rate=0.05)


def amount(rng: Random) -> int:
    return round(10 ** rng.uniform(0.5, 4.3))


def price(rng: Random, lang: str, variant: str | None) -> str:
    whole = amount(rng)
    cents = f"{whole}.{rng.choice(('00', '99', '50', '90', str(rng.randrange(10, 100))))}"
    if variant == "bare":
        return str(whole)
    if variant == "trap":  # four digits that start like a card number, written as money
        value = rng.choice((6222, 6228, 6217, 4392, 5187, 6225, 6200 + rng.randrange(100)))
        if lang == "zh":
            return rng.choice((f"{value} 元", f"{value}元", f"¥{value}", f"{value}块", f"{value} 块钱"))
        return rng.choice((f"${value}", f"{value} RMB", f"¥{value}", f"US$ {value}", f"{value} yuan"))
    if lang == "zh":
        options = [
            (f"¥{whole:,}.00", 10),
            (f"￥{whole}", 10),
            (f"{whole}元", 25),
            (f"{whole} 元", 8),
            (f"{whole}块", 10),
            (f"{cents}元", 10),
            (f"RMB {whole}", 5),
            (f"{whole}块钱", 6),
            (f"¥{cents}", 8),
            (f"${cents}", 4),
            (f"{whole}.0元", 4),
        ]
        return maybe_full_width(rng, lang, weighted(rng, options), zh_rate=0.04)
    options = [
        (f"${cents}", 35),
        (f"${whole}", 15),
        (f"US${whole}", 5),
        (f"USD {cents}", 5),
        (f"RMB {whole}", 6),
        (f"¥{whole:,}", 8),
        (f"€{cents}", 6),
        (f"£{cents}", 6),
        (f"HK${whole}", 4),
        (f"{whole} yuan", 5),
        (f"CNY {whole:,}.00", 5),
    ]
    return weighted(rng, options)


def some_day(rng: Random) -> date:
    return date(2023, 1, 1) + timedelta(days=rng.randrange(365 * 3))


def date_text(rng: Random, lang: str, variant: str | None) -> str:
    day = some_day(rng)
    iso = f"{day:%Y-%m-%d}"
    if lang == "zh":
        options = [
            (iso, 20),
            (f"{day.year}/{day.month}/{day.day}", 12),
            (f"{day.month}月{day.day}日", 22),
            (f"{day.month}月{day.day}号", 10),
            (f"{day.year}年{day.month}月{day.day}日", 20),
            (f"{day:%Y.%m.%d}", 6),
            (f"{day:%Y%m%d}", 4),
            (f"{day.month}.{day.day}", 6),
        ]
        return weighted(rng, options)
    options = [
        (iso, 20),
        (f"{day:%d/%m/%Y}", 15),
        (f"{day:%m/%d/%Y}", 15),
        (f"{day:%B} {day.day}, {day.year}", 15),
        (f"{day.day} {day:%b} {day.year}", 12),
        (f"{day:%b} {day.day}", 12),
        (f"{day.month}/{day.day}", 8),
        (f"{day:%d.%m.%Y}", 3),
    ]
    return weighted(rng, options)


def time_text(rng: Random, lang: str, variant: str | None) -> str:
    hour, minute = rng.randrange(7, 23), rng.choice((0, 5, 10, 15, 20, 30, 45, rng.randrange(60)))
    half_day, seconds = hour % 12 or 12, rng.randrange(60)
    if lang == "zh":
        options = [
            (f"{hour}:{minute:02d}", 40),
            (f"{'下午' if hour >= 12 else '上午'}{half_day}点", 20),
            (f"晚上{rng.randrange(7, 12)}点半", 10),
            (f"{hour:02d}:{minute:02d}:{seconds:02d}", 15),
            (f"{hour}点{minute}分", 15),
        ]
        return weighted(rng, options)
    suffix = "pm" if hour >= 12 else "am"
    options = [
        (f"{hour}:{minute:02d}", 35),
        (f"{half_day}:{minute:02d} {suffix}", 25),
        (f"{half_day}{suffix}", 15),
        (f"{half_day}:{minute:02d} {suffix.upper()}", 15),
        (f"{hour:02d}:{minute:02d}:{seconds:02d}", 10),
    ]
    return weighted(rng, options)
