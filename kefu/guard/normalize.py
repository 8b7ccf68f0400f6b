"""Text normalisation shared by the guard's detectors: one canonical form that obfuscation cannot dodge.

``normalize`` folds what a reader sees as the same text onto one string (width, case, look-alike letters,
invisible characters, spaced-out words, traditional characters); ``decoded_variants`` finds encoded
segments (base64, hex, binary, URL/HTML escapes, ROT13, reversed text, leetspeak, pinyin, Unicode tag characters)
and returns what they say, so that the same patterns run on what an LLM would read. Both are pure and
bounded: a few regex passes over the text, at most ``MAX_VARIANTS`` variants of bounded length.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import functools
import html
import re
import unicodedata
import urllib.parse
from dataclasses import dataclass

from kefu.guard.pinyin import pinyin_variant

MAX_VARIANTS = 4
_MAX_SEGMENTS = 6  # encoded segments decoded per text; an attack needs one
_MIN_DECODED_CHARS = 6


def _words(text: str) -> list[str]:
    return text.split()


# Invisible characters that split words without showing: zero-width, joiners, bidi controls, soft hyphen.
_INVISIBLE = re.compile("[\u00ad\u034f\u061c\u115f\u1160\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]")
_TAG_CHARS = re.compile("[\U000e0000-\U000e007f]+")
_COMBINING = re.compile("[\u0300-\u036f]")
_ACCENTED = re.compile("[\u00c0-\u024f\u1e00-\u1eff\u0300-\u036f]")

# Cyrillic and Greek letters (and small capitals) that render like Latin ones.
_HOMOGLYPHS = str.maketrans(
    "АВЕЅІЈКМНОРСТХУаеіјорсхуѕԁһӏԛԝɡΑΒΕΖΗΙΚΜΝΟΡΤΥΧαεικνορτυχᴀʙᴄᴅᴇғɢʜɪᴊᴋʟᴍɴᴏᴘǫʀꜱᴛᴜᴠᴡʏᴢ",
    "ABESIJKMHOPCTXYaeijopcxysdhlqwgABEZHIKMNOPTYXaeiknoptuxabcdefghijklmnopqrstuvwyz",
)
_QUOTES = str.maketrans("‘’‚‛′“”„‟″「」『』", '\'\'\'\'""""""""""')

# Traditional characters that occur in injection phrasing, folded to simplified so one pattern serves both.
_TRADITIONAL = str.maketrans(
    {
        pair[0]: pair[1]
        for pair in _words(
            "無无 視视 規规 則则 設设 統统 詞词 隱隐 內内 輸输 顯显 開开 發发 從从 現现 沒没 們们 "
            "蓋盖 請请 說说 這这 為为 與与 對对 將将 審审 驗验 證证 訂订 單单 執执 調调 權权 機机 "
            "復复 複复 讀读 寫写 條条 讓让 遺遗 棄弃 繞绕 過过 終终 結结 應应 該该 須须 聽听 語语 "
            "處处 戶户 確确 認认 轉转 帳账 錢钱 給给 務务 級级 釋释 啟启 動动 態态 體体 係系 裡里 "
            "後后 麼么 網网 頁页 獄狱 員员 訊讯 約约 濾滤 倫伦 補补 償偿 賠赔 號号 碼码 電电 話话 "
            "資资 數数 據据 測测 試试 絕绝 記记 憶忆 實实 際际 產产 價价 優优 時时 間间 問问 題题 "
            "幫帮 嗎吗 個个 會会 還还 進进 狀状 標标 換换 貨货 經经 層层 總总 歡欢"
        )
    }
)

_SPACE_RUN = re.compile(r"[^\S\n]*\n\s*|[^\S\n]{2,}|[\t\r\f\v\u3000\xa0]")
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# Separators used to space letters or characters out: "i g n o r e", "忽-略-之-前".
_SPACED_LATIN = re.compile(r"(?<![a-z0-9])[a-z0-9](?:([ .\-_*·|/+~])[a-z0-9](?![a-z0-9])){3,}")
_SPACED_CJK = re.compile(f"[{_CJK}](?:[ .\\-_*·|/+~]+[{_CJK}]){{2,}}")
_SPACED_SEPARATOR = re.compile(r"[ .\-_*·|/+~]+")


