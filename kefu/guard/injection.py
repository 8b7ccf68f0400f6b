"""Prompt-injection and jailbreak detection for customer messages and for content shown to the model as data.

The text is normalised (``kefu.guard.normalize``) and, separately, decoded where it hides base64, hex,
URL-encoding, ROT13, reversed text or leetspeak; the weighted pattern families of
``data/injection.yaml`` run over each form, and a character n-gram model (``injection_model``) gives a
second opinion on the normalised text. A message's score is the noisy-OR of the strongest hit of each rule
and of the model, ``1 - prod(1 - w)``: one strong signal flags on its own, several weak ones flag together,
and a weak one alone (a "System:" line, "from now on you...", "developer mode") does not. The model tips a
borderline message and flags one alone only when it is very sure (see ``MODEL_FLOOR``/``MODEL_WEIGHT``);
two rules reading the same words count once.

An instruction found only after decoding, or only after undoing an obfuscation (zero-width splits,
homoglyphs, spaced-out letters), adds the ``encoded`` category and raises the score: plain customers do not
write that way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from kefu.guard.injection_model import MODEL_PATH, InjectionModel
from kefu.guard.injection_patterns import CATEGORIES, DEFAULT_PATH, Rule, load_rules
from kefu.guard.normalize import decoded_variants, normalize_marked

SOURCES = ("customer", "document")
_ENCODED_BONUS = 0.35  # an instruction that was hidden by encoding
_OBFUSCATED_BONUS = 0.25  # an instruction that was hidden by look-alike or invisible characters
_MIN_HIDDEN_WEIGHT = 0.3  # a weak hit found after decoding is not evidence of hiding
# The model's probability p counts as MODEL_WEIGHT * (p - MODEL_FLOOR) / (1 - MODEL_FLOOR) above the floor.
# Chosen by cross-validation over hand-written sets (each scored by a model trained without it): the model
# flags alone above p = 0.85, where 1 benign message in 350 scored; below the floor it has no say.
MODEL_FLOOR = 0.6
_MODEL_MIN_CHARS = 30
MODEL_WEIGHT = 0.8
_MODEL_CATEGORY = "override"  # what a message only the model flags is taken for: instructions to the bot
_MAX_EVIDENCE = 3
_EVIDENCE_CHARS = 60
_LATIN_WORD = re.compile(r"[a-z]{2,}")
# Where a clause ends, for a rule's ``unless``: sentence punctuation and line breaks, not the point in "$0.01".
_CLAUSE_END = re.compile(r"[!?;。！？；\n]|\.(?!\d)")


@dataclass(frozen=True)
class InjectionVerdict:
    flagged: bool
    score: float  # 0..1
    categories: tuple[str, ...]  # subset of: override, roleplay, extraction, hidden, encoded, agency
    evidence: tuple[str, ...] = ()  # short matched fragments, for the audit event (≤ 3, ≤ 60 chars each)


@dataclass(frozen=True, slots=True)
class _Hit:
    rule: Rule
    weight: float
    fragment: str
    form: int  # which text the rule matched: 0 the normalised text, 1.. a decoded variant
    start: int
    end: int

    def overlaps(self, other: _Hit) -> bool:
        """Most of the shorter span lies inside the other: two rules reading the same words."""
        if self.form != other.form:
            return False
        shared = min(self.end, other.end) - max(self.start, other.start)
        return shared * 2 > min(self.end - self.start, other.end - other.start)


class InjectionDetector:
    """Scores text for prompt injection; categories and evidence are reported for flagged verdicts only."""

    def __init__(
        self, threshold: float = 0.5, *, patterns: Path = DEFAULT_PATH, model: Path | None = MODEL_PATH
    ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError("threshold must lie in (0, 1]")
        self._threshold = threshold
        self._rules = load_rules(patterns)
        self._model = InjectionModel.load(model) if model is not None else None
        anchors = {anchor for rule in self._rules for anchor in rule.anchors | rule.requires}
        # Latin anchors are word beginnings ("ignor", "instruct"): looked up among the text's word prefixes,
        # one set intersection instead of hundreds of substring searches. Others (CJK, "<|") are searched.
        self._word_anchors = frozenset(a for a in anchors if a.isascii() and a.isalpha() and a.islower())
        self._other_anchors = tuple(sorted(anchors - self._word_anchors))
        self._ascii_anchors = tuple(a for a in self._other_anchors if a.isascii())
        # CJK anchors are looked up among the text's characters and character pairs (one set each).
        cjk = [a for a in self._other_anchors if not a.isascii()]
        self._cjk_singles = frozenset(a for a in cjk if len(a) == 1)
        self._cjk_pairs = frozenset(a for a in cjk if len(a) == 2)
        self._cjk_longer = tuple(a for a in cjk if len(a) > 2)
        self._longest_word_anchor = max(map(len, self._word_anchors), default=0)

    def check(self, text: str, *, source: str = "customer") -> InjectionVerdict:
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
        document = source == "document"
        marked = normalize_marked(text)
        hits: dict[str, _Hit] = {}
        self._scan(marked.text, document, hits, form=0)
        for form, variant in enumerate(decoded_variants(text, normalized=marked.text), start=1):
            self._scan(variant, document, hits, form=form)
        weights = _independent_weights(list(hits.values()))
        hidden_by_encoding = any(hit.form > 0 and hit.weight >= _MIN_HIDDEN_WEIGHT for hit in hits.values())
        hidden_by_obfuscation = marked.obfuscated and max(weights, default=0.0) >= _MIN_HIDDEN_WEIGHT
        if hidden_by_encoding:
            weights.append(_ENCODED_BONUS)
        if hidden_by_obfuscation:
            weights.append(_OBFUSCATED_BONUS)
        score = _noisy_or(weights)
        # A flagged message needs no second opinion. Documents (written unlike chat messages, which the model
        # learned from) get one only where a rule has already spoken.
        model_weight = 0.0
        if score < self._threshold and (hits or not document):
            model_weight = self._model_weight(marked.text)
            score = _noisy_or([*weights, model_weight])
        if score < self._threshold:
            return InjectionVerdict(False, score, ())

        found = {hit.rule.category for hit in hits.values()} or {_MODEL_CATEGORY}
        if hidden_by_encoding or hidden_by_obfuscation:
            found.add("encoded")
        strongest = sorted(hits.values(), key=lambda hit: hit.weight, reverse=True)
        evidence: list[str] = []
        for hit in strongest:
            if hit.fragment not in evidence and len(evidence) < _MAX_EVIDENCE:
                evidence.append(hit.fragment)
        if model_weight > 0.0 and len(evidence) < _MAX_EVIDENCE:
            evidence.append(f"n-gram model {model_weight:.2f}")
        return InjectionVerdict(True, score, tuple(c for c in CATEGORIES if c in found), tuple(evidence))

    def _model_weight(self, normalized: str) -> float:
        """The model's say: nothing below ``MODEL_FLOOR``, up to ``MODEL_WEIGHT`` at certainty."""
        # A few words give a character n-gram model nothing to go on ("refund" scored 0.67): rules only.
        if self._model is None or len(normalized) < _MODEL_MIN_CHARS:
            return 0.0
        probability = self._model.probability(normalized)
        return max(0.0, MODEL_WEIGHT * (probability - MODEL_FLOOR) / (1.0 - MODEL_FLOOR))

    def _present_anchors(self, text: str) -> set[str]:
        longest = self._longest_word_anchor
        prefixes = {
            word[:end] for word in set(_LATIN_WORD.findall(text)) for end in range(2, min(len(word), longest) + 1)
        }
        present = prefixes & self._word_anchors
        present.update(anchor for anchor in self._ascii_anchors if anchor in text)
        if not text.isascii():
            pairs = {text[i : i + 2] for i in range(len(text) - 1)}
            present |= self._cjk_singles.intersection(text)
            present |= self._cjk_pairs & pairs
            present.update(a for a in self._cjk_longer if a[:2] in pairs and a in text)
        return present

    def _scan(self, text: str, document: bool, hits: dict[str, _Hit], *, form: int) -> None:
        present = self._present_anchors(text)
        if not present:
            return
        for rule in self._rules:
            weight = rule.doc if document else rule.weight
            if weight <= 0.0 or rule.anchors.isdisjoint(present):
                continue
            if rule.requires and rule.requires.isdisjoint(present):
                continue
            earlier = hits.get(rule.name)
            if earlier is not None and earlier.weight >= weight:
                continue  # a rule counts once, whichever form of the text it matched
            match = rule.regex.search(text)
            if match is not None and rule.unless is not None and rule.unless.search(_clause(text, match)):
                continue
            if match is not None:
                fragment = " ".join(match.group().split())[:_EVIDENCE_CHARS]
                hits[rule.name] = _Hit(rule, weight, fragment, form, match.start(), match.end())


def _clause(text: str, match: re.Match[str]) -> str:
    """The clause (sentence or line) holding the match, the match included."""
    start = 0
    for end in _CLAUSE_END.finditer(text, 0, match.start()):
        start = end.end()
    after = _CLAUSE_END.search(text, match.end())
    return text[start : after.end() if after is not None else len(text)]


def _independent_weights(hits: list[_Hit]) -> list[float]:
    """Each hit's weight, except one that reads the same words as a stronger hit: evidence counts once."""
    counted: list[_Hit] = []
    for hit in sorted(hits, key=lambda h: h.weight, reverse=True):
        if not any(hit.overlaps(stronger) for stronger in counted):
            counted.append(hit)
    return [hit.weight for hit in counted]


def _noisy_or(weights: list[float]) -> float:
    remaining = 1.0
    for weight in weights:
        if weight <= 0.0:
            continue
        remaining *= 1.0 - weight
    return round(1.0 - remaining, 4)
