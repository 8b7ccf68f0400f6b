"""Kefu's built-in moderation lexicons (``zh.yaml``, ``en.yaml`` beside this file) and their compiler.

A lexicon entry is a term ("傻逼", "fuck you") or a template over the file's word groups ("{you} {adverb*}
{insult_noun}", "{zh_you}{zh_link*}{zh_insult}"): insults count as abuse only when aimed at someone, so "垃圾产品"
and "this is crap service" stay clean. An entry starting with ``^`` counts only as the whole message ("Idiot!"),
one starting with ``|`` only as a clause of its own between punctuation ("蠢货，赶紧转人工", "…, moron!"), so
"我真是个蠢货" stays clean. An entry listed under several categories counts for all of them ("what are you
wearing": abuse and sexual). The ``allow`` list holds clean look-alikes ("杀毒软件", "shoot you an email"),
blanked out before matching.

All entries of both languages compile into two regexes (entries led by a Latin letter, the others), each a trie
whose alternatives all start with a plain character or set, which the regex engine tests at C speed; both run
once over the normalised text. Compiling takes most of a second, so it happens once per process.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from types import MappingProxyType
from typing import Any

import yaml

from kefu.guard.normalize import normalize

CATEGORIES = ("abuse", "sexual", "violence", "self_harm", "illegal", "hate")
LANGUAGES = ("zh", "en")

# --- normalisation ----------------------------------------------------------------------------------------
# On top of the guard's shared ``normalize`` (width, case, invisible characters, look-alike letters, spaced-out
# words), what evading a word filter needs undone: anything put between two Chinese characters, letters spaced
# out with symbols, long runs of one letter.
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# What people put between the characters of a word to slip past a filter; Chinese punctuation (，。！？) and
# ASCII , ! ? ; : are kept: they really separate words.
_GAP = r"[\s*.\-_/\\|~+^#'\"=<>()\[\]{}·•…\u2600-\u27bf\U0001f300-\U0001faff]+"
_CJK_GAP = re.compile(rf"(?<=[{_CJK}]){_GAP}(?=[{_CJK}a-z0-9])|(?<=[a-z0-9]){_GAP}(?=[{_CJK}])")
_SPACED_LETTERS = re.compile(r"(?<![a-z0-9])(?:[a-z][ .\-_*]){3,}[a-z](?![a-z0-9])")
_LONG_RUN = re.compile(rf"([^{_CJK}])\1{{2,}}")  # "fuuuuck", "!!!!!", "1111" -> two: bounds the backtracking


def normalise(text: str) -> str:
    """The shared normal form, then gaps inside Chinese words ("傻*逼", "傻 X") and spaced-out Latin letters
    ("f-u-c-k") closed, long runs shortened ("fuuuuck")."""
    text = _CJK_GAP.sub("", normalize(text))
    text = _SPACED_LETTERS.sub(lambda m: re.sub(r"[^a-z]", "", m.group(0)), text)
    text = _LONG_RUN.sub(r"\1\1", text)
    return re.sub(r"\s+", " ", text)


# --- compiling the lexicons ---------------------------------------------------------------------------------
# Leetspeak and masking: each Latin letter also matches its usual stand-ins ("k1ll", "p0rn", "sh*t").
_STAND_INS = MappingProxyType(dict(a="4@*", b="8", e="3*", g="9", i="1!|*", l="1|", o="0*", s="5$", t="7+", u="v*"))
_WORD_GAP = r"[\s\-_.,]{1,3}"  # between the words of an English entry: "fuck you", "fuck-you", "self-harm"
_START = r"(?<![a-z0-9].)"  # after an entry's first character: no letter or digit before it
_AFTER = r"(?![a-z0-9'])"
_TEMPLATE_PART = re.compile(r"\{(\w+)([?*]?)\}|([^{]+)")
_LATIN_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_HAS_CJK = re.compile(f"[{_CJK}]")


def _keyed(term: str) -> str:
    """The term as the trie stores it: Latin letters inside a Chinese term are upper-cased, meaning "this
    letter only" (no stand-ins: "4片装" is not "a片")."""
    term = normalise(term).strip()
    return term.upper() if _HAS_CJK.search(term) else term


def _letter(char: str) -> str:
    stand_ins = _STAND_INS.get(char, "")
    return f"[{re.escape(char + stand_ins)}]" if stand_ins else re.escape(char)