# Words to re-segment spaced-out text with, when it was written without word gaps ("i g n o r e a l l").
_SEGMENT_WORDS = frozenset(
    _words(
        """a about above act admin ai all an and any anything are as assistant at be before bot bypass by
    can chat code command commands constraints content context developer directives disable disregard do
    dont every everything filter filters follow for forget from give guidelines have hidden i ignore in
    initial instructions is it jailbreak me mode my new no not now of on or original output override
    password please policy previous print prior prompt refund repeat reveal role rules safety say secret
    show system tell text that the this to unrestricted verification verify what without you your
    give coupon free approve access account data customer user guidelines jailbroken hack hacked pwned
    discount order orders everything"""
    )
)
_SEGMENT_MAX_WORD = max(len(w) for w in _SEGMENT_WORDS)
_SEGMENT_MAX_RUN = 160


@dataclass(frozen=True, slots=True)
class Normalized:
    """The canonical text and whether getting there undid an obfuscation (not mere width or case)."""

    text: str
    obfuscated: bool


def normalize(text: str) -> str:
    """NFKC, width and case folded, invisible characters dropped, look-alikes folded, spacing tidied."""
    return normalize_marked(text).text


def normalize_marked(text: str) -> Normalized:
    obfuscated = False
    if not text.isascii():
        # Fullwidth Latin letters, mathematical alphabets and invisible joins are typed only to hide words.
        obfuscated = bool(re.search("[\uff21-\uff3a\uff41-\uff5a\U0001d400-\U0001d7ff\U000e0000-\U000e007f]", text))
        stripped = _TAG_CHARS.sub("", _INVISIBLE.sub("", text))
        obfuscated = obfuscated or _splits_words(text, stripped)
        text = unicodedata.normalize("NFKC", stripped)
        if _ACCENTED.search(text):  # "ïgnörë": drop the accents of Latin letters (rare, so checked first)
            text = unicodedata.normalize("NFC", _COMBINING.sub("", unicodedata.normalize("NFD", text)))
        folded = text.translate(_HOMOGLYPHS)
        obfuscated = obfuscated or (folded != text and _mixes_scripts(text))
        text = folded.translate(_QUOTES).translate(_TRADITIONAL)
    if "\\n" in text:  # a pasted "\n\nHuman:" means a line break to the model reading it
        text = text.replace("\\r\\n", "\n").replace("\\n", "\n")
    text = text.casefold()
    text = _SPACE_RUN.sub(lambda m: "\n" if "\n" in m.group() else " ", text)
    joined = _SPACED_LATIN.sub(_join_spaced_latin, text)
    if not text.isascii():
        joined = _SPACED_CJK.sub(lambda m: _SPACED_SEPARATOR.sub("", m.group()), joined)
    obfuscated = obfuscated or (joined != text and _SPACED_LATIN.search(text) is not None)
    return Normalized(joined.strip(), obfuscated)


def _splits_words(original: str, stripped: str) -> bool:
    """True when invisible characters sat inside a word (a benign one sits at an edge, e.g. a BOM)."""
    return (
        len(original) != len(stripped) and re.search(r"\w[\u200b-\u200f\u2060-\u2064\u00ad]+\w", original) is not None
    )


def _mixes_scripts(text: str) -> bool:
    """A Latin word with a Cyrillic or Greek letter inside: written to look English while not being it."""
    return re.search("(?:[a-zA-Z][\u0370-\u03ff\u0400-\u04ff]|[\u0370-\u03ff\u0400-\u04ff][a-zA-Z])", text) is not None


def _join_spaced_latin(match: re.Match[str]) -> str:
    letters = _SPACED_SEPARATOR.sub("", match.group())
    return _segment(letters) if len(letters) > 6 else letters


