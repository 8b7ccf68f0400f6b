"""Counts per file, language, type and category, and the minimums the brief sets for them."""

from collections import Counter
from collections.abc import Mapping, Sequence

from .checks import KEEP_KINDS, MODERATION_CATEGORIES, PII_TYPES
from .templates import Template

Record = dict[str, object]
Parts = Mapping[str, Sequence[Record]]


def labels(record: Record, key: str, field: str) -> list[str]:
    spans = record[key]
    assert isinstance(spans, list)
    return [str(span[field]) for span in spans]


def pii_counts(records: Sequence[Record]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for record in records:
        pii, keep = labels(record, "pii", "type"), labels(record, "keep", "kind")
        counts["lines"] += 1
        counts[f"lines_{record['lang']}"] += 1
        counts.update(pii)
        counts.update(f"keep:{kind}" for kind in keep)
        counts["keep_only_lines"] += bool(keep) and not pii
        counts["mixed_lines"] += bool(keep) and bool(pii)
        counts["pii_only_lines"] += bool(pii) and not keep
    return counts


def injection_counts(records: Sequence[Record]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for record in records:
        counts["lines"] += 1
        counts[f"{record['label']}"] += 1
        counts[f"{record['lang']}:{record['label']}"] += 1
        counts[f"{record['label']}:{record['category']}"] += 1
    return counts


def moderation_counts(records: Sequence[Record]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for record in records:
        categories = record["categories"]
        assert isinstance(categories, list)
        counts["lines"] += 1
        counts[f"lines_{record['lang']}"] += 1
        counts["clean"] += not categories
        counts.update(str(category) for category in categories)
    return counts


def table(title: str, rows: Sequence[str], columns: Mapping[str, Counter[str]]) -> list[str]:
    lines = [f"**{title}**", "", "| | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    lines += [f"| {row} | " + " | ".join(str(counter[row]) for counter in columns.values()) + " |" for row in rows]
    return [*lines, ""]


def describe(
    pii: Parts, injection: Parts, moderation: Parts, templates: Mapping[str, Mapping[str, list[Template]]]
) -> str:
    """The Markdown block README.md carries between its count markers (also printed by the generator)."""
    out: list[str] = []
    template_rows: dict[str, Counter[str]] = {}
    for dataset, parts in templates.items():
        template_rows[dataset] = Counter(
            f"{part}_{template.lang}" for part, members in parts.items() for template in members
        )
    out += table("templates per split and language", ["dev_zh", "dev_en", "test_zh", "test_en"], template_rows)
    columns = {f"pii_{part}": pii_counts(records) for part, records in pii.items()}
    columns["both"] = pii_counts([record for records in pii.values() for record in records])
    rows = ["lines", "lines_zh", "lines_en", *PII_TYPES, *(f"keep:{kind}" for kind in KEEP_KINDS)]
    out += table("PII sets", [*rows, "keep_only_lines", "mixed_lines", "pii_only_lines"], columns)
    columns = {f"injection_{part}": injection_counts(records) for part, records in injection.items()}
    columns["both"] = injection_counts([record for records in injection.values() for record in records])
    categories = ["override", "roleplay", "extraction", "hidden", "encoded", "agency"]
    rows = ["lines", "attack", "benign", "zh:attack", "zh:benign", "en:attack", "en:benign"]
    rows += [f"attack:{category}" for category in categories] + ["benign:lookalike", "benign:plain"]
    out += table("injection sets", rows, columns)
    columns = {f"moderation_{part}": moderation_counts(records) for part, records in moderation.items()}
    columns["both"] = moderation_counts([record for records in moderation.values() for record in records])
    out += table("moderation sets", ["lines", "lines_zh", "lines_en", "clean", *MODERATION_CATEGORIES], columns)
    return "\n".join(out)


def shortfalls(
    pii: Parts, injection: Parts, moderation: Parts, templates: Mapping[str, Mapping[str, list[Template]]]
) -> list[str]:
    """Every minimum of the brief that the sets miss (empty when all are met)."""
    both_pii = pii_counts([record for records in pii.values() for record in records])
    both_injection = injection_counts([record for records in injection.values() for record in records])
    both_moderation = moderation_counts([record for records in moderation.values() for record in records])
    wanted = {"lines": 900, "keep_only_lines": 300, "mixed_lines": 50, "ID_CARD": 80, "PHONE": 80, "BANK_CARD": 80}
    wanted |= {"EMAIL": 80, "IP": 80, "ADDRESS": 40, "NAME": 40}
    missing = [f"PII {key}: {both_pii[key]} < {least}" for key, least in wanted.items() if both_pii[key] < least]
    missing += [
        f"injection {key}: {both_injection[key]} < {least}"
        for key, least in (("lines", 700), ("attack", 350), ("benign", 350))
        if both_injection[key] < least
    ]
    missing += [
        f"moderation {key}: {both_moderation[key]} < {least}"
        for key, least in (("lines", 400), ("clean", 150))
        if both_moderation[key] < least
    ]
    for dataset, least in (("pii", 80), ("injection", 60)):
        for lang in ("zh", "en"):
            count = sum(template.lang == lang for members in templates[dataset].values() for template in members)
            if count < least:
                missing.append(f"{dataset} templates in {lang}: {count} < {least}")
    for dataset, parts in templates.items():
        shared = {template.text for template in parts["dev"]} & {template.text for template in parts["test"]}
        if shared:
            missing.append(f"{dataset}: templates in both dev and test: {sorted(shared)[:3]}")
    return missing
