"""Replies for a phone call: what a text-to-speech engine should say instead of what a chat window shows.

Pure text work, no I/O. A chat reply becomes speech by dropping what cannot be heard (links, Markdown,
citation marks, the sources line, emoji, brackets), making numbers readable (an order or tracking number
digit by digit, prices with their unit, ranges with "to"), turning quick replies into spoken options
("您可以说：是 / 否", "You can say: Yes or No"), and cutting at a sentence boundary to about
``KEFU_VOICE_MAX_CHARS`` characters.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from kefu.core.types import Locale

CHANNEL = "phone"
CONVERSATION_PREFIX = "call:"

# Said without running a turn (the caller's words never reached kefu, or not reliably).
REPEAT = {
    "zh": "抱歉，我没有听清，请您再说一遍。",
    "en": "Sorry, I didn't quite catch that. Could you say it again?",
}
NO_INPUT = {
    "zh": "抱歉，我没有听到您说话，请问有什么可以帮您？",
    "en": "Sorry, I didn't hear anything. How can I help you?",
}
TRANSFER = {  # the bot is silent because a person owns the conversation: the call goes to them
    "zh": "正在为您转接人工客服，请稍候。",
    "en": "I'm transferring you to a colleague now. Please hold.",
}
_OPTIONS_INTRO = {"zh": "您可以说：", "en": "You can say: "}

_CJK = re.compile(r"[\u4e00-\u9fff]")
_SOURCES = re.compile(r"[(（]\s*(?:sources?|来源)\s*[:：][^)）]*[)）]", re.IGNORECASE)
_MD_LINK = re.compile(r"!?\[([^\]\n]*)\]\((?:[^)\s]+)\)")
_URL = re.compile(r"(?:https?://|www\.)[^\s，。！？、)）\]]+", re.IGNORECASE)
_CITATION = re.compile(r"\[\^?\d{1,3}\]|【\d{1,3}】|\[\d{1,3}(?:\s*[,，]\s*\d{1,3})+\]")
_MD_MARKS = re.compile(r"\*\*|__|~~|`+|(?<!\w)[*_](?=\S)|(?<=\S)[*_](?!\w)")
_LINE_MARKERS = re.compile(r"^\s*(?:#{1,6}\s+|>\s*|[-*+•·]\s+|\d{1,2}[.)、]\s+)", re.MULTILINE)
_EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\ufe0f\u200d]")
_BRACKETS = re.compile(r"[()（）\[\]【】{}<>]")  # an aside in brackets is read between pauses
_QUOTES = re.compile(r"[「」『』《》\"“”]")
_PHONE = re.compile(r"(?<![\d-])\d{3,4}(?:-\d{3,4}){1,2}(?![\d-])")
_PRICE_BEFORE = re.compile(r"([¥￥$])\s?(\d+(?:,\d{3})*(?:\.\d+)?)")
_TRAILING_ZEROS = re.compile(r"(\d+)\.00(?!\d)")
_ISO_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
# Order, tracking and phone numbers are read one character at a time; amounts (with a unit) are not.
_CODE = re.compile(r"(?<![A-Za-z0-9.,])([A-Za-z]{0,4}\d{5,})(?![A-Za-z0-9]|\.\d|,\d|\s?(?:元|yuan|dollars|美元))")
# Ranges of small numbers and times ("24–48", "9:00–21:00"), not phone numbers ("400-123-4567").
_RANGE = re.compile(r"(?<![\d:-])(\d{1,3}(?::\d{2})?)\s*[–—~～-]\s*(\d{1,3}(?::\d{2})?)(?![\d:-])")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_SENTENCE = re.compile(r".*?(?:[。！？!?]+|\.(?=\s|$)|$)", re.DOTALL)
_CLAUSE_END = re.compile(r"[，,；;：:、]")


def language_of(text: str, default: Locale) -> Locale:
    """zh or en by which script carries more of ``text`` (an English reply may name "顺丰速运")."""
    chinese = len(_CJK.findall(text))
    english = len(re.findall(r"[A-Za-z]+", text))
    if chinese == english == 0:
        return default
    return "zh" if chinese >= english else "en"


def _price(match: re.Match[str], locale: Locale) -> str:
    amount = match.group(2).replace(",", "")
    if amount.endswith(".00"):
        amount = amount[:-3]
    unit = {"$": ("美元", " dollars")}.get(match.group(1), ("元", " yuan"))
    return amount + (unit[0] if locale == "zh" else unit[1])


def _date(match: re.Match[str], locale: Locale) -> str:
    year, month, day = (int(g) for g in match.groups())
    if not 1 <= month <= 12 or not 1 <= day <= 31:
        return match.group(0)
    return f"{year}年{month}月{day}日" if locale == "zh" else f"{_MONTHS[month - 1]} {day}, {year}"


def readable(text: str, locale: Locale) -> str:
    """``text`` with only what can be heard, numbers written to be read aloud."""
    return _numbers(_clean(text, locale), locale)


def _clean(text: str, locale: Locale) -> str:
    """What cannot be heard removed; brackets become pauses."""
    text = _SOURCES.sub("", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _URL.sub("", text)
    text = _CITATION.sub("", text)
    text = _LINE_MARKERS.sub("", text)
    text = _MD_MARKS.sub("", text)
    text = _EMOJI.sub("", text)
    if locale == "en":
        text = re.sub(r"\be\.g\.\s*", "for example ", text)
        text = re.sub(r"\bi\.e\.\s*", "that is, ", text)
    text = _QUOTES.sub("", text)
    text = _BRACKETS.sub("，" if locale == "zh" else ", ", text)
    return _tidy(text, locale)


def _numbers(text: str, locale: Locale) -> str:
    """Numbers as they should be read: prices with their unit, dates, ranges, codes one by one."""
    text = _PRICE_BEFORE.sub(lambda m: _price(m, locale), text)
    text = _TRAILING_ZEROS.sub(r"\1", text)
    text = _ISO_DATE.sub(lambda m: _date(m, locale), text)
    pause = "，" if locale == "zh" else ", "
    text = _PHONE.sub(lambda m: pause.join(" ".join(group) for group in m.group(0).split("-")), text)
    text = _CODE.sub(lambda m: " ".join(m.group(1).upper()), text)
    return _RANGE.sub(r"\1到\2" if locale == "zh" else r"\1 to \2", text)


def _tidy(text: str, locale: Locale) -> str:
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r"([,，])(?:\s*[,，])+", r"\1", text)  # pauses left by removed brackets, once each
    text = re.sub(r"([.。!！?？:：;；])\s*[,，]", r"\1", text)
    text = re.sub(r"[,，]\s*([.。!！?？:：;；])", r"\1", text)
    lines = [line.strip(" ,，") for line in text.splitlines() if line.strip(" ,，")]
    ended = [
        line if re.search(r"[。！？!?.:：,，]$", line) else line + ("。" if locale == "zh" else ".") for line in lines
    ]
    text = ("" if locale == "zh" else " ").join(ended)
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r"\s+([,.!?;:，。！？；：、])", r"\1", text)  # a space left where a mark was removed
    text = re.sub(r"([,，；;])\s*([.。!！?？])", r"\2", text)
    text = re.sub(r"([.。])\s*[.。]+", r"\1", text)
    if locale == "zh":
        text = re.sub(r"(?<=[\u4e00-\u9fff，。！？：；])\s+|\s+(?=[\u4e00-\u9fff])", "", text)
    return text.strip()


def sentences(text: str) -> list[str]:
    return [m.group(0).strip() for m in _SENTENCE.finditer(text) if m.group(0).strip()]


def cut(text: str, max_chars: int) -> str:
    """Whole sentences up to ``max_chars``; a first sentence longer than that is cut after a clause (or,
    failing one, a word) and closed with a full stop."""
    if len(text) <= max_chars:
        return text
    kept = ""
    for sentence in sentences(text):
        joined = f"{kept} {sentence}".strip() if kept and not _CJK.search(sentence[:1]) else kept + sentence
        if len(joined) > max_chars:
            break
        kept = joined
    if len(kept) >= max_chars // 2:
        return kept
    rest = text[len(kept) :].strip() if text.startswith(kept) else text
    part = _clause_cut(rest, max_chars - len(kept) - 1)
    if not kept:
        return part
    return kept + ("" if _CJK.search(part[:1]) else " ") + part if len(part) > 8 else kept


def _clause_cut(text: str, max_chars: int) -> str:
    head = text[:max_chars]
    clauses = list(_CLAUSE_END.finditer(head))
    if clauses and clauses[-1].start() > max_chars // 3:
        head = head[: clauses[-1].start()]
    elif " " in head:
        head = head[: head.rfind(" ")]
    zh = language_of(head, "en") == "zh"
    return head.rstrip(" ,，;；:：、") + ("。" if zh else ".")


def _join(parts: Sequence[str], locale: Locale) -> str:
    return ("" if locale == "zh" else " ").join(p for p in parts if p)


def options(quick_replies: Sequence[str], locale: Locale) -> str:
    """Quick replies as something to say: "您可以说：是 / 否" or "You can say: Yes or No"."""
    said = [re.sub(r"[。.！!？?]+$", "", readable(q, locale)) for q in quick_replies]
    said = [s for s in said if s]
    if not said:
        return ""
    if locale == "zh":
        return _OPTIONS_INTRO["zh"] + " / ".join(said) + "。"
    listed = said[0] if len(said) == 1 else ", ".join(said[:-1]) + " or " + said[-1]
    return _OPTIONS_INTRO["en"] + listed + "."


def spoken(text: str, quick_replies: Sequence[str], locale: Locale, max_chars: int) -> str:
    """The reply to read to the caller: cut to about ``max_chars`` (counted before numbers are spelt out),
    then the spoken options. A closing question ("Shall I cancel it?") is what the caller must answer,
    so a cut keeps it and shortens what comes before it instead."""
    said = _clean(text, locale)
    parts = sentences(said)
    question = parts[-1] if len(parts) > 1 and parts[-1].endswith(("?", "？")) else ""
    if len(said) > max_chars and question and max_chars - len(question) - 1 >= max_chars // 4:
        body = _join([cut(_join(parts[:-1], locale), max_chars - len(question) - 1), question], locale)
    else:
        body = cut(said, max_chars)
    return _join([_numbers(body, locale), options(quick_replies, locale)], locale)
