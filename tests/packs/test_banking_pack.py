"""The banking pack: Banking77 intents read by path (never copied), Chinese examples, answers, the lost-card
flow's pieces and the demo bank; pack.yaml ``training_data`` errors name the file and line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from kefu.actions.bank_tools import bank_tool_names, bank_tools
from kefu.actions.demo_bank import CardSeedError, DemoBank, parse_seed
from kefu.actions.runner import ToolRunner
from kefu.actions.tools import builtin_tool_names
from kefu.config import SettingsError, load_settings
from kefu.core.types import ToolCall
from kefu.packs.loader import BUNDLED, Pack, PackError, check_pack, load_pack
from kefu.store.database import create_engine, migrate
from tests.conftest import ROOT

SHARED_DATA = (ROOT / ".." / "shared" / "data").resolve()
BANKING77 = SHARED_DATA / "banking77" / "train.jsonl"
needs_banking77 = pytest.mark.skipif(
    not BANKING77.is_file(), reason=f"Banking77 training set not found at {BANKING77} (KEFU_TRAINING_DATA_DIR)"
)
OWN_INTENTS = {"greeting", "goodbye", "thanks", "human_agent", "out_of_scope"}


def _pack_meta() -> dict[str, object]:
    meta = yaml.safe_load((BUNDLED / "banking" / "pack.yaml").read_text(encoding="utf-8"))
    assert isinstance(meta, dict)
    return meta


def _banking77_labels() -> list[str]:
    return [str(i) for i in _pack_meta()["intents"] if i not in OWN_INTENTS]  # type: ignore[attr-defined]


def _write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _synthetic_rows() -> list[dict[str, str]]:
    """Two made-up English examples per Banking77 label: enough for the pack's checks, no real data."""
    return [
        {"text": f"synthetic example {n} for {label}", "label": label, "split": "train"}
        for label in _banking77_labels()
        for n in (1, 2)
    ]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    _write_rows(folder / "banking77" / "train.jsonl", _synthetic_rows())
    return folder


@pytest.fixture(scope="module")
def pack() -> Pack:
    if not BANKING77.is_file():
        pytest.skip(f"Banking77 training set not found at {BANKING77} (KEFU_TRAINING_DATA_DIR)")
    return load_pack("banking", SHARED_DATA)


# ------------------------------------------------------------------ the bundled pack
@needs_banking77
def test_intents_and_examples(pack: Pack) -> None:
    labels = {json.loads(line)["label"] for line in BANKING77.read_text(encoding="utf-8").splitlines() if line}
    assert len(labels) == 77
    assert set(pack.intents) == labels | OWN_INTENTS
    assert sum(len(v) for v in pack.intent_examples["en"].values()) >= 10_000
    for intent in pack.intents:
        assert len(pack.intent_examples["en"][intent]) >= 10, intent
        zh = pack.intent_examples["zh"][intent]
        assert len(zh) >= 12, intent
        assert len({e.lower() for e in zh}) == len(zh), intent
    (external,) = pack.training_files
    assert (external.path, external.language, external.examples) == ("banking77/train.jsonl", "en", 10_003)
    assert pack.fallback_intent == "out_of_scope" and pack.handoff_intents == ("human_agent",)


def test_banking77_data_is_not_copied_into_the_repository() -> None:
    own = (BUNDLED / "banking" / "nlu" / "intents.en.yaml").read_text(encoding="utf-8")
    assert len(own.splitlines()) < 300
    assert not list(BUNDLED.glob("banking/**/*.jsonl")) and not list(BUNDLED.glob("banking/**/*.csv"))


@needs_banking77
def test_flows_templates_and_tools_are_consistent(pack: Pack) -> None:
    assert check_pack(pack, builtin_tool_names() | bank_tool_names()) == []
    assert "unknown tool 'freeze_card'" in "\n".join(check_pack(pack, builtin_tool_names()))


@needs_banking77
def test_answers_and_routing(pack: Pack) -> None:
    flows = {f.name: f for f in pack.flows}
    answered = set(flows["answer"].triggers)
    assert len(answered) >= 30
    for language in ("en", "zh"):
        for intent in answered:
            assert pack.templates[language].get(f"answer_{intent.lower()}"), (language, intent)
    assert set(flows["lost_card"].triggers) == {"lost_or_stolen_card", "compromised_card", "card_swallowed"}
    assert flows["lost_card"].tools() == {"list_cards", "freeze_card"}
    routed = {i for f in pack.flows for i in f.triggers}
    # Every Banking77 intent has a flow: a dedicated answer, the lost-card flow or the knowledge search.
    assert set(_banking77_labels()) <= routed
    assert "card_arrival" in answered and "activate_my_card" in answered and "exchange_rate" in answered


@needs_banking77
def test_knowledge_in_both_languages(pack: Pack) -> None:
    by_language = {lang: {d.id for d in pack.documents if d.language == lang} for lang in ("zh", "en")}
    assert len(by_language["en"]) >= 6 and by_language["en"] == by_language["zh"]
    assert {"top-ups", "transfers", "card-payments", "cash-withdrawals", "lost-stolen-card"} <= by_language["en"]


