from __future__ import annotations

import pytest

from kefu.guard.basic import PiiGuard
from kefu.guard.pii import id_card_valid, luhn_valid


def test_checksums() -> None:
    assert id_card_valid("11010519491231002X")
    assert not id_card_valid("110105194912310021")
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")


@pytest.mark.parametrize(
    ("text", "types", "redacted"),
    [
        ("我的身份证 11010519491231002X", ["ID_CARD"], "我的身份证 [ID_CARD]"),
        ("card 4111 1111 1111 1111 thanks", ["BANK_CARD"], "card [BANK_CARD] thanks"),
        ("call 138-1234-5678", ["PHONE"], "call [PHONE]"),
        ("mail me at a.b@example.com", ["EMAIL"], "mail me at [EMAIL]"),
        (
            "order 100001 tracking SF1234567890 costs ¥899",
            [],
            "order 100001 tracking SF1234567890 costs ¥899",
        ),
    ],
)
def test_redaction(text: str, types: list[str], redacted: str) -> None:
    verdict = PiiGuard().inbound(text)
    assert [s.type for s in verdict.pii] == types
    assert verdict.redacted_text == redacted
