"""Random but realistic PII values: PRC resident ids, phones, bank cards, emails, IPs, addresses, names."""

import ipaddress
from datetime import date, timedelta
from random import Random

from .checks import id_card_check_char, luhn_check_digit
from .common import digits, grouped, maybe_full_width, weighted

# Real county-level codes (GB/T 2260) from many provinces, so region prefixes look like real ones.
ID_REGIONS = (
    "110101", "110105", "110108", "120101", "120104", "130102", "130104", "140105", "150102", "210102",
    "210202", "220102", "230103", "310101", "310104", "310115", "320102", "320505", "330106", "330203",
    "340104", "350203", "350102", "360102", "370202", "370102", "410105", "420106", "430104", "440106",
    "440305", "440304", "441900", "450103", "460105", "500103", "510107", "520102", "530102", "610113",
    "620102", "640104", "650102",
)  # fmt: skip


def id_card(rng: Random, lang: str, variant: str | None) -> str:
    force_x = variant == "x" or rng.random() < 0.12
    while True:
        birth = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 56))
        body = f"{rng.choice(ID_REGIONS)}{birth:%Y%m%d}{rng.randrange(1, 1000):03d}"
        check = id_card_check_char(body)
        if check == "X" or not force_x:
            break
    number = body + (check.lower() if check == "X" and rng.random() < 0.3 else check)
    if rng.random() < 0.08:
        number = f"{number[:6]} {number[6:14]} {number[14:]}"
    return maybe_full_width(rng, lang, number, zh_rate=0.08)


MOBILE_PREFIXES = (
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "145", "147", "150", "151", "152",
    "153", "155", "156", "157", "158", "159", "166", "173", "175", "176", "177", "178", "180", "181", "182",
    "183", "184", "185", "186", "187", "188", "189", "191", "193", "195", "198", "199",
)  # fmt: skip
AREA_CODES = (
    "010", "021", "020", "022", "023", "024", "025", "027", "028", "029", "0755", "0571", "0512", "0532",
    "0731", "0592", "0871", "0451", "0769", "0574",
)  # fmt: skip


def cn_mobile(rng: Random, lang: str) -> str:
    number = rng.choice(MOBILE_PREFIXES) + digits(rng, 8)
    spaced = grouped(number, (3, 4), " ")
    style = weighted(
        rng,
        [
            (number, 40),
            (spaced, 15),
            (grouped(number, (3, 4), "-"), 8),
            ("+86" + number, 8),
            ("+86 " + spaced, 10),
            ("+86 " + number, 6),
            ("0086 " + number, 3),
            ("0086" + number, 2),
            ("+86-" + grouped(number, (3, 4), "-"), 4),
            ("(+86) " + number, 4),
        ],
    )
    return maybe_full_width(rng, lang, style, zh_rate=0.07, en_rate=0.01)


def cn_landline(rng: Random, lang: str, with_extension: bool) -> str:
    area = rng.choice(AREA_CODES)
    local = str(rng.randrange(2, 9)) + digits(rng, 7)
    halves = f"{local[:4]} {local[4:]}"
    number = weighted(
        rng,
        [
            (f"{area}-{local}", 30),
            (f"({area}) {local}", 8),
            (f"({area}) {halves}", 10),
            (f"{area}-{halves}", 10),
            (f"{area} {halves}", 8),
            (f"{area}{local}", 6),
            (f"+86 {area[1:]} {halves}", 8),
            (f"+86-{area[1:]}-{local}", 5),
        ],
    )
    if with_extension or rng.random() < 0.12:
        extension = digits(rng, rng.choice((3, 3, 4, 2)), first_nonzero=True)
        marks = (" 转 ", "转", " 转", "-") if lang == "zh" else (" ext. ", " ext ", " x", " ext.")
        number += rng.choice(marks) + extension
    return maybe_full_width(rng, lang, number, zh_rate=0.05)