def _atom(char: str, *, first: bool = False) -> str:
    if "a" <= char <= "z":
        # A doubled letter too (runs are cut to two). A first letter is "[k][k]?", not "[k]{1,2}": an
        # alternative that starts with a plain set is skipped at C speed; the others take the shorter form.
        if first:
            return _letter(char) + _START + _letter(char) + "?"
        return _letter(char) + "{1,2}"
    if "A" <= char <= "Z":
        return re.escape(char.lower()) + (_START if first else "")
    if char in " -":
        return _WORD_GAP
    if char == "'":
        return "'?"
    return re.escape(char) + (_START if first and char in _LATIN_ALNUM else "")


Tail = Callable[[], str]  # what follows a key in the trie; called once per place it is written


class _Trie:
    """Many alternatives as one regex that shares their prefixes, so the engine tries few branches per
    position. Longer continuations come before a key's end: "kill yourself" wins over "kill you"."""

    def __init__(self) -> None:
        self.root: dict[str, Any] = {}

    def add(self, key: str, tail: Tail) -> None:
        node = self.root
        for char in key:
            node = node.setdefault(char, {})
        node.setdefault("", []).append(tail)

    def render(self, *, latin: bool) -> str:
        """The keys that start with a Latin letter (``latin``), or the others. The top level is left unwrapped:
        each of its alternatives starts with a character or a set, which the engine checks at C speed."""
        keys = [k for k in self.root if k and ("a" <= k <= "z") == latin]
        return "|".join(self._branches({k: self.root[k] for k in keys}, first=True)) if keys else "(?!)"

    def group(self) -> str:
        """All keys as one group, the empty key included."""
        return f"(?:{self._render(self.root)})" if self.root else "(?!)"

    def _branches(self, node: dict[str, Any], *, first: bool = False) -> list[str]:
        branches = [_atom(char, first=first) + self._render(node[char]) for char in sorted(k for k in node if k)]
        ends = [tail() for tail in node.get("", [])]
        return branches + sorted(ends, key=lambda end: end == "")  # an empty end (the key alone) goes last

    def _render(self, node: dict[str, Any]) -> str:
        branches = self._branches(node)
        return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"


def _alternation(members: Iterable[str]) -> str:
    trie = _Trie()
    for member in members:
        trie.add(member, lambda: "")
    return trie.group()


def _plain_end(term: str) -> str:
    if term[-1] in _LATIN_ALNUM:  # an English word may take a plural
        return ("s?" if term[-1].isalpha() else "") + _AFTER
    return _AFTER if term[-1].lower() in _LATIN_ALNUM else ""


@dataclass(frozen=True)
class _Entry:
    categories: tuple[str, ...]
    term: str | None  # None for a template: the matched text is reported instead


@dataclass(frozen=True)
class _Compiled:
    patterns: tuple[re.Pattern[str], ...]  # Latin-led entries, the others
    allow: tuple[re.Pattern[str], ...]  # clean look-alikes, blanked out before matching
    whole: re.Pattern[str]  # entries that count only as the whole message
    clauses: re.Pattern[str]  # entries that count only as a clause of their own (``fullmatch`` per clause)
    entries: Mapping[str, _Entry]  # by the name of the empty group that ends each entry


# A clause: what stands between punctuation. "蠢货，赶紧转人工" and "get me a human, moron!" each hold an insult
# standing alone; only short clauses are tried against the clause entries.
_CLAUSE = re.compile(r"[^,.!?;:~…。、\n]+")
_CLAUSE_MAX = 40


