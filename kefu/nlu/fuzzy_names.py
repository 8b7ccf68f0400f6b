"""Product names in a message: exact names and aliases, English typos and partial names, Chinese near-misses.

Customers misspell ("wireles earbud") and shorten ("earbuds pro", "braided cable") names, so a name is found

* exactly (any name or alias, case-insensitive, Latin names only as whole words: no "pro" in "problem");
* in English, as a run of words that matches a name, an alias or a two-or-more-word part of one that
  keeps its head word (the last word in letters) and is unique to one product, where words may be
  plural/singular or carry a typo (one edit, two from eight letters on, same first letter), and at least
  one word is spelled right. A lone word only matches with a typo when it is long (6+ letters), keeps its
  first and last letters and is not a common word ("charged" is not "charger"; "case" is never a product);
* in Chinese, for a name of four or more characters, with one adjacent swap or one missing inner character
  (智能表 for 智能手表); from five characters also with one wrong inner character (无线降躁耳机).

Anything that could mean two products is left out: a wrong product is worse than none.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Final

from rapidfuzz import process
from rapidfuzz.distance import OSA

from kefu.nlu.specs import NameSpec

Target = tuple[str, str]  # (entity type, value)
_CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")
_TOKEN = re.compile(r"[a-z0-9]+")
_GAP = re.compile(r"[\s-]*")
# Words customers use that sit one letter away from common product words; never fuzzy-matched.
_COMMON: Final = frozenset({
    "about", "above", "address", "after", "again", "also", "arrive", "arrived", "before", "being", "below",
    "broken", "cancel", "cannot", "change", "changed", "changer", "changes", "charge", "charged",
    "charges", "charter", "coming", "could", "delivery", "doesn't", "during", "either", "every", "thanks",
    "their", "there", "these", "thing", "those", "through", "today", "tomorrow", "until", "using", "watched",
    "watches", "where", "which", "while", "would", "wrong", "order", "please", "return", "refund", "received",
    "shipped", "shipping", "package", "still", "when", "what", "with", "this", "that", "have", "from", "your",
    "just", "been", "will", "they", "them", "then", "than", "into", "only", "some", "time", "days", "week",
    "weeks", "month", "help", "need", "want", "like", "much", "more", "very", "here", "sneaker",
    "sneakers", "tables", "matches", "catch", "batch", "patch", "switch", "sweater", "plugged",
})  # fmt: skip
# 无线耳机 less 线 is 无耳机 "no earphones": a missing second character after a negation changes meaning.
_NEGATIONS: Final = frozenset("无不没非未")


# How a message word matched a catalogue word; a run of words needs one better than a typo.
_TYPO, _LONE_TYPO, _PLURAL, _EXACT = range(4)
_RANK_EXACT, _RANK_NEAR = 0, 1  # on equal length an exact name wins over a near-miss


class NameMatcher:
    """Matches names from a catalogue; all tables are built once, in the constructor."""

    def __init__(self, specs: Iterable[NameSpec]) -> None:
        specs = tuple(specs)
        pairs = {(n.strip().lower(), (s.type, s.value)) for s in specs for n in s.names if n.strip()}
        # Names with Chinese in them are found by their first character, longest first; Latin-only names
        # by the word table below (whole words, so no "pro" in "problem").
        by_char: dict[str, list[tuple[str, Target]]] = {}
        for name, target in sorted(pairs, key=lambda p: (-len(p[0]), p[0])):
            if not name.isascii():
                by_char.setdefault(name[0], []).append((name, target))
        self._exact = {char: tuple(names) for char, names in by_char.items()}
        self._phrases = _phrase_table(specs)
        self._vocab = frozenset(t for key in self._phrases for t in key)
        by_letter: dict[str, list[str]] = {}
        for word in sorted(self._vocab):
            if len(word) >= 4 and word.isalpha():
                by_letter.setdefault(word[0], []).append(word)
        # A typo keeps its first letter, so a word is compared only with catalogue words starting alike.
        self._fuzzy_vocab = {letter: tuple(words) for letter, words in by_letter.items()}
        self._max_words = max((len(k) for k in self._phrases), default=0)
        self._zh = _chinese_variants(specs, {name for name, _ in pairs})

    def find(self, text: str) -> list[tuple[int, int, Target]]:
        """(start, end, (type, value)), longest first, exact before near-miss on equal length: "wireles
        charger" is the wireless charger, not the "charger" inside it."""
        lowered = text.lower()
        found: list[tuple[int, int, int, Target]] = []
        if self._phrases:
            found.extend(self._find_english(lowered))
        if not lowered.isascii():
            found.extend(self._find_exact(lowered))
            found.extend(self._find_chinese(lowered))
        if not found:
            return []
        found.sort(key=lambda f: (f[0] - f[1], f[2], f[0]))
        chosen: list[tuple[int, int, Target]] = []
        for start, end, _, target in found:
            if not any(start < e and s < end for s, e, _ in chosen):
                chosen.append((start, end, target))
        return _merge(lowered, sorted(chosen))

    def _find_exact(self, lowered: str) -> Iterator[tuple[int, int, int, Target]]:
        for i, char in enumerate(lowered):
            for name, target in self._exact.get(char, ()):
                if lowered.startswith(name, i) and word_bounded(lowered, i, i + len(name)):
                    yield i, i + len(name), _RANK_EXACT, target

    def _find_english(self, lowered: str) -> Iterator[tuple[int, int, int, Target]]:
        tokens = [(m.start(), m.end(), m.group()) for m in _TOKEN.finditer(lowered)]
        canon = [self._canonical(t) for _, _, t in tokens]
        i = 0
        while i < len(tokens):
            found = self._window(lowered, tokens, canon, i) if canon[i] is not None else None
            if found is None:
                i += 1
                continue
            n, rank, target = found
            yield tokens[i][0], tokens[i + n - 1][1], rank, target
            i += n

    def _window(
        self, lowered: str, tokens: list[tuple[int, int, str]], canon: list[tuple[str, int] | None], i: int
    ) -> tuple[int, int, Target] | None:
        """The longest run of words from ``i`` that names one product: (length, rank, target)."""
        words: list[tuple[str, int]] = []
        for word in canon[i : i + self._max_words]:
            if word is None:
                break
            words.append(word)
        for n in range(len(words), 0, -1):
            target = self._phrases.get(tuple(w for w, _ in words[:n]))
            if target is None:
                continue
            kinds = [kind for _, kind in words[:n]]
            if max(kinds) < (_LONE_TYPO if n == 1 else _PLURAL):
                continue
            if all(_GAP.fullmatch(lowered, tokens[k][1], tokens[k + 1][0]) for k in range(i, i + n - 1)):
                return n, _RANK_EXACT if min(kinds) == _EXACT else _RANK_NEAR, target
        return None

    def _canonical(self, token: str) -> tuple[str, int] | None:
        """The catalogue word a message word stands for, and how: exactly, by number, or by a typo."""
        if token in self._vocab:
            return token, _EXACT
        for variant in (token[:-1], token[:-2]) if token.endswith("s") else (token + "s",):
            if variant in self._vocab:
                return variant, _PLURAL
        choices = self._fuzzy_vocab.get(token[0])
        if choices is None or len(token) < 4 or not token.isalpha() or token in _COMMON:
            return None
        cutoff = 1 if len(token) < 8 else 2
        best = process.extract(token, choices, scorer=OSA.distance, score_cutoff=cutoff, limit=2)
        if not best or (len(best) > 1 and best[1][1] == best[0][1]):
            return None
        word = best[0][0]
        lone = len(token) >= 6 and word[-1] == token[-1]
        return word, _LONE_TYPO if lone else _TYPO

    def _find_chinese(self, lowered: str) -> Iterator[tuple[int, int, int, Target]]:
        chars = set(lowered)
        for base_chars, pattern, target in self._zh:
            if len(base_chars - chars) <= 1:
                for m in pattern.finditer(lowered):
                    yield m.start(), m.end(), _RANK_NEAR, target


