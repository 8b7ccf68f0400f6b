"""Non-PII codes that must survive redaction verbatim: tracking, model, version, coupon and invoice
numbers, quantities; and the unlabelled fillers templates need (products, banks, ports)."""

import string
from random import Random

from .common import digits, grouped, weighted, words
from .keep_values import amount, some_day


def letters(rng: Random, count: int) -> str:
    return "".join(rng.choice(string.ascii_uppercase) for _ in range(count))


def alphanumeric(rng: Random, count: int) -> str:
    return "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(count))


def tracking(rng: Random, lang: str, variant: str | None) -> str:
    if variant is None:
        shares = [("sf", 18), ("sf_grouped", 8), ("yt", 10), ("jd", 10), ("jt", 6), ("zto", 10), ("yunda", 8)]
        shares += [("ems", 6), ("numeric", 24)]
        if lang == "en":
            shares = [("ups", 20), ("fedex", 14), ("usps", 12), ("dhl", 10), ("sf", 10), ("ems", 10), ("numeric", 24)]
        variant = weighted(rng, shares)
    match variant:
        case "sf":
            return "SF" + digits(rng, rng.choice((12, 13)), first_nonzero=True)
        case "sf_grouped":
            return "SF " + grouped(digits(rng, 12, first_nonzero=True), (4,), " ")
        case "yt":
            return "YT" + digits(rng, 13, first_nonzero=True)
        case "jd":
            return rng.choice(("JD", "JDV", "JDX")) + digits(rng, 12, first_nonzero=True)
        case "jt":
            return "JT" + digits(rng, 13, first_nonzero=True)
        case "zto":
            return "7" + rng.choice("35") + digits(rng, 12)
        case "yunda":
            return "43" + digits(rng, 11)
        case "ems":
            return rng.choice(("E", "L", "C", "R")) + letters(rng, 1) + digits(rng, 9) + "CN"
        case "ups":
            return "1Z" + alphanumeric(rng, 6) + digits(rng, 10)
        case "fedex":
            number = digits(rng, 12, first_nonzero=True)
            return grouped(number, (4,), " ") if rng.random() < 0.4 else number
        case "usps":
            return grouped("9400" + digits(rng, 18), (4,), " ")
        case "dhl":
            return digits(rng, 10, first_nonzero=True)
        case "numeric":
            return digits(rng, rng.randrange(12, 16), first_nonzero=True)
    raise ValueError(f"unknown tracking variant {variant}")


PRODUCT_MODELS = words(
    "iPhone 15 Pro | iPhone 14 Pro Max | RTX 4090 | RTX 4060 Ti | Galaxy S24 Ultra | Mate 60 Pro | 小米14 Ultra |"
    "MacBook Air M2 | iPad Air 5 | AirPods Pro 2 | Switch OLED | PS5 | Xbox Series X | XPS 13 9340 |"
    "ThinkPad X1 Carbon Gen 11 | Redmi K70 | Find X7 | vivo X100 | Apple Watch Series 9 | Kindle Paperwhite 5 |"
    "Dyson V15 | Pixel 8 Pro | Mate X5 | nova 12",
    "|",
)
MODEL_CODES = words("BCD-470WTPZM | WH-1000XM5 | KFR-35GW | MQ6T3CH/A | SM-S9280 | EOS R6 Mark II | DS-2CD3T46", "|")


def model(rng: Random, lang: str, variant: str | None) -> str:
    if (variant or rng.choice(("product", "code"))) == "product":
        return rng.choice(PRODUCT_MODELS)
    options = [
        (rng.choice(MODEL_CODES), 20),
        (f"A{rng.randrange(2100, 3100)}", 25),
        (f"SKU-{digits(rng, rng.choice((5, 6)), True)}", 25),
        (f"{letters(rng, 2)}-{rng.randrange(100, 9999)}{letters(rng, rng.randrange(1, 4))}", 20),
        (f"SKU{digits(rng, 8, True)}", 10),
    ]
    return weighted(rng, options)


def quantity(rng: Random, lang: str, variant: str | None) -> str:
    count = rng.choice((1, 2, 2, 3, 3, 4, 5, 6, 10, 12, 20, 24, 50))
    units = words("件 个 箱 瓶 盒") if lang == "zh" else words("pcs units boxes packs items")
    spelled = (f"x{count}", f"×{count}", f"{count} 件") if lang == "zh" else (f"x{count}", f"qty {count}")
    separator = "" if lang == "zh" else " "
    options: list[str] = [f"{count}{separator}{unit}" for unit in units] + list(spelled)
    return rng.choice(options)