def international(rng: Random) -> str:
    tail = f"01{rng.randrange(100):02d}"  # 555-0100..0199 is the range kept for fiction
    area = rng.choice(("415", "212", "646", "310", "206", "617", "312", "604", "416"))
    uk = f"{rng.randrange(1000):03d}"
    return weighted(
        rng,
        [
            (f"+1 {area} 555 {tail}", 8),
            (f"+1 ({area}) 555-{tail}", 6),
            (f"+1-{area}-555-{tail}", 5),
            (f"+44 20 7946 0{uk}", 6),
            (f"+44 7700 900{uk}", 6),
            (f"+81-3-{digits(rng, 4, True)}-{digits(rng, 4)}", 4),
            (f"+81 90-{digits(rng, 4, True)}-{digits(rng, 4)}", 4),
            (f"+852 {rng.choice('569')}{digits(rng, 3)} {digits(rng, 4)}", 8),
            (f"+852 2{digits(rng, 3)} {digits(rng, 4)}", 3),
            (f"+853 6{digits(rng, 3)} {digits(rng, 4)}", 2),
            (f"+886 9{digits(rng, 2)} {digits(rng, 3)} {digits(rng, 3)}", 5),
            (f"+65 {rng.choice('89')}{digits(rng, 3)} {digits(rng, 4)}", 5),
            (f"+61 4{digits(rng, 2)} {digits(rng, 3)} {digits(rng, 3)}", 3),
            (f"+61 2 9{digits(rng, 3)} {digits(rng, 4)}", 2),
            (f"+49 30 {digits(rng, 8, True)}", 3),
            (f"+33 6 {' '.join(digits(rng, 2) for _ in range(4))}", 3),
            (f"+82 10-{digits(rng, 4, True)}-{digits(rng, 4)}", 3),
            (f"+60 12-{digits(rng, 3, True)} {digits(rng, 4)}", 2),
        ],
    )


def us_domestic(rng: Random) -> str:
    area = rng.choice(("415", "212", "646", "310", "206", "617", "312", "512", "303"))
    tail = f"01{rng.randrange(100):02d}"
    return rng.choice((f"({area}) 555-{tail}", f"{area}-555-{tail}", f"{area}.555.{tail}", f"{area} 555 {tail}"))


def phone(rng: Random, lang: str, variant: str | None) -> str:
    if variant is None:
        shares = [("mobile", 70), ("landline", 20), ("intl", 10)] if lang == "zh" else []
        shares = shares or [("mobile", 30), ("landline", 10), ("intl", 45), ("us", 15)]
        variant = weighted(rng, shares)
    if variant in ("mobile", "plain"):
        number = rng.choice(MOBILE_PREFIXES) + digits(rng, 8)
        return maybe_full_width(rng, lang, number, 0.07) if variant == "plain" else cn_mobile(rng, lang)
    if variant in ("landline", "ext"):
        return cn_landline(rng, lang, with_extension=variant == "ext")
    if variant == "us":
        return us_domestic(rng)
    if variant == "uk":
        return f"07700 900{rng.randrange(1000):03d}"
    if variant == "intl":
        return international(rng)
    raise ValueError(f"unknown phone variant {variant}")


# (issuer identification number, card length): UnionPay debit/credit, Visa, Mastercard.
CARD_RANGES = {
    "unionpay": (
        ("622202", 19), ("621226", 19), ("622848", 19), ("621700", 19), ("622700", 19), ("621661", 19),
        ("622262", 19), ("623668", 19), ("622588", 16), ("621483", 16), ("625807", 16), ("622155", 16),
        ("620522", 18), ("628288", 16), ("621799", 19), ("622609", 16),
    ),
    "visa": (("427020", 16), ("438088", 16), ("414709", 16), ("4", 16), ("4", 16), ("4", 19)),
    "mastercard": (("51", 16), ("52", 16), ("53", 16), ("54", 16), ("55", 16), ("2221", 16), ("2720", 16)),
}  # fmt: skip


def bank_card(rng: Random, lang: str, variant: str | None) -> str:
    shares = [("unionpay", 70), ("visa", 15), ("mastercard", 15)]
    brand = variant or weighted(rng, shares if lang == "zh" else [("unionpay", 30), ("visa", 40), ("mastercard", 30)])
    prefix, length = rng.choice(CARD_RANGES[brand])
    payload = prefix + digits(rng, length - 1 - len(prefix))
    number = payload + luhn_check_digit(payload)
    typed = weighted(
        rng,
        [
            (number, 40),
            (grouped(number, (4,), " "), 36),
            (grouped(number, (4,), "-"), 8),
            (grouped(number, (6, 13), " "), 4 if length == 19 else 0),
            (grouped(number, (4,), "  "), 2),
            (grouped(number, (4, 4, 4, 4, 3), " "), 4 if length == 19 else 0),
        ],
    )
    return maybe_full_width(rng, lang, typed, zh_rate=0.06)