class _LexiconBuilder:
    """Collects the entries of the lexicon files into one trie. Every entry ends in a named empty group, so
    that ``match.lastgroup`` tells which entry matched; a template's first group is spread over the trie's
    first characters, so that every alternative of the final regex starts with a plain character. A template
    listed under several categories is one entry with all of them (a term likewise)."""

    def __init__(self) -> None:
        self.trie = _Trie()
        self.latin_templates: dict[str, tuple[str, list[Tail]]] = {}  # by head: its pattern, the templates' rest
        self.whole: list[Tail] = []  # entries that count only as the whole message: "Idiot!", "白痴"
        self.clauses: list[Tail] = []  # entries that count as a clause of their own: "蠢货，…", "…, moron"
        self.terms: dict[str, set[str]] = {}
        self.patterns: dict[tuple[str, str], set[str]] = {}  # categories per (language, template)
        self.allow = _Trie()
        self.entries: dict[str, _Entry] = {}

    def add_file(self, language: str, data: Mapping[str, Any]) -> None:
        unknown = sorted(set(data) - {*CATEGORIES, "groups", "allow"})
        if unknown:
            raise ValueError(f"lexicon {language}: unknown keys {unknown}")
        groups = {name: [normalise(m) for m in members] for name, members in (data.get("groups") or {}).items()}
        for raw in data.get("allow") or ():
            term = _keyed(raw)
            self.allow.add(term, lambda term=term: _plain_end(term))  # type: ignore[misc]
        for category in CATEGORIES:
            for raw in data.get(category) or ():
                if raw[:1] in ("^", "|") or "{" in raw:
                    self._add_pattern(category, raw, groups, language)
                else:
                    self.add_term(category, raw)

    def add_term(self, category: str, raw: str) -> None:
        term = _keyed(raw)
        if term and term not in self.terms:
            self.terms[term] = set()
            self.trie.add(term, lambda: _plain_end(term) + self._entry(tuple(sorted(self.terms[term])), term.lower()))
        if term:
            self.terms[term].add(category)

    def _entry(self, categories: Iterable[str], term: str | None) -> str:
        name = f"e{len(self.entries)}"
        self.entries[name] = _Entry(tuple(sorted(categories)), term)
        return f"(?P<{name}>)"

    def _add_pattern(self, category: str, raw: str, groups: Mapping[str, list[str]], language: str) -> None:
        categories = self.patterns.get((language, raw))
        if categories is not None:  # written once, under each of its categories
            categories.add(category)
            return
        categories = self.patterns[(language, raw)] = {category}
        gap = _WORD_GAP if language == "en" else r"\s?"
        if raw[0] in ("^", "|"):
            body = self._sequence(raw[1:].split(" "), groups, gap)
            kind = self.whole if raw[0] == "^" else self.clauses
            kind.append(lambda: body + self._entry(categories, None))
        else:
            self._add_template(categories, raw, groups, language)

    def _add_template(self, categories: set[str], raw: str, groups: Mapping[str, list[str]], language: str) -> None:
        latin = language == "en"
        gap = _WORD_GAP if latin else r"\s?"
        tokens = raw.split(" ")
        head, *parts = list(_TEMPLATE_PART.finditer(tokens[0]))
        if head.group(2):
            raise ValueError(f"lexicon template {raw!r} starts with an optional group")
        end = "".join(self._part(groups, p) for p in parts)
        if len(tokens) > 1:
            end += gap + self._sequence(tokens[1:], groups, gap)
        end += f"s?{_AFTER}" if latin else ""
        members = groups[head.group(1)] if head.group(1) else [normalise(head.group(3))]
        by_first: dict[str, list[str]] = {}
        for member in members:
            by_first.setdefault(member[0], []).append(member[1:])
        if not latin:  # spread over the trie: every Chinese alternative starts with a literal character
            for first, rests in by_first.items():
                self.trie.add(first, lambda rests=rests: _alternation(rests) + end + self._entry(categories, None))  # type: ignore[misc]
            return
        # One alternative per head (the first group or word), shared by the templates that start with it, that
        # starts with the set of the head's first letters; a look back at the letter taken picks the rest of the
        # member, so the long end is written once and the engine tries each head once per position.
        key = head.group(0)
        if key not in self.latin_templates:
            firsts = sorted(by_first)
            start = "[" + "".join(re.escape(c + _STAND_INS.get(c, "")) for c in firsts) + "]" + _START
            heads = "|".join(f"(?<={_letter(c)}){_letter(c)}?{_alternation(by_first[c])}" for c in firsts)
            self.latin_templates[key] = (f"{start}(?:{heads})", [])
        self.latin_templates[key][1].append(lambda: end + self._entry(categories, None))

    def _sequence(self, tokens: Sequence[str], groups: Mapping[str, list[str]], gap: str) -> str:
        """Words separated by ``gap``; a word that is only an optional group takes its gap with it."""
        rendered = []
        for i, token in enumerate(tokens, start=1):
            token_parts = list(_TEMPLATE_PART.finditer(token))
            last = i == len(tokens)
            only = token_parts[0] if len(token_parts) == 1 and token_parts[0].group(2) else None
            if only is not None and not last:
                repeat = "?" if only.group(2) == "?" else "{0,2}"
                rendered.append(f"(?:{self._group(groups, only.group(1))}{gap}){repeat}")
            else:
                rendered.append("".join(self._part(groups, p) for p in token_parts) + ("" if last else gap))
        return "".join(rendered)

    def _part(self, groups: Mapping[str, list[str]], part: re.Match[str]) -> str:
        if part.group(3) is not None:
            return _alternation([normalise(part.group(3))])
        repeat = {"": "", "?": "?", "*": "{0,2}"}[part.group(2)]
        return f"(?:{self._group(groups, part.group(1))}){repeat}"

    @staticmethod
    def _group(groups: Mapping[str, list[str]], name: str) -> str:
        if name not in groups:
            raise ValueError(f"lexicon template uses an unknown group {{{name}}}")
        return _alternation(groups[name])

    def compile(self) -> _Compiled:
        """Two regexes each: one for entries that start with a Latin letter, one for the others (Chinese), whose
        first characters are all literals, so the engine jumps between the places where one occurs."""
        templates = [f"{head}(?:{'|'.join(rest() for rest in rests)})" for head, rests in self.latin_templates.values()]
        latin = "|".join([self.trie.render(latin=True), *templates])
        whole = "|".join(entry() for entry in self.whole) or "(?!)"
        clauses = "|".join(entry() for entry in self.clauses) or "(?!)"
        return _Compiled(
            # Every Latin entry starts where no letter or digit stands before it: said once in front, the engine
            # leaves the middle of a word at once instead of trying each entry there.
            patterns=(re.compile(f"(?<![a-z0-9])(?:{latin})"), re.compile(self.trie.render(latin=False))),
            allow=tuple(re.compile(self.allow.render(latin=side)) for side in (True, False)),
            whole=re.compile(rf"[\W_]*(?:{whole})[\W_]*\Z"),
            clauses=re.compile(rf"[ \x00]*(?:{clauses})[ \x00]*"),
            entries=MappingProxyType(self.entries),
        )