@needs_banking77
def test_cli_validates_the_banking_pack() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kefu.cli.main", "pack", "validate", str(BUNDLED / "banking")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "KEFU_TRAINING_DATA_DIR": str(SHARED_DATA)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "pack banking: ok — 82 intents" in done.stdout
    assert "10003 from banking77/train.jsonl (en)" in done.stdout


def test_ecommerce_has_no_external_training_data() -> None:
    assert load_pack("ecommerce").training_files == ()


# ------------------------------------------------------------------ training_data: reading and errors
def _copy_pack(tmp_path: Path, training_data: object | None = None) -> Path:
    copy = tmp_path / "bank"
    shutil.copytree(BUNDLED / "banking", copy)
    if training_data is not None:
        meta = _pack_meta()
        meta["training_data"] = training_data
        (copy / "pack.yaml").write_text(yaml.safe_dump(meta, allow_unicode=True), encoding="utf-8")
    return copy


def test_training_data_from_another_folder(tmp_path: Path, data_dir: Path) -> None:
    loaded = load_pack(str(_copy_pack(tmp_path)), data_dir)
    assert loaded.intent_examples["en"]["card_arrival"] == [
        "synthetic example 1 for card_arrival",
        "synthetic example 2 for card_arrival",
    ]
    # The pack's own English examples come first and stay; external ones are added after them.
    assert loaded.intent_examples["en"]["lost_or_stolen_card"][0] == "I lost my card"
    assert "synthetic example 1 for lost_or_stolen_card" in loaded.intent_examples["en"]["lost_or_stolen_card"]
    assert "synthetic example 1 for card_arrival" not in loaded.intent_examples["zh"]["card_arrival"]
    assert loaded.training_files[0].examples == len(_synthetic_rows())


def test_missing_file_names_the_setting_and_the_path(tmp_path: Path) -> None:
    empty = tmp_path / "nowhere"
    with pytest.raises(PackError) as error:
        load_pack(str(_copy_pack(tmp_path)), empty)
    message = str(error.value)
    assert "KEFU_TRAINING_DATA_DIR" in message and "banking77/train.jsonl" in message
    assert str(empty / "banking77" / "train.jsonl") in message


def test_bad_json_line_names_file_and_line(tmp_path: Path, data_dir: Path) -> None:
    path = data_dir / "banking77" / "train.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines.insert(4, '{"text": "oops", "label": ')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(PackError) as error:
        load_pack(str(_copy_pack(tmp_path)), data_dir)
    assert f"{path}:5: not valid JSON" in str(error.value)


def test_line_without_text_names_file_and_line(tmp_path: Path, data_dir: Path) -> None:
    path = data_dir / "banking77" / "train.jsonl"
    with path.open("a", encoding="utf-8") as out:
        out.write('{"label": "card_arrival"}\n')
    with pytest.raises(PackError) as error:
        load_pack(str(_copy_pack(tmp_path)), data_dir)
    assert f"{path}:{len(_synthetic_rows()) + 1}: each line must be an object" in str(error.value)


def test_unknown_label_names_file_and_line(tmp_path: Path, data_dir: Path) -> None:
    path = data_dir / "banking77" / "train.jsonl"
    rows = _synthetic_rows()
    rows.insert(2, {"text": "buy me bitcoin", "label": "crypto_purchase"})
    _write_rows(path, rows)
    with pytest.raises(PackError) as error:
        load_pack(str(_copy_pack(tmp_path)), data_dir)
    message = str(error.value)
    assert f"{path}:3: label 'crypto_purchase' is not an intent declared in" in message
    assert "pack.yaml" in message


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"language": "en"}, "needs 'path'"),
        ({"path": "banking77/train.jsonl", "language": "fr"}, "'language' must be one of"),
        ({"path": "banking77/train.jsonl", "language": "en", "weight": 2}, "unknown key(s) weight"),
    ],
)
def test_bad_training_data_entry(tmp_path: Path, data_dir: Path, entry: dict[str, object], fragment: str) -> None:
    with pytest.raises(PackError, match="training_data #1") as error:
        load_pack(str(_copy_pack(tmp_path, [entry])), data_dir)
    assert fragment in str(error.value)


def test_fingerprint_follows_the_external_file(tmp_path: Path, data_dir: Path) -> None:
    root = str(_copy_pack(tmp_path))
    path = data_dir / "banking77" / "train.jsonl"
    first = load_pack(root, data_dir).fingerprint()
    assert load_pack(root, data_dir).fingerprint() == first  # stable
    # Same examples and labels, different bytes (an extra field): the models' cache key still changes.
    rows = [{**r, "source": "v2"} for r in _synthetic_rows()]
    _write_rows(path, rows)
    second = load_pack(root, data_dir).fingerprint()
    assert second != first
    rows.append({"text": "where is my new card", "label": "card_arrival"})
    _write_rows(path, rows)
    assert load_pack(root, data_dir).fingerprint() not in (first, second)


