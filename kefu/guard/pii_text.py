"""Addresses and personal names: found by structure and cue words, since no checksum exists for them.

Chinese addresses are runs that go down the administrative levels (省 → 市 → 区/县 → 路/街 → 号 → 栋/室);
English ones are a house number, a street type and optionally a city, state and postcode. Names are only taken
after a cue ("我叫", "收件人：", "my name is", "Mr.") or before an honorific (张先生), because a bare
two-character word is as often a noun as a name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_CJK = "\u4e00-\u9fff"
# Levels of a Chinese address; a run needs a street-level part plus a place above or a unit below it.
_ZH_REGION = re.compile(rf"[{_CJK}]{{1,7}}?(?:省|自治区|特别行政区|市|自治州|地区|盟|区|县|旗|镇|乡|街道)")
_ZH_STREET = re.compile(
    rf"[{_CJK}A-Za-z0-9]{{1,12}}?(?:大道|路|街|道|巷|弄|胡同|里|村|组)(?:[东西南北中]段)?"
    rf"(?:[0-9一二三四五六七八九十百零]+(?:-[0-9]+)?号(?:院)?)?"
)
_ZH_UNIT = re.compile(
    rf"[{_CJK}A-Za-z0-9]{{0,10}}?(?:小区|大厦|花园|公寓|广场|中心|苑|园|城|村|院|座|期)"
    rf"|[{_CJK}]{{0,8}}?[0-9A-Za-z一二三四五六七八九十]+(?:号楼|栋|幢|座|单元|层|楼|室|号|户)"
)
_ZH_PIECE = re.compile(rf"(?:{_ZH_REGION.pattern}|{_ZH_STREET.pattern}|{_ZH_UNIT.pattern})")
# Words that come before an address and are not part of it.
_ZH_LEAD = re.compile(
    r".*?(?:收货地址|送货地址|邮寄地址|地址|住址|寄到|送到|发到|寄往|改成|改为|改到|换成|换到|住在|位于|搬到|是|为|在|[:：])"
)
# "3栋1201", "绿地新都会9-2-802": the room after the building, or building-unit-room after the street.
_ZH_ROOM = re.compile(rf" ?[{_CJK}]{{0,8}}?-?[0-9]{{1,5}}(?:-[0-9]{{1,5}}){{0,2}}(?:室|房|号)?(?![0-9])")
# A run of address characters; single spaces may separate the levels ("上海市 徐汇区 ...").
_ZH_ADDRESS_RUN = re.compile(rf"[{_CJK}0-9][{_CJK}A-Za-z0-9\-#]*(?: [{_CJK}0-9][{_CJK}A-Za-z0-9\-#]*)*")

_EN_STREET_TYPES = (
    r"Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Parkway|Pkwy|Place|Pl|Square|Sq|"
    r"Terrace|Close|Crescent|Highway|Hwy|Circle|Cir|Row|Walk|Gardens|Mews"
)
_EN_UNIT_WORDS = r"Room|Rm|Flat|Unit|Apt|Apartment|Suite|Ste|Building|Bldg|Block|Blk|Floor|Fl|Tower"
_EN_ADDRESS = re.compile(
    # "Room 102, Building 8," / "Flat C, 10/F," before the house number
    rf"(?:(?:(?:{_EN_UNIT_WORDS})\.?\s*[A-Za-z0-9/-]{{1,6}}|\d{{1,3}}/F),?\s+){{0,3}}"
    rf"(?:(?:Blk|Block)\s+)?\b\d{{1,5}}[A-Za-z]?(?:-\d{{1,5}})?\s+(?:[NSEW]\.?\s+)?(?:[A-Z][A-Za-z'.-]*\s+){{1,4}}"
    rf"(?:{_EN_STREET_TYPES})\b\.?(?:\s\d{{1,3}}\b)?"
    r"(?:,?\s*(?:Apt|Apartment|Suite|Ste|Unit|Flat|Floor|Fl|Room|#)\.?\s*[\w-]+)?"
    r"(?:,\s*[A-Z][a-z][A-Za-z.'-]*(?:\s+[A-Z][a-z][A-Za-z.'-]*){0,3}){0,4}"
    r"(?:,?\s*(?:[A-Z]{2,3}\s+\d{4,5}(?:-\d{4})?|[A-Z]{2}\s+[A-Z]\d[A-Z]\s?\d[A-Z]\d|[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}|\d{4,6}))?"
)

# The commonest Chinese surnames (over 85 % of people) and the double ones.
_SURNAMES_2 = "欧阳|司马|诸葛|上官|东方|慕容|令狐|皇甫|尉迟|公孙|夏侯|长孙|宇文|司徒|端木|独孤|南宫|西门"
_SURNAMES_1 = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭"
    "陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安"
    "齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳"
    "管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟"
    "邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝萧赖洪晋诸芮羊於惠揭冼钮汲官鄢蔺阎"
)
# Characters that end a name in running text: "我叫王明想查订单" stops before 想.
_ZH_AFTER_NAME = set("想要的我电手请在是了吗呢啊吧，,。.！!？?、；;：: 收联身地订号和与跟给让帮需")
_ZH_NAME_CUE = re.compile(
    r"(?:我叫|我的名字是|我的名字叫|名字|本人|姓名|收件人|收货人|联系人|持卡人|户名|开户名|寄件人|签收人|购买人|订购人|"
    r"下单人|买家|乘机人|入住人|取件人|实名人|开票人|经办人)"
    r"\s*(?:是|为|叫|改成|改为|换成|写成|应该是)?\s*[:：]?\s*"
)
# Weaker cues: a name only when it stands alone ("我是黎晨，" but not "我是黄金会员"); "张三收" ends an address.
_ZH_WEAK_NAME = re.compile(
    rf"(?:(?<=我是)|(?<=我叫)|(?<=[，,\s]))((?:{_SURNAMES_2}|[{_SURNAMES_1}])[{_CJK}]{{1,2}}?)(?:收)?(?=$|[，,。.！!？?\s]|收(?:$|[，,。.！!？?\s]))"
)
_ZH_HONORIFIC = re.compile(rf"(?:{_SURNAMES_2}|[{_SURNAMES_1}])(?:先生|女士|小姐|老师|经理|总)")

_UPPER, _LOWER = "A-ZÀ-ÖØ-Þ", "a-zß-öø-ÿ"
_EN_NAME_WORD = (
    rf"(?:[{_UPPER}][{_LOWER}]+(?:[{_UPPER}][{_LOWER}]+)?(?:[-'][{_UPPER}]?[{_LOWER}]+)*"  # Emily, MacLeod, Smith-Jones
    r"|O'[A-Z][a-z]+|[A-Z]\.(?=\s+[A-Z]))"  # O'Neil, a middle initial
)
# Strong cues say a name follows; after a weak one only a first and last name together count.
_EN_STRONG_CUES = (
    r"my name is|my name's|(?:full |first |last |customer |recipient |cardholder |account )?name\s*:|"
    r"recipient\s*:?|addressee\s*:?|card ?holder(?: name)?\s*:?|contact\s*:|account holder\s*:?|"
    r"Mr\.?|Mrs\.?|Ms\.?|Miss|Dr\.?"
)
_EN_WEAK_CUES = (
    r"name|this is|it's|it is|i am|i'm|signed,|regards,|thanks,|sincerely,|"
    r"(?:ship|send|deliver|address|addressed|made out|issued|invoice)(?: it| the invoice| this)? to\s*:?|"
    r"(?:is|are|it's) for"
)
_EN_CUE = re.compile(rf"\b(?:(?P<strong>{_EN_STRONG_CUES})|(?P<weak>{_EN_WEAK_CUES}))\s+", re.IGNORECASE)
_EN_NAME = re.compile(
    rf"{_EN_NAME_WORD}(?:\s+(?:(?:van|der|den|de|von|da|del|la|le|bin|al)\s+)*{_EN_NAME_WORD}){{0,3}}"
)
_EN_LOWER_NAME = re.compile(r"[a-z]{2,12} [a-z]{2,12}(?=$|[\s,.;!?])")  # "recipient wei kim"
# Capitalised words after "I'm" / "this is" that are not names.
_EN_NOT_NAMES = {
    "sorry", "happy", "not", "looking", "trying", "still", "just", "very", "so", "really", "calling", "writing",
    "here", "back", "done", "unable", "interested", "the", "a", "an", "your", "customer", "order", "from", "in",
    "at", "on", "going", "getting", "having", "wondering", "confused", "angry", "upset", "frustrated", "also",
    "new", "regarding", "about", "with", "again", "please", "hello", "hi", "thank", "thanks", "fine", "ok", "okay",
}  # fmt: skip


def find_addresses(text: str) -> Iterable[tuple[int, int]]:
    for m in _ZH_ADDRESS_RUN.finditer(text):
        span = _zh_address(m.group(0))
        if span is not None:
            yield m.start() + span[0], m.start() + span[1]
    for m in _EN_ADDRESS.finditer(text):
        yield m.start(), m.end()


def _zh_address(run: str) -> tuple[int, int] | None:
    lead = _ZH_LEAD.match(run)
    offset = lead.end() if lead else 0
    # The lead regex is lazy, so take the last cue before the first administrative piece.
    while True:
        again = _ZH_LEAD.match(run, offset)
        first_piece = _ZH_PIECE.search(run, offset)
        if again is None or first_piece is None or again.end() > first_piece.start() + 2:
            break
        offset = again.end()
    pos, end = offset, offset
    levels: set[str] = set()
    while pos < len(run):
        if run[pos] == " " and levels:
            pos += 1
        m = _ZH_PIECE.match(run, pos)
        if m is None or m.end() == pos:
            break
        piece = m.group(0)
        if _ZH_REGION.fullmatch(piece):
            levels.add("region")
        elif _ZH_STREET.fullmatch(piece):
            levels.add("street")
        else:
            levels.add("unit")
        pos = end = m.end()
    room = _ZH_ROOM.match(run, end) if levels & {"unit", "street"} else None
    if room is not None and room.group(0).strip():
        end = room.end()
    if ("street" in levels and len(levels) >= 2) or ({"region", "unit"} <= levels and end - offset >= 8):
        return offset, end
    return None


def find_names(text: str) -> Iterable[tuple[int, int]]:
    for m in _ZH_NAME_CUE.finditer(text):
        name = _zh_name_at(text, m.end())
        if name is not None:
            yield name
    for m in _ZH_WEAK_NAME.finditer(text):
        before = text[max(0, m.start() - 2) : m.start()]
        ends_with_shou = text[m.end(1) : m.end(1) + 1] == "收"
        if before.endswith(("我是", "我叫")) or ends_with_shou:
            yield m.start(1), m.end(1)
    for m in _ZH_HONORIFIC.finditer(text):
        # "王总" is a name; "提高总体" is not: 总 after a character is only an honorific at a word start.
        joined = m.start() > 0 and "\u4e00" <= text[m.start() - 1] <= "\u9fff"
        if not (joined and m.group(0).endswith("总")):
            yield m.start(), m.end()
    for m in _EN_CUE.finditer(text):
        strong = m.group("strong") is not None
        match = _EN_NAME.match(text, m.end())
        if match is None:
            lower = _EN_LOWER_NAME.match(text, m.end()) if strong else None
            if lower is not None and not set(lower.group(0).split()) & _EN_NOT_NAMES:
                yield lower.start(), lower.end()
            continue
        words = match.group(0).split()
        if words[0].lower() in _EN_NOT_NAMES:
            continue
        while words and words[-1].lower() in _EN_NOT_NAMES:
            words.pop()
        if not words or (not strong and len([w for w in words if not w.endswith(".")]) < 2):
            continue
        yield match.start(), match.start() + len(" ".join(words))


def _zh_name_at(text: str, start: int) -> tuple[int, int] | None:
    honorific = _ZH_HONORIFIC.match(text, start)
    if honorific is not None:
        return start, honorific.end()
    rest = text[start : start + 5]
    surname = re.match(rf"(?:{_SURNAMES_2}|[{_SURNAMES_1}])", rest)
    if surname is None:
        return None
    end = surname.end()
    for ch in rest[end : end + 2]:
        if not ("\u4e00" <= ch <= "\u9fff") or ch in _ZH_AFTER_NAME:
            break
        end += 1
    if end == surname.end():  # a surname alone is not a name
        return None
    return start, start + end