def version(rng: Random, lang: str, variant: str | None) -> str:
    major, minor, patch = rng.randrange(1, 20), rng.randrange(0, 30), rng.randrange(0, 60)
    firmware = f"{rng.randrange(1, 5)}.{rng.randrange(0, 10)}.{rng.randrange(0, 20)}.{rng.randrange(1, 100)}"
    options = [
        (f"v{major}.{minor}.{patch}", 20),
        (f"{major}.{minor}.{patch}", 20),
        (f"iOS {rng.randrange(15, 19)}.{rng.randrange(0, 7)}.{rng.randrange(1, 3)}", 12),
        (f"Android {rng.randrange(11, 16)}", 8),
        (f"HarmonyOS {rng.randrange(2, 5)}.{rng.randrange(0, 3)}.0", 6),
        (f"10.0.{rng.choice((19045, 22621, 22631, 26100))}.{rng.randrange(1000, 5000)}", 8),
        (f"8.0.{rng.randrange(40, 55)}.{rng.randrange(2400, 2800)}", 8),  # a WeChat-style build: 4 parts, not an IP
        (f"{major}.{minor}.{patch} build {some_day(rng):%Y%m%d}", 8),
        (firmware, 6),  # four small parts: shaped like an IPv4 address, but a firmware version
    ]
    return weighted(rng, options)


COUPON_WORDS = words("SPRING SAVE WELCOME VIP NEWUSER DOUBLE11 FLASH SUMMER VIP2024 BACK2SCHOOL")


def coupon(rng: Random, lang: str, variant: str | None) -> str:
    word, code = rng.choice(COUPON_WORDS), alphanumeric(rng, 8)
    options = [
        (f"{word}{rng.randrange(5, 60)}", 30),
        (f"{word}-{rng.randrange(5, 60)}", 15),
        (code, 25),
        (grouped(code + letters(rng, 4), (4,), "-"), 15),
        (f"JD-{code[:4]}-{code[4:]}", 10),
        (code.lower(), 5),
    ]
    return weighted(rng, options)


def invoice(rng: Random, lang: str, variant: str | None) -> str:
    day = some_day(rng)
    if variant is None:
        shares = [("no", 40), ("code", 20), ("digital", 20), ("ref", 20)]
        variant = weighted(rng, shares if lang == "zh" else [("ref", 70), ("no", 15), ("digital", 15)])
    if variant == "no":
        return digits(rng, 8)
    if variant == "code":
        return rng.choice(("0", "1")) + digits(rng, 11)
    if variant == "digital":  # a fully digital invoice (全电发票) number: 20 digits
        return f"{day:%y}" + digits(rng, 18)
    options = [
        (f"INV-{day.year}-{digits(rng, 5)}", 50),
        (f"INV{digits(rng, 6)}", 25),
        (f"{day:%Y%m%d}-{digits(rng, 4)}", 25),
    ]
    return weighted(rng, options)


ZH_PRODUCTS = words(
    "蓝牙耳机 羽绒服 空气炸锅 扫地机器人 电动牙刷 机械键盘 保温杯 运动鞋 护肤套装 投影仪 婴儿推车 电饭煲"
)
EN_PRODUCTS = words(
    "wireless earbuds | down jacket | air fryer | robot vacuum | electric toothbrush | mechanical keyboard |"
    "water bottle | running shoes | skincare set | projector | stroller | rice cooker",
    "|",
)
ZH_BANKS = words("招商银行 工商银行 建设银行 农业银行 中国银行 交通银行 浦发银行 平安银行 邮储银行")
EN_BANKS = words("Chase | HSBC | Bank of China | Barclays | Citibank | Wells Fargo | DBS | ICBC Asia", "|")
ZH_BRANCHES = words("深圳南山支行 北京朝阳支行 上海浦东分行 杭州西湖支行 成都高新支行")


def filler(rng: Random, lang: str, variant: str | None) -> str:
    """Unlabelled words a template needs (products, banks, ports): never a number worth labelling."""
    match variant:
        case "product":
            return rng.choice(ZH_PRODUCTS if lang == "zh" else EN_PRODUCTS)
        case "bank":
            return rng.choice(ZH_BANKS if lang == "zh" else EN_BANKS)
        case "branch":
            return rng.choice(ZH_BRANCHES)
        case "port":
            return str(rng.choice((80, 443, 8080, 8443, 3000, 5000, 9000, rng.randrange(1024, 65536))))
        case "amount":
            return str(amount(rng))
    raise ValueError(f"unknown filler {variant}")