def _phrase_table(specs: tuple[NameSpec, ...]) -> dict[tuple[str, ...], Target]:
    """Word tuples of every Latin name and alias, and of their two-or-more-word parts that keep the head word
    (the last word in letters: "braided cable", "earbuds pro", not "noise cancelling" or "wireless charging"),
    each pointing to one product. A whole name beats a part of another; a part shared by two is dropped."""
    whole: dict[tuple[str, ...], set[Target]] = {}
    parts: dict[tuple[str, ...], set[Target]] = {}
    for spec in specs:
        for name in spec.names:
            if _CJK_RUN.search(name):
                continue
            words = tuple(_TOKEN.findall(name.lower()))
            if not words:
                continue
            whole.setdefault(words, set()).add((spec.type, spec.value))
            head = max((k for k, w in enumerate(words) if w.isalpha()), default=-1)
            for n in range(2, len(words)):
                for k in range(max(0, head - n + 1), min(head, len(words) - n) + 1):
                    parts.setdefault(words[k : k + n], set()).add((spec.type, spec.value))
    table = {k: next(iter(v)) for k, v in parts.items() if len(v) == 1 and k not in whole}
    table.update({k: next(iter(v)) for k, v in whole.items() if len(v) == 1})
    return table


def _chinese_variants(
    specs: tuple[NameSpec, ...], exact_names: set[str]
) -> tuple[tuple[frozenset[str], re.Pattern[str], Target], ...]:
    """One pattern per Chinese name of 4+ characters matching its near-misses (not the name itself)."""
    bases: dict[str, set[Target]] = {}
    for spec in specs:
        for name in spec.names:
            for run in _CJK_RUN.findall(name):
                if len(run) >= 4:
                    bases.setdefault(run, set()).add((spec.type, spec.value))
    owners: dict[str, set[Target]] = {}
    alternatives: dict[str, list[str]] = {}
    for base, targets in bases.items():
        if len(targets) > 1:
            continue
        for variant in _near_misses(base):
            if variant not in exact_names:
                owners.setdefault(variant, set()).update(targets)
                alternatives.setdefault(base, []).append(variant)
    found = []
    for base, variants in alternatives.items():
        kept = [v for v in variants if len(owners[v]) == 1]
        if kept:
            pattern = re.compile("|".join(kept))
            found.append((frozenset(base), pattern, next(iter(bases[base]))))
    return tuple(found)