def _segment(run: str) -> str:
    """Split a run of joined letters into known words; letters no word covers stay together."""
    if len(run) > _SEGMENT_MAX_RUN:
        return run
    # best[i]: (unknown letters, pieces) for run[:i]; fewer unknown letters first, then fewer pieces.
    best: list[tuple[int, int, int]] = [(0, 0, 0)] + [(len(run) + 1, 0, 0)] * len(run)
    for end in range(1, len(run) + 1):
        unknown, pieces, _ = best[end - 1]
        candidate = (unknown + 1, pieces + 1, end - 1)
        for start in range(max(0, end - _SEGMENT_MAX_WORD), end):
            if run[start:end] in _SEGMENT_WORDS:
                u, p, _ = best[start]
                candidate = min(candidate, (u, p + 1, start))
        best[end] = candidate
    words: list[str] = []
    end = len(run)
    while end > 0:
        start = best[end][2]
        piece = run[start:end]
        if len(piece) == 1 and piece not in _SEGMENT_WORDS and words and words[-1] not in _SEGMENT_WORDS:
            words[-1] = piece + words[-1]
        else:
            words.append(piece)
        end = start
    return " ".join(reversed(words))


# --- decoding ---------------------------------------------------------------------------------------------

_BASE64 = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{16,}={0,2}")
_HEX = re.compile(
    r"(?<![0-9a-fA-F])(?:[0-9a-fA-F]{2}){8,}(?![0-9a-fA-F])"
    r"|(?:\\x[0-9a-fA-F]{2}){4,}"
    r"|(?<![0-9a-fA-F])(?:[0-9a-fA-F]{2}[ ,:-]){7,}[0-9a-fA-F]{2}(?![0-9a-fA-F])"
)
_BINARY = re.compile(r"(?<![01])[01]{8}(?:\s?[01]{8}){3,}(?![01])")
_ESCAPES = {
    "url": r"%[0-9a-fA-F]{2}",
    "html": r"&(?:#\d{2,6}|#x[0-9a-fA-F]{2,5}|[a-zA-Z]{2,8});",
    "unicode": r"\\u[0-9a-fA-F]{4}",
}
_PERCENT, _ENTITY, _UNICODE_ESCAPE = (re.compile(pattern) for pattern in _ESCAPES.values())
_ANY_ESCAPE = "(?:" + "|".join(_ESCAPES.values()) + ")"
# A stretch of text holding escapes: escapes and the plain characters between them on one line.
_ESCAPED_RUN = re.compile(_ANY_ESCAPE + r"(?:[^\n%&\\]{0,20}?" + _ANY_ESCAPE + r")*[^\s%&\\]*")
_LEET_TOKEN = re.compile(r"[a-z0-9@$!|]*[a-z][a-z0-9@$!|]*")
_LEET_DIGITS = re.compile(r"[013457@$!|]")
# A leet character between letters ("pr3v10us"), or one opening a word ("1gnore"): numbers and models don't.
_LEET_INSIDE = re.compile(r"[a-z][013457@$|]+[a-z]|(?<![a-z0-9])[0134@$|][a-z]{2}")
_LEET = str.maketrans("013457@$!|", "oieastasil")
_LEET_L = str.maketrans("013457@$!|", "oleastasil")
_LEET_CONTEXT = 40  # characters of plain text kept on each side of a leet word
# Chat shorthand that travels with leetspeak ("u r fr33 n0w"), read back in the leet variants only.
_CHAT_SHORTHAND = {"u": "you", "r": "are", "ur": "your", "y": "why", "pls": "please", "plz": "please", "n": "and"}
_SHORTHAND_WORD = re.compile(r"\b(?:" + "|".join(_CHAT_SHORTHAND) + r")\b")
_ESCAPE_CONTEXT = 40  # likewise around a run of escapes
_WORD = re.compile(r"[a-z]+")
_COMMON_WORDS = frozenset(
    _words("the a an and to of you your i my me is are be it this that all for with not do what please now")
)
_ROT13_HINT = re.compile(r"rot[\s-]?13|caesar|凯撒")
# Common and injection words as they look after ROT13; without two of them there is nothing to rotate back.
_ROT13_WORDS = re.compile(
    r"\b(?:gur|naq|lbh|lbhe|vtaber|cerivbhf|cevbe|vafgehpgvbaf?|ehyrf|flfgrz|cebzcg|nyy|vf|bs|jung|qvfertneq|"
    r"sbetrg|erirny|cevag|fubj|gryy|zr|zl|abj|cyrnfr|ershaq)\b"
)
_REVERSE_HINT = re.compile(r"revers|backwards|倒着|反过来|倒序|逆序")


