"""Read the template files and split them, template by template, into a development and a test part."""

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from .obfuscate import apply_encodings
from .render import PLACE, slot_names

TEMPLATE_DIR = Path(__file__).parent / "templates"
DEV_SHARE = 0.6


@dataclass(frozen=True)
class Template:
    dataset: str  # "pii", "injection" or "moderation"
    lang: str
    text: str  # line breaks and «encodings» already applied
    label: str  # injection: category; moderation: categories joined by ","; "-" when clean; pii: ""

    @property
    def fixed(self) -> bool:
        """A hand-written line: nothing in it is drawn at random, so it yields one line."""
        return all(match.group(1) is None for match in PLACE.finditer(self.text))

    @property
    def stratum(self) -> str:
        """What the split balances: a PII template's first PII type, or its label."""
        if self.dataset != "pii":
            return self.label
        if self.fixed:
            return "handwritten"
        pii_types = [name for name in slot_names(self.text) if name.isupper()]
        return pii_types[0] if pii_types else "keep"


def load(dataset: str, lang: str) -> list[Template]:
    path = TEMPLATE_DIR / f"{dataset}_{lang}.txt"
    templates = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        label, _, body = raw.partition("\t") if dataset != "pii" else ("", "", raw)
        if not body.strip():
            raise ValueError(f"{path.name}: no template after the label in {raw!r}")
        templates.append(Template(dataset, lang, apply_encodings(body.replace("\\n", "\n")), label))
    texts = [template.text for template in templates]
    duplicates = {text for text in texts if texts.count(text) > 1}
    if duplicates:
        raise ValueError(f"{path.name}: templates written twice: {sorted(duplicates)}")
    return templates


def split(templates: list[Template], seed: str) -> tuple[list[Template], list[Template]]:
    """About 60 % of each stratum's templates to dev, the rest to test, by a stable hash of the text."""
    strata: defaultdict[str, list[Template]] = defaultdict(list)
    for template in templates:
        strata[template.stratum].append(template)
    dev: list[Template] = []
    test: list[Template] = []
    for stratum in sorted(strata):
        members = sorted(strata[stratum], key=lambda item: hashlib.sha256(f"{seed}|{item.text}".encode()).hexdigest())
        dev_count = (
            len(members) if len(members) == 1 else min(len(members) - 1, max(1, round(DEV_SHARE * len(members))))
        )
        dev += members[:dev_count]
        test += members[dev_count:]
    return dev, test