@functools.lru_cache(maxsize=8)
def _compile(extra_terms: tuple[tuple[str, tuple[str, ...]], ...]) -> _Compiled:
    """The lexicons compiled with the operator's terms; once per process for the same terms (compiling takes
    most of a second and the result never changes)."""
    builder = _LexiconBuilder()
    for language in LANGUAGES:
        builder.add_file(language, load_lexicon(language))
    for category, terms in extra_terms:
        for term in terms:
            builder.add_term(category, term)
    return builder.compile()


def load_lexicon(language: str) -> dict[str, Any]:
    text = files(__name__).joinpath(f"{language}.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"lexicon {language}: expected a mapping")
    return data


def _short_clauses(text: str) -> Iterator[re.Match[str]]:
    return (c for c in _CLAUSE.finditer(text) if c.end() - c.start() <= _CLAUSE_MAX)


def _blank(match: re.Match[str]) -> str:
    return "\x00" * len(match.group(0))


def _masked(text: str) -> bool:
    """A match made mostly of stand-ins ("7175", "5b", "****") is a number, a code or a blank, not a word."""
    letters = sum(1 for c in text if c.isalpha())
    length = sum(1 for c in text if not c.isspace())
    return letters < (0.4 if length >= 6 else 0.6) * length


class Lexicon:
    """The built-in Chinese and English lexicons, compiled, plus the operator's own terms per category."""

    def __init__(self, extra_terms: Mapping[str, Sequence[str]] | None = None) -> None:
        for category in extra_terms or {}:
            if category not in CATEGORIES:
                raise ValueError(f"unknown moderation category {category!r}; known: {', '.join(CATEGORIES)}")
        self._compiled = _compile(tuple((c, tuple(terms)) for c, terms in sorted((extra_terms or {}).items())))

    def prepare(self, text: str) -> str:
        """The text as the lexicon reads it: normalised, its clean look-alikes blanked out (NUL characters)."""
        clean = normalise(text)
        for allowed in self._compiled.allow:
            clean = allowed.sub(_blank, clean)
        return clean

    def scan(self, text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The categories found in ``text`` (sorted) and the terms that matched (a template reports the words it
        matched, at most 40 characters; never the whole text)."""
        return self.scan_prepared(self.prepare(text))

    def scan_prepared(self, clean: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """``scan`` of a text that ``prepare`` has read."""
        compiled = self._compiled
        whole = compiled.whole.match(clean)
        found = [
            *(m for p in compiled.patterns for m in p.finditer(clean)),
            *filter(None, (compiled.clauses.fullmatch(clean, *c.span()) for c in _short_clauses(clean))),
            *([whole] if whole else []),
        ]
        categories: set[str] = set()
        matches: dict[str, None] = {}
        for match in found:
            if match.lastgroup is None or _masked(match.group(0)):
                continue
            entry = compiled.entries[match.lastgroup]
            categories.update(entry.categories)
            matches[entry.term or match.group(0).strip(" \x00!?.,")[:40]] = None
        return tuple(sorted(categories)), tuple(matches)[:10]
