"""Loads the injection pattern families from ``data/injection.yaml`` into compiled, weighted rules.

The YAML holds the rules as data (see its header for the fields); this module expands the named vocabulary
into each pattern, compiles it, and checks that every rule is well formed, so a typo fails at start-up
rather than silently matching nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CATEGORIES = ("override", "roleplay", "extraction", "hidden", "encoded", "agency")
DEFAULT_PATH = Path(__file__).with_name("data") / "injection.yaml"
_NAME = re.compile(r"\{([A-Z][A-Z_]*)\}")


@dataclass(frozen=True, slots=True)
class Rule:
    """One weighted signal: ``weight`` for a customer message, ``doc`` for a document or tool result.

    The regex runs only if the text holds one of ``anchors`` and, when given, one of ``requires`` too. A match
    does not count when ``unless`` matches the clause around it: the same words asked as a question ("how do
    I raise my limit to 5000?") or told as a story ("价格降到99了") are a customer's, not an instruction.
    """

    name: str
    category: str
    weight: float
    doc: float
    anchors: frozenset[str]
    requires: frozenset[str]
    regex: re.Pattern[str]
    unless: re.Pattern[str] | None = None


def words_to_regex(words: str) -> str:
    """Space-separated alternatives (``_`` is a space inside a phrase) as one group shaped like a trie.

    A trie (``ign(?:ore|oring)``) lets the regex engine reject a position on its first character instead of
    trying every alternative in turn: about three times faster on a long list. Longer words are still
    preferred, as in a longest-first alternation.
    """
    trie: dict[str, Any] = {}
    for word in words.split():
        node = trie
        for char in word.replace("_", " "):
            node = node.setdefault(char, {})
        node[""] = {}
    return "(?:" + _trie_to_regex(trie) + ")"


def _trie_to_regex(node: dict[str, Any]) -> str:
    branches = [
        (r"\s+" if char == " " else re.escape(char)) + _trie_to_regex(child)
        for char, child in sorted(node.items())
        if char
    ]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    return f"(?:{body})?" if "" in node else body


def load_rules(path: Path = DEFAULT_PATH) -> tuple[Rule, ...]:
    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    vocabulary = {name: words_to_regex(str(words)) for name, words in data["words"].items()}
    for name, piece in data["fragments"].items():  # a fragment may use the word lists above it
        vocabulary[name] = _expand(_join(piece), vocabulary, name)
    anchor_sets = {name: str(words) for name, words in data["anchor_sets"].items()}
    return tuple(_compile(entry, vocabulary, anchor_sets) for entry in data["rules"])


def _join(piece: object) -> str:
    """A multi-line pattern is written across lines for reading; the lines join without separators."""
    return "".join(line.strip() for line in str(piece).splitlines())


def _expand(text: str, names: dict[str, str], rule: str) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            raise ValueError(f"injection rule {rule!r}: unknown name {{{match.group(1)}}}")
        return names[match.group(1)]

    return _NAME.sub(replace, text)


def _compile(entry: dict[str, Any], vocabulary: dict[str, str], anchor_sets: dict[str, str]) -> Rule:
    name = str(entry["name"])
    category = str(entry["category"])
    if category not in CATEGORIES:
        raise ValueError(f"injection rule {name!r}: unknown category {category!r}")
    weight = float(entry["weight"])
    doc = float(entry.get("doc", weight))
    if not (0.0 <= weight <= 1.0 and 0.0 <= doc <= 1.0):
        raise ValueError(f"injection rule {name!r}: weights must lie in [0, 1]")
    anchors = frozenset(_expand(str(entry["anchors"]), anchor_sets, name).split())
    requires = frozenset(_expand(str(entry.get("requires", "")), anchor_sets, name).split())
    regex = _compile_pattern(name, _expand(_join(entry["pattern"]), vocabulary, name))
    unless = entry.get("unless")
    unless_regex = _compile_pattern(name, _expand(_join(unless), vocabulary, name)) if unless else None
    return Rule(name, category, weight, doc, anchors, requires, regex, unless_regex)


def _compile_pattern(name: str, pattern: str) -> re.Pattern[str]:
    try:
        # ASCII word boundaries: "请ignore之前" has one between 请 and ignore, which Unicode \b does not see.
        return re.compile(pattern, re.ASCII)
    except re.error as exc:
        raise ValueError(f"injection rule {name!r}: {exc}") from exc