def decoded_variants(text: str, *, normalized: str | None = None) -> list[str]:
    """Normalised decodings of what ``text`` hides; empty when nothing decodes.

    Embedded base64, hex, binary and tag-character segments come back as their decoded text alone (the rest
    of the message was already readable); URL/HTML escapes and leetspeak come back as the stretches around
    them, decoded; ROT13 and reversal apply to the whole text, when it reads better that way; pinyin
    stretches that spell injection words come back in Chinese characters.
    ``normalized`` saves a second normalisation when the caller already has ``normalize(text)``.
    """
    base = normalized if normalized is not None else normalize(text)
    raw = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text)) if not text.isascii() else text
    candidates: list[str] = []
    tags = _decode_tag_characters(text)
    if tags:
        candidates.append(tags)
    for decoded in (_decode_segments(raw), _unescape(raw)):
        if decoded is not None:
            candidates.append(decoded)
            inner = _decode_segments(decoded)  # base64 inside URL-encoding, hex inside base64, ...
            if inner is not None:
                candidates.append(inner)
    out: list[str] = []
    for candidate in candidates:
        _add(out, normalize(candidate), base)
        rotated = _rot13_if_english(normalize(candidate))
        if rotated is not None:
            _add(out, rotated, base)
    simple = (_rot13_if_english(base), _dehyphenated(base), pinyin_variant(base))
    for variant in (*simple, *_reversals(base), *_leet_variants(base)):
        if variant is not None:
            _add(out, variant, base)
    return out[:MAX_VARIANTS]


def _add(out: list[str], variant: str, base: str) -> None:
    if variant and variant != base and variant not in out and len(out) < MAX_VARIANTS:
        out.append(variant)


def _decode_tag_characters(text: str) -> str | None:
    """Unicode tag characters (U+E0020..E007E) mirror ASCII invisibly: "ASCII smuggling"."""
    found = _TAG_CHARS.findall(text)
    decoded = "".join(chr(ord(c) - 0xE0000) for run in found for c in run if 0xE0020 <= ord(c) <= 0xE007E)
    return decoded if len(decoded) >= _MIN_DECODED_CHARS else None


def _decode_segments(text: str) -> str | None:
    """The readable decodings of the text's base64, hex and binary segments, joined; None if none decode."""
    pieces: list[str] = []
    last = 0
    spans = sorted(
        [(m.start(), m.end(), _from_base64(m.group())) for m in _BASE64.finditer(text)][:_MAX_SEGMENTS]
        + [(m.start(), m.end(), _from_hex(m.group())) for m in _HEX.finditer(text)][:_MAX_SEGMENTS]
        + [(m.start(), m.end(), _from_binary(m.group())) for m in _BINARY.finditer(text)][:_MAX_SEGMENTS],
        key=lambda span: span[0],
    )
    for start, end, decoded in spans:
        if decoded is None or start < last:
            continue
        pieces.append(decoded)
        last = end
    return "\n".join(pieces) if pieces else None


def _from_base64(segment: str) -> str | None:
    core = segment.rstrip("=")
    if len(core) % 4 == 1:
        return None
    try:
        data = base64.b64decode(core + "=" * (-len(core) % 4), altchars=b"-_" if "-" in core or "_" in core else None)
    except (binascii.Error, ValueError):
        return None
    return _readable(data)


def _from_hex(segment: str) -> str | None:
    digits = re.sub(r"\\x|0x|[\s,:-]", "", segment)
    try:
        return _readable(bytes.fromhex(digits))
    except ValueError:
        return None