# ------------------------------------------------------------------ the setting
def test_training_data_dir_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KEFU_TRAINING_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert load_settings().resolved_training_data_dir == (tmp_path / ".." / "shared" / "data").resolve()
    monkeypatch.setenv("KEFU_TRAINING_DATA_DIR", "datasets")
    assert load_settings().resolved_training_data_dir == tmp_path / "datasets"
    (tmp_path / "a-file").write_text("x")
    monkeypatch.setenv("KEFU_TRAINING_DATA_DIR", str(tmp_path / "a-file"))
    with pytest.raises(SettingsError, match="KEFU_TRAINING_DATA_DIR: Value error, must be a folder"):
        load_settings()


# ------------------------------------------------------------------ the demo bank and its tools
from tests.actions.test_shop_backends import Context  # noqa: E402 - the same tool context as the shop's

SEED = yaml.safe_load((BUNDLED / "banking" / "cards.yaml").read_text(encoding="utf-8"))


@pytest.fixture
async def bank(tmp_path: Path) -> AsyncIterator[DemoBank]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'bank.db'}")
    await migrate(engine)
    await migrate(engine)  # migrating again changes nothing
    yield DemoBank(engine, SEED)
    await engine.dispose()


@pytest.mark.asyncio
async def test_migration_0002_is_idempotent(tmp_path: Path) -> None:
    from sqlalchemy import text

    import kefu.store

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'again.db'}")
    try:
        await migrate(engine)
        async with engine.begin() as connection:  # back to 0001 with the bank's table still there
            await connection.execute(text("UPDATE alembic_version SET version_num = '0001'"))
        await migrate(engine)
        async with engine.connect() as connection:
            head = max(p.name[:4] for p in (Path(kefu.store.__file__).parent / "migrations" / "versions").glob("0*.py"))
            assert (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar() == head
        assert (await DemoBank(engine, SEED).freeze_card("dave", "5678", "lost_or_stolen"))["done"]
    finally:
        await engine.dispose()


@pytest.mark.asyncio
async def test_demo_bank_cards_per_customer(bank: DemoBank) -> None:
    alice = await bank.list_cards("alice")
    assert alice["count"] == 2 and alice["selected"] is None
    assert [c["last4"] for c in alice["cards"]] == ["1234", "5678"]
    assert alice["summary"]["en"] == "Visa debit card ending 1234; Mastercard credit card ending 5678"
    single = await bank.list_cards("demo-one-card")
    assert single["count"] == 1 and single["selected"]["last4"] == "4321"
    assert (await bank.list_cards("alice", "5678"))["selected"]["label"]["zh"] == "尾号 5678 的 Mastercard 信用卡"
    assert (await bank.list_cards("alice", "9999"))["found"] is False

    frozen = await bank.freeze_card("alice", "1234", "lost_or_stolen")
    assert frozen["done"] and not frozen["already"] and frozen["card"]["status"] == "frozen"
    again = await bank.freeze_card("alice", "1234", "lost_or_stolen")
    assert again["done"] and again["already"]
    assert (await bank.freeze_card("alice", "0000", "x"))["found"] is False
    statuses = {c["last4"]: c["status"] for c in (await bank.list_cards("alice"))["cards"]}
    assert statuses == {"1234": "frozen", "5678": "active"}
    # Another customer's cards are untouched.
    assert {c["status"] for c in (await bank.list_cards("bob"))["cards"]} == {"active"}


@pytest.mark.asyncio
async def test_bank_tools_check_their_arguments(bank: DemoBank) -> None:
    runner = ToolRunner(bank_tools(bank))
    assert set(runner.tools) == bank_tool_names() == {"list_cards", "freeze_card"}
    (listed, bad, frozen) = await runner.run(
        [
            ToolCall("list_cards", {"last4": None}, "cards"),
            ToolCall("freeze_card", {"last4": "12345"}, "bad"),
            ToolCall("freeze_card", {"last4": "5678", "reason": "card_swallowed"}, "freeze"),
        ],
        Context("carol"),
    )
    assert listed.ok and listed.data["count"] == 2
    assert not bad.ok and "last4" in str(bad.error)
    assert frozen.ok and frozen.data["card"]["frozen_reason"] == "card_swallowed"


@pytest.mark.parametrize(
    ("seed", "fragment"),
    [
        ({"default": [{"last4": 1234, "name": {"en": "x"}}]}, "'last4' must be four digits"),
        ({"default": [{"last4": "1234", "name": {"en": "x"}}, {"last4": "1234", "name": {"en": "y"}}]}, "twice"),
        ({"default": [{"last4": "1234", "name": {"en": "x"}, "status": "lost"}]}, "'status' must be one of"),
        ({"cards": []}, "unknown key(s) cards"),
    ],
)
def test_bad_card_seed(seed: dict[str, object], fragment: str) -> None:
    with pytest.raises(CardSeedError, match=r"cards\.yaml") as error:
        parse_seed(seed)
    assert fragment in str(error.value)
