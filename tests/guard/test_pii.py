"""PII detection: validated numbers, addresses and names in zh and en; order numbers, prices, dates and
tracking numbers survive."""

from __future__ import annotations

import pytest

from kefu.guard.pii import find_pii, fold_width, id_card_valid, luhn_valid, redact


def test_checksums() -> None:
    assert id_card_valid("11010519491231002X")
    assert not id_card_valid("110105194912310021")
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")


def _found(text: str) -> list[tuple[str, str]]:
    return [(s.type, s.text) for s in find_pii(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我的身份证 11010519491231002X", [("ID_CARD", "11010519491231002X")]),
        ("card 4111 1111 1111 1111 thanks", [("BANK_CARD", "4111 1111 1111 1111")]),
        ("卡号6222021234567890128", [("BANK_CARD", "6222021234567890128")]),
        ("我的手机是13812345678谢谢", [("PHONE", "13812345678")]),
        ("电话 +86 138-1234-5678", [("PHONE", "+86 138-1234-5678")]),
        ("手机１３８１２３４５６７８", [("PHONE", "１３８１２３４５６７８")]),
        ("座机 (0755) 8888 6666 转 808", [("PHONE", "(0755) 8888 6666 转 808")]),
        ("call 021-6123 4567", [("PHONE", "021-6123 4567")]),
        ("UK office +44 20 7946 0958", [("PHONE", "+44 20 7946 0958")]),
        ("reach me at (415) 555-0100", [("PHONE", "(415) 555-0100")]),
        ("mail me at a.b+c@mail.example.co.uk please", [("EMAIL", "a.b+c@mail.example.co.uk")]),
        ("my ip is 192.168.1.20:8080", [("IP", "192.168.1.20:8080")]),
        ("from 2001:db8::ff00:42:8329 today", [("IP", "2001:db8::ff00:42:8329")]),
        ("寄到北京市朝阳区建国路88号5号楼2单元1003室", [("ADDRESS", "北京市朝阳区建国路88号5号楼2单元1003室")]),
        (
            "新地址是广东省深圳市南山区科技园南路18号3栋1201，谢谢",
            [("ADDRESS", "广东省深圳市南山区科技园南路18号3栋1201")],
        ),
        (
            "ship to 1600 Amphitheatre Parkway, Mountain View, CA 94043",
            [("ADDRESS", "1600 Amphitheatre Parkway, Mountain View, CA 94043")],
        ),
        ("我叫王小明，想查订单100002", [("NAME", "王小明")]),
        ("收件人：李娜", [("NAME", "李娜")]),
        ("my name is Emily Carter", [("NAME", "Emily Carter")]),
    ],
)
def test_finds_pii(text: str, expected: list[tuple[str, str]]) -> None:
    assert _found(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "order 100001 tracking SF1234567890 costs ¥899",
        "订单号 3816472093847561029 查一下",  # 19 digits that pass Luhn, but an order number
        "order #4829103746251938",
        "运单号 773012345678901",
        "at 12:30:45 on 2024-03-15, ¥1,299.00 and 299元",
        "顺丰 SF 1234 5678 9012",
        "tracking 1Z999AA10123456784",
        "发票号码 04412345，型号 A2849，iPhone 15 Pro",
        "6222 元 is the price",
        "version 10.0.19041.1",
        "I'm Happy with it",
        "I'm sorry but order 100003 is late",
    ],
)
def test_leaves_non_pii_alone(text: str) -> None:
    assert find_pii(text) == ()


def test_redaction_keeps_the_rest() -> None:
    text = "订单100002的收货电话改成138 1234 5678，邮箱 wang@example.cn"
    assert redact(text, find_pii(text)) == "订单100002的收货电话改成[PHONE]，邮箱 [EMAIL]"


def test_an_order_cue_does_not_hide_a_nearer_phone_cue() -> None:
    assert _found("订单100003的联系电话 13912345678") == [("PHONE", "13912345678")]


def test_width_folding_keeps_offsets() -> None:
    text = "ＩＤ：１１０１０５１９４９１２３１００２Ｘ"
    assert len(fold_width(text)) == len(text)
    assert [s.type for s in find_pii(text)] == ["ID_CARD"]