def _near_misses(base: str) -> list[str]:
    """Regex alternatives for ``base`` with one adjacent swap, (5+ characters) one different inner
    character, or one missing inner character; full-length ones first."""
    out = []
    last = len(base) - 1
    for i in range(last):
        if base[i] != base[i + 1]:
            out.append(re.escape(base[:i] + base[i + 1] + base[i] + base[i + 2 :]))
    if len(base) >= 5:
        for i in range(1, last):
            out.append(f"{re.escape(base[:i])}(?!{re.escape(base[i])})[\u4e00-\u9fff]{re.escape(base[i + 1 :])}")
    for i in range(1, last):
        if not (i == 1 and base[0] in _NEGATIONS):
            out.append(re.escape(base[:i] + base[i + 1 :]))
    return out


def _merge(lowered: str, spans: list[tuple[int, int, Target]]) -> list[tuple[int, int, Target]]:
    """One span for "智能手表S3" or "smart watch s3" where two names of the same product touch."""
    merged: list[tuple[int, int, Target]] = []
    for start, end, target in spans:
        if merged and merged[-1][2] == target and _GAP.fullmatch(lowered, merged[-1][1], start):
            merged[-1] = (merged[-1][0], end, target)
        else:
            merged.append((start, end, target))
    return merged


def word_bounded(text: str, start: int, end: int) -> bool:
    """Latin names and keywords never match inside a longer word ("pro" in "problem"); Chinese has no spaces."""
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    first, last = text[start], text[end - 1]
    if first.isascii() and first.isalnum() and before.isascii() and before.isalnum():
        return False
    return not (last.isascii() and last.isalnum() and after.isascii() and after.isalnum())