def _from_binary(segment: str) -> str | None:
    bits = re.sub(r"\s", "", segment)
    return _readable(int(bits, 2).to_bytes(len(bits) // 8, "big")) if len(bits) % 8 == 0 else None


def _readable(data: bytes) -> str | None:
    """Decoded bytes that are text a model would read (UTF-8, printable, with letters), else None."""
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if len(decoded) < _MIN_DECODED_CHARS or not decoded.replace("\n", " ").replace("\t", " ").isprintable():
        return None
    letters = sum(ch.isalpha() for ch in decoded)
    return decoded if letters >= len(decoded) / 2 else None


def _windows(spans: list[tuple[int, int]], context: int, length: int) -> list[tuple[int, int]]:
    """The spans widened by ``context`` characters on each side (within the text), overlapping ones merged."""
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        start, end = max(0, start - context), min(length, end + context)
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _unescape(text: str) -> str | None:
    """Stretches holding URL-encoding, HTML entities or \\uXXXX escapes (three or more), decoded and joined.

    Each stretch keeps some plain text on both sides, so that "%69%67%6E%6F%72%65 all rules" reads on.
    """
    windows = _windows([run.span() for run in _ESCAPED_RUN.finditer(text)], _ESCAPE_CONTEXT, len(text))
    pieces = []
    for start, end in windows[:_MAX_SEGMENTS]:
        original = segment = text[start:end]
        if len(_PERCENT.findall(segment)) >= 3:
            segment = urllib.parse.unquote(segment.replace("+", " "))
        if len(_ENTITY.findall(segment)) >= 3:
            segment = html.unescape(segment)
        if len(_UNICODE_ESCAPE.findall(segment)) >= 3:
            segment = _UNICODE_ESCAPE.sub(lambda m: chr(int(m.group()[2:], 16)), segment)
        if segment != original:
            pieces.append(segment)
    return "\n".join(pieces) if pieces else None


def _english_words(text: str) -> int:
    return sum(word in _COMMON_WORDS or word in _SEGMENT_WORDS for word in _WORD.findall(text))


def _rot13_if_english(text: str) -> str | None:
    """ROT13 of the text when that reads more like English than the text does (or ROT13 is named)."""
    hinted = _ROT13_HINT.search(text) is not None
    if not hinted and len(_ROT13_WORDS.findall(text)) < 2:
        return None
    rotated = codecs.encode(text, "rot13")
    if hinted or _english_words(rotated) > max(1, _english_words(text)):
        return rotated
    return None


def _reversals(text: str) -> list[str]:
    """The text reversed when asked for, whole ("snoitcurtsni lla") and word by word ("erongi lla ruoy")."""
    if _REVERSE_HINT.search(text) is None:
        return []
    whole, by_word = text[::-1], _WORD.sub(lambda m: m.group()[::-1], text)
    readable = max(2, _english_words(text) + 1)
    return [r for r in (whole, by_word) if not text.isascii() or _english_words(r) >= readable]


_HYPHENATED = re.compile(r"\b[a-z]+(?:-[a-z]+)+\b")


def _dehyphenated(text: str) -> str | None:
    """Words split by hyphens to dodge patterns ("ig-nore pre-vious in-struc-tions") joined again."""
    if "-" not in text:
        return None

    def join(match: re.Match[str]) -> str:
        word = match.group().replace("-", "")
        return word if word in _SEGMENT_WORDS else match.group()

    joined = _HYPHENATED.sub(join, text)
    return joined if joined != text else None


def _read_leet(match: re.Match[str], table: dict[int, int]) -> str:
    token = match.group()
    if not _LEET_DIGITS.search(token):
        return token
    decoded = token.translate(table)
    # "rul3z", "h4x0rz": a plural written with z
    return decoded[:-1] + "s" if len(decoded) > 3 and decoded.endswith("z") else decoded


def _leet_variants(text: str) -> list[str]:
    """Leetspeak read back as letters ('1' as i and, separately, as l), when some token decodes to a known word."""
    if _LEET_INSIDE.search(text) is None:
        return []
    tokens = [m for m in _LEET_TOKEN.finditer(text) if _LEET_DIGITS.search(m.group())]
    # Only when a token reads as a known word once decoded: codes like "u1bss5" or "sf12345" are not leet.
    known = _SEGMENT_WORDS | _COMMON_WORDS
    if not any(m.group().translate(_LEET) in known or m.group().translate(_LEET_L) in known for m in tokens):
        return []
    # Only the stretches around leet words are rewritten and returned: the rest was read as it is.
    windows = _windows([m.span() for m in tokens], _LEET_CONTEXT, len(text))
    variants = []
    for table in (_LEET, _LEET_L) if any("1" in m.group() or "|" in m.group() for m in tokens) else (_LEET,):
        rewritten = _LEET_TOKEN.sub(functools.partial(_read_leet, table=table), text)  # same length as text
        stretches = (rewritten[start:end] for start, end in windows)
        variants.append("\n".join(_SHORTHAND_WORD.sub(lambda m: _CHAT_SHORTHAND[m.group()], s) for s in stretches))
    return variants
