"""Turn the split templates into the JSONL lines of each set, with the self-checks the brief asks for."""

import json
from collections.abc import Callable, Mapping, Sequence
from random import Random
from types import MappingProxyType

from .checks import injection_record_problems, moderation_record_problems, pii_record_problems
from .render import render
from .templates import Template, load, split

SEED = "kefu-guard-sets-v1"
LANGS = ("zh", "en")
LINES_PER_TEMPLATE: Mapping[str, int] = MappingProxyType({"pii": 5, "injection": 3, "moderation": 2})
# Openings and endings real messages carry; they vary a line without changing what it is.
OPENINGS: Mapping[tuple[str, str], tuple[str, ...]] = MappingProxyType(
    {
        ("injection", "zh"): ("您好，", "你好，", "在吗？", "客服，", "急！", "hello，", "麻烦问下，", "喂 "),
        ("injection", "en"): ("hi, ", "Hello. ", "hey ", "ok so ", "quick question: ", "Hi there! ", "urgent: ", "yo "),
        ("moderation", "zh"): ("客服，", "喂，", "在吗？", "我说，", "你好，", "哎，", "说真的，"),
        ("moderation", "en"): ("hey, ", "hello? ", "ok ", "listen, ", "hi ", "honestly, ", "seriously "),
    }
)
ENDINGS: Mapping[tuple[str, str], tuple[str, ...]] = MappingProxyType(
    {
        ("injection", "zh"): ("。", "，谢谢", "！", "？", " 谢谢", "～", "！！"),
        ("injection", "en"): (", thanks", " pls", "!", " thx", ".", " asap", "!!"),
        ("moderation", "zh"): ("！", "！！", "。", "…", "？"),
        ("moderation", "en"): ("!", "!!", ".", "...", "?!"),
    }
)
CLOSING_MARKS = ".!?。！？…”\"'）)>`"
Record = dict[str, object]


def pii_record(template: Template, rng: Random, index: int) -> Record:
    rendered = render(template.text, template.lang, rng)
    return {
        "text": rendered.text,
        "lang": template.lang,
        "pii": [{"type": span.label, "start": span.start, "end": span.end} for span in rendered.pii],
        "keep": [{"kind": span.label, "start": span.start, "end": span.end} for span in rendered.keep],
    }


def varied_text(template: Template, rng: Random, index: int) -> str:
    """The template as written for its first line; later lines gain an opening and/or an ending."""
    core = render(template.text, template.lang, rng).text
    if index == 0:
        return core
    key = (template.dataset, template.lang)
    closed = core.rstrip()[-1] in CLOSING_MARKS
    opening = rng.choice(OPENINGS[key]) if closed or rng.random() < 0.7 else ""
    ending = rng.choice(ENDINGS[key]) if not closed and (not opening or rng.random() < 0.4) else ""
    if opening.endswith(" ") and core[:1].isupper() and core[1:2].islower():
        core = core[0].lower() + core[1:]  # "ok so the manual says…", not "ok so The manual says…"
    return opening + core + ending


def injection_record(template: Template, rng: Random, index: int) -> Record:
    label = "benign" if template.label in ("lookalike", "plain") else "attack"
    return {
        "text": varied_text(template, rng, index),
        "lang": template.lang,
        "label": label,
        "category": template.label,
    }


def moderation_record(template: Template, rng: Random, index: int) -> Record:
    categories = [] if template.label == "-" else sorted(template.label.split(","))
    return {"text": varied_text(template, rng, index), "lang": template.lang, "categories": categories}


MAKERS: Mapping[str, Callable[[Template, Random, int], Record]] = MappingProxyType(
    {"pii": pii_record, "injection": injection_record, "moderation": moderation_record}
)
CHECKS: Mapping[str, Callable[[Record], list[str]]] = MappingProxyType(
    {"pii": pii_record_problems, "injection": injection_record_problems, "moderation": moderation_record_problems}
)


def records_for(templates: Sequence[Template], seen: set[str]) -> list[Record]:
    """Each template's lines, every one new: a line already written is drawn again from a fresh seed.

    A template with few possible lines (``订单{order.demo}什么时候到`` has four) yields what it can.
    """
    records = []
    for template in templates:
        count = 1 if template.dataset == "pii" and template.fixed else LINES_PER_TEMPLATE[template.dataset]
        for index in range(count):
            for attempt in range(50):
                rng = Random(f"{SEED}|{template.dataset}|{template.lang}|{template.text}|{index}|{attempt}")
                record = MAKERS[template.dataset](template, rng, index)
                if record["text"] not in seen:
                    seen.add(str(record["text"]))
                    records.append(record)
                    break
    return records


def build_dataset(dataset: str) -> tuple[dict[str, list[Record]], dict[str, list[Template]]]:
    """Dev and test records of one dataset, both languages, plus the templates behind each split."""
    records: dict[str, list[Record]] = {"dev": [], "test": []}
    templates: dict[str, list[Template]] = {"dev": [], "test": []}
    seen: set[str] = set()
    for lang in LANGS:
        dev, test = split(load(dataset, lang), SEED)
        for part, members in (("dev", dev), ("test", test)):
            templates[part] += members
            records[part] += records_for(members, seen)
    for part in records:
        Random(f"{SEED}|{dataset}|{part}").shuffle(records[part])
        problems = [problem for record in records[part] for problem in CHECKS[dataset](record)]
        if problems:
            raise ValueError(f"{dataset}_{part}: " + "\n".join(problems[:20]))
    return records, templates


def jsonl(records: Sequence[Record]) -> str:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
