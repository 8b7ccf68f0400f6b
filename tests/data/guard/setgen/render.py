"""Fill a template's slots with values and record where each labelled value landed.

Slots: ``{PHONE}`` / ``{PHONE.mobile}`` (a PII value, upper case), ``{order}`` / ``{order.demo}`` (a value
that must be kept, lower case), ``{@product}`` (an unlabelled filler). Hand-written lines may also mark a
fixed value in place: ``⟦PHONE|138 1234 5678⟧`` (PII) or ``⟨order|100003⟩`` (keep).
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from random import Random
from types import MappingProxyType

from . import code_values, keep_values, people_values, pii_values

ValueMaker = Callable[[Random, str, str | None], str]

PII_MAKERS: Mapping[str, ValueMaker] = MappingProxyType(
    {
        "ID_CARD": pii_values.id_card,
        "PHONE": pii_values.phone,
        "BANK_CARD": pii_values.bank_card,
        "EMAIL": pii_values.email,
        "IP": pii_values.ip,
        "ADDRESS": people_values.address,
        "NAME": people_values.name,
    }
)
KEEP_MAKERS: Mapping[str, ValueMaker] = MappingProxyType(
    {
        "order": keep_values.order,
        "price": keep_values.price,
        "date": keep_values.date_text,
        "time": keep_values.time_text,
        "tracking": code_values.tracking,
        "model": code_values.model,
        "quantity": code_values.quantity,
        "version": code_values.version,
        "coupon": code_values.coupon,
        "invoice": code_values.invoice,
    }
)
PLACE = re.compile(r"\{(@[a-z]+|[A-Z_]+|[a-z]+)(?:\.([a-z0-9_]+))?\}|⟦([A-Z_]+)\|([^⟧]+)⟧|⟨([a-z]+)\|([^⟩]+)⟩")


@dataclass(frozen=True)
class Span:
    label: str
    start: int
    end: int


@dataclass(frozen=True)
class Rendered:
    text: str
    pii: tuple[Span, ...]
    keep: tuple[Span, ...]


def slot_names(template: str) -> list[str]:
    """The labels a template will produce, in order (PII types upper case, keep kinds lower case)."""
    names = []
    for match in PLACE.finditer(template):
        name = match.group(1) or match.group(3) or match.group(5)
        if not name.startswith("@"):
            names.append(name)
    return names


def render(template: str, lang: str, rng: Random) -> Rendered:
    pieces: list[str] = []
    pii: list[Span] = []
    keep: list[Span] = []
    length = 0
    last = 0
    for match in PLACE.finditer(template):
        pieces.append(template[last : match.start()])
        length += match.start() - last
        last = match.end()
        slot, variant, fixed_pii, fixed_pii_text, fixed_keep, fixed_keep_text = match.groups()
        if fixed_pii:
            name, value = fixed_pii, fixed_pii_text
        elif fixed_keep:
            name, value = fixed_keep, fixed_keep_text
        elif slot.startswith("@"):
            name, value = slot, code_values.filler(rng, lang, slot[1:])
        elif slot in PII_MAKERS:
            name, value = slot, PII_MAKERS[slot](rng, lang, variant)
        elif slot in KEEP_MAKERS:
            name, value = slot, KEEP_MAKERS[slot](rng, lang, variant)
        else:
            raise ValueError(f"unknown slot {match.group(0)} in {template!r}")
        if name in PII_MAKERS:
            pii.append(Span(name, length, length + len(value)))
        elif name in KEEP_MAKERS:
            keep.append(Span(name, length, length + len(value)))
        elif not name.startswith("@"):
            raise ValueError(f"unknown label {name} in {template!r}")
        pieces.append(value)
        length += len(value)
    pieces.append(template[last:])
    return Rendered("".join(pieces), tuple(pii), tuple(keep))
