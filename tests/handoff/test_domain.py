"""The handover domain, pure: contact details and their masking, the notice chosen, presence, agents,
canned replies from pack data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kefu.core.types import Entity
from kefu.handoff.canned import CannedError, canned_for, load_canned
from kefu.handoff.domain import (
    NO_AGENT,
    NO_AGENT_ASK_CONTACT,
    RESOLUTIONS,
    Agent,
    Contact,
    Summary,
    is_online,
    notice_template,
    one_line,
)

PACKS = Path(__file__).resolve().parents[2] / "kefu" / "packs"


def _entity(kind: str, value: str) -> Entity:
    return Entity(kind, value, 0, len(value), value)


def test_contact_from_entities_and_masked() -> None:
    contact = Contact.from_entities([_entity("order_id", "100001"), _entity("phone", "13812345678")])
    assert contact == Contact("13812345678", None) and contact.known
    assert contact.masked() == "138****5678"
    both = Contact.from_entities([_entity("email", "li.lei@example.com"), _entity("phone", "+4915112345678")])
    assert both.masked() == "+49*******5678 / l***@example.com"
    assert "li.lei" not in both.masked() and "1234" not in both.masked()
    assert not Contact.from_entities([_entity("order_id", "100001")]).known
    assert Contact(None, "a@b.cn").merged(Contact("13800000000", "x@y.cn")) == Contact("13800000000", "a@b.cn")


def test_notice_only_when_nobody_is_online() -> None:
    assert notice_template(True, Contact()) is None
    assert notice_template(True, Contact("13812345678")) is None
    assert notice_template(False, Contact("13812345678")) == NO_AGENT
    assert notice_template(False, Contact()) == NO_AGENT_ASK_CONTACT


def test_presence_window() -> None:
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert is_online(now - timedelta(seconds=59), now, 60)
    assert is_online(now - timedelta(seconds=60), now, 60)
    assert not is_online(now - timedelta(seconds=61), now, 60)


def test_agent_identity_keeps_keys_apart_from_usernames() -> None:
    assert Agent.of("user", "alice") == Agent("alice", "alice")
    assert Agent.of("key", "ab12cd34") == Agent("key:ab12cd34", "ab12cd34")


def test_resolution_codes_are_labelled_in_both_languages() -> None:
    assert "resolved" in RESOLUTIONS and "other" in RESOLUTIONS
    for code, labels in RESOLUTIONS.items():
        assert set(labels) == {"en", "zh"} and all(labels.values()), code


def test_summary_round_trip_and_one_line() -> None:
    summary = Summary("诉求：退货", "llm", "return_refund", ("100002",), ("我想退货",))
    assert Summary.from_dict(summary.to_dict()) == summary
    assert Summary.from_dict({"text": "x", "source": "made-up"}).source == "extractive"
    assert one_line("a\n b   c", 10) == "a b c"
    assert one_line("x" * 20, 10) == "x" * 9 + "…"


@pytest.mark.parametrize("pack", ["ecommerce", "banking"])
def test_bundled_canned_replies_have_both_languages(pack: str) -> None:
    replies = load_canned(PACKS / pack)
    assert len(replies) >= 5
    zh, en = canned_for(replies, "zh"), canned_for(replies, "en")
    assert len(zh) == len(en) == len(replies)
    assert any("您好" in r["text"] for r in zh) and any("Hello" in r["text"] for r in en)


def test_canned_file_checked(tmp_path: Path) -> None:
    assert load_canned(tmp_path) == ()  # no file: no canned replies
    (tmp_path / "canned.yaml").write_text("hi:\n  text: {en: '', zh: 你好}\n", encoding="utf-8")
    with pytest.raises(CannedError, match="hi: text"):
        load_canned(tmp_path)
    (tmp_path / "canned.yaml").write_text("hi:\n  text: {en: Hello}\n", encoding="utf-8")
    only_en = load_canned(tmp_path)
    assert canned_for(only_en, "zh") == [] and canned_for(only_en, "en")[0]["title"] == "hi"