PINYIN_SURNAMES = ("zhang", "wang", "li", "liu", "chen", "yang", "huang", "zhao", "wu", "zhou", "xu", "sun", "lin")
PINYIN_GIVEN = ("wei", "fang", "na", "min", "jing", "lei", "yang", "jie", "tao", "xiaoming", "jianhua", "yuhan", "hao")
EN_LOCAL = ("emily", "james", "olivia", "liam", "sofia", "noah", "priya", "carlos", "aisha", "mei", "daniel", "grace")
EN_LAST = ("carter", "smith", "nguyen", "patel", "garcia", "oneil", "kowalski", "brown", "chen", "kim", "rossi")
ZH_DOMAINS = (
    "163.com",
    "126.com",
    "qq.com",
    "foxmail.com",
    "sina.com",
    "sohu.com",
    "139.com",
    "yeah.net",
    "aliyun.com",
)
EN_DOMAINS = ("gmail.com", "outlook.com", "hotmail.com", "yahoo.com", "icloud.com", "proton.me", "yahoo.co.uk")
ORG_DOMAINS = (
    "mail.huaxin-tech.com.cn", "cs.example.org", "stu.pku.edu.cn", "eng.ox.ac.uk", "corp.example.com",
    "hq.nanfang-trade.cn", "mail.tsinghua.edu.cn", "uni-heidelberg.de", "dept.example.co.jp", "team.example.io",
)  # fmt: skip


def email(rng: Random, lang: str, variant: str | None) -> str:
    if variant == "qq":
        return f"{digits(rng, rng.randrange(6, 11), first_nonzero=True)}@qq.com"
    surname, given = rng.choice(PINYIN_SURNAMES), rng.choice(PINYIN_GIVEN)
    first, last = rng.choice(EN_LOCAL), rng.choice(EN_LAST)
    year = str(rng.randrange(1975, 2006))
    local = weighted(
        rng,
        [
            (f"{surname}{given}{rng.randrange(1, 999)}", 14 if lang == "zh" else 4),
            (f"{surname}.{given}", 8),
            (f"{given}_{surname}{year[2:]}", 6),
            (f"{first}.{last}", 14 if lang == "en" else 4),
            (f"{first}.{last}+{rng.choice(('shop', 'orders', 'kefu', 'jd', 'amazon'))}", 8),
            (f"{first[0]}.{last}{rng.randrange(1, 99)}", 5),
            (f"{first}-{last}", 3),
            (f"{first}{year}", 4),
            (digits(rng, rng.randrange(6, 11), first_nonzero=True), 6 if lang == "zh" else 1),
            ("1" + rng.choice("3589") + digits(rng, 9), 3 if lang == "zh" else 0),  # phone number as mailbox
        ],
    )
    domain = weighted(
        rng,
        [
            (rng.choice(ZH_DOMAINS), 55 if lang == "zh" else 10),
            (rng.choice(EN_DOMAINS), 20 if lang == "zh" else 60),
            (rng.choice(ORG_DOMAINS), 25 if lang == "zh" else 30),
        ],
    )
    if rng.random() < 0.08:  # people type "Emily.Carter@Gmail.com" too
        local = ".".join(part[:1].upper() + part[1:] for part in local.split("."))
        domain = domain[:1].upper() + domain[1:]
    return f"{local}@{domain}"


def ipv4(rng: Random) -> str:
    private = weighted(
        rng,
        [
            (f"192.168.{rng.randrange(0, 256)}.{rng.randrange(1, 255)}", 10),
            (f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}", 6),
            (f"172.{rng.randrange(16, 32)}.{rng.randrange(256)}.{rng.randrange(1, 255)}", 4),
        ],
    )
    first = rng.choice((1, 14, 27, 36, 39, 42, 49, 58, 61, 101, 106, 110, 112, 114, 116, 117, 119, 121, 123, 125))
    first = rng.choice((first, rng.randrange(1, 224)))
    if first in (10, 127, 172, 192):
        first = 203
    public = f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    return private if rng.random() < 0.3 else public


def ipv6(rng: Random) -> str:
    prefix = rng.choice(("2408:8207", "240e:3a1", "2409:8a4c", "2001:db8", "2001:da8", "2400:da00", "2a00:1450"))
    groups = [int(part, 16) for part in prefix.split(":")]
    groups += [rng.randrange(0x10000) for _ in range(8 - len(groups))]
    zero_from = rng.randrange(2, 6)
    for position in range(zero_from, zero_from + rng.randrange(1, 4)):
        groups[min(position, 7)] = 0
    address = ipaddress.IPv6Address(":".join(f"{group:x}" for group in groups))
    special = (
        f"fe80::{rng.randrange(0x10000):x}:{rng.randrange(0x10000):x}:{rng.randrange(0x10000):x}:"
        f"{rng.randrange(0x10000):x}"
    )
    text = weighted(
        rng,
        [
            (address.compressed, 70),
            (address.exploded, 8),
            (special, 8),
            (f"::ffff:{ipv4(rng)}", 5),
            (f"2001:db8::{rng.randrange(1, 0x10000):x}", 8),
        ],
    )
    return text.upper() if rng.random() < 0.1 else text


def ip(rng: Random, lang: str, variant: str | None) -> str:
    version = variant or weighted(rng, [("v4", 65), ("v6", 35)])
    return ipv4(rng) if version == "v4" else ipv6(rng)
