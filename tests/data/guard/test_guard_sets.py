"""The committed guard sets are current, well-formed and as hard as the brief asks (see README.md)."""

import json
import re
from pathlib import Path

import pytest
from build_sets import built_files
from setgen.checks import (
    id_card_valid,
    injection_record_problems,
    luhn_valid,
    moderation_record_problems,
    pii_record_problems,
)
from setgen.summary import injection_counts, moderation_counts, pii_counts

HERE = Path(__file__).parent
Record = dict[str, object]
ID_CONTEXT = re.compile(r"身份|證|证件|ID|id card|id no", re.IGNORECASE)


def read(name: str) -> list[Record]:
    return [json.loads(line) for line in (HERE / name).read_text(encoding="utf-8").splitlines()]


def both(dataset: str) -> list[Record]:
    return read(f"{dataset}_dev.jsonl") + read(f"{dataset}_test.jsonl")


def spans(record: Record, key: str) -> list[dict[str, object]]:
    value = record[key]
    assert isinstance(value, list)
    return value


def piece(record: Record, span: dict[str, object]) -> str:
    return str(record["text"])[int(str(span["start"])) : int(str(span["end"]))]


def test_the_committed_files_are_what_the_generator_writes() -> None:
    for name, content in built_files().items():
        assert (HERE / name).read_text(encoding="utf-8") == content, f"{name} is stale: run build_sets.py"


def test_the_checksum_rules_accept_valid_numbers_and_refuse_one_digit_off() -> None:
    assert id_card_valid("11010119900307651X") and id_card_valid("１１０１０１１９９００３０７６５１ｘ")
    assert not id_card_valid("110101199003076512") and not id_card_valid("110101199002306510")  # check char; Feb 30
    assert luhn_valid("4111 1111 1111 1111") and luhn_valid("6222-0216-1200-3456-788")
    assert not luhn_valid("4111 1111 1111 1112") and not luhn_valid("411111111111")  # check digit; too short


def test_a_padded_or_overlapping_span_is_reported() -> None:
    record: Record = {
        "text": "电话 13812345678 订单100001",
        "lang": "zh",
        "pii": [{"type": "PHONE", "start": 2, "end": 14}],
    }
    record["keep"] = [{"kind": "order", "start": 13, "end": 23}]  # starts inside the phone
    problems = pii_record_problems(record)
    assert any("padding" in problem for problem in problems)
    assert any("overlapping" in problem for problem in problems)


@pytest.mark.parametrize("dataset", ["pii", "injection", "moderation"])
def test_every_line_is_well_formed_and_unique(dataset: str) -> None:
    check = {"pii": pii_record_problems, "injection": injection_record_problems}.get(
        dataset, moderation_record_problems
    )
    records = both(dataset)
    assert [problem for record in records for problem in check(record)] == []
    texts = [str(record["text"]) for record in records]
    assert len(texts) == len(set(texts))


def test_ids_have_context_and_checksums_and_cards_pass_luhn() -> None:
    records = both("pii")
    for record in records:
        for span in spans(record, "pii"):
            if span["type"] == "ID_CARD":
                assert id_card_valid(piece(record, span)) and ID_CONTEXT.search(str(record["text"])), record
            if span["type"] == "BANK_CARD":
                assert luhn_valid(piece(record, span)), record


def test_order_numbers_are_not_filtered_to_avoid_looking_like_cards() -> None:
    orders = [
        piece(record, span) for record in both("pii") for span in spans(record, "keep") if span["kind"] == "order"
    ]
    assert sum(luhn_valid(order) for order in orders) >= 3  # real order numbers pass Luhn about one time in ten
    assert sum(len(order) == 18 for order in orders) >= 5


def test_the_sets_meet_the_brief_minimums() -> None:
    pii = pii_counts(both("pii"))
    assert pii["lines"] >= 900 and pii["keep_only_lines"] >= 300 and pii["mixed_lines"] > 0
    assert min(pii[kind] for kind in ("ID_CARD", "PHONE", "BANK_CARD", "EMAIL", "IP")) >= 80
    assert min(pii["ADDRESS"], pii["NAME"]) >= 40
    assert abs(pii["lines_zh"] - pii["lines_en"]) < 0.2 * pii["lines"]
    injection = injection_counts(both("injection"))
    assert injection["lines"] >= 700 and injection["attack"] >= 350 and injection["benign"] >= 350
    assert min(injection["zh:attack"], injection["en:attack"], injection["zh:benign"], injection["en:benign"]) >= 150
    moderation = moderation_counts(both("moderation"))
    assert (
        moderation["lines"] >= 400 and moderation["clean"] >= 150 and moderation["lines_zh"] == moderation["lines_en"]
    )


@pytest.mark.parametrize("dataset", ["pii", "injection", "moderation"])
def test_dev_holds_about_sixty_percent(dataset: str) -> None:
    dev, test = len(read(f"{dataset}_dev.jsonl")), len(read(f"{dataset}_test.jsonl"))
    assert 0.52 <= dev / (dev + test) <= 0.68
