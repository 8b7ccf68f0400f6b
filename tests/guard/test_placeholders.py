from __future__ import annotations

from kefu.guard.placeholders import Placeholders


def test_hides_and_reveals_each_value_consistently() -> None:
    hidden = Placeholders()
    text = hidden.hide("手机 13812345678，备用 13912345678；再说一次 13812345678")
    assert text == "手机 [PHONE_1]，备用 [PHONE_2]；再说一次 [PHONE_1]"
    assert "138" not in text and hidden.hidden == 2
    assert hidden.reveal("已记下 [PHONE_2] 和 [PHONE_1]。") == "已记下 13912345678 和 13812345678。"


def test_values_keep_their_placeholder_across_texts_of_one_turn() -> None:
    hidden = Placeholders()
    assert hidden.hide("email me: jo@example.com") == "email me: [EMAIL_1]"
    assert hidden.hide("again jo@example.com, phone +44 20 7946 0958") == "again [EMAIL_1], phone [PHONE_1]"


def test_unknown_placeholders_and_plain_text_are_left_alone() -> None:
    hidden = Placeholders()
    hidden.hide("call 13812345678")
    assert hidden.reveal("[PHONE_9] and [1] stay") == "[PHONE_9] and [1] stay"
    assert Placeholders().reveal("nothing [PHONE_1] hidden") == "nothing [PHONE_1] hidden"


def test_tool_arguments_get_real_values() -> None:
    hidden = Placeholders()
    hidden.hide("new address 北京市朝阳区建国路88号5号楼2单元1003室, phone 13812345678")
    args = {"order_id": "100003", "address": "[ADDRESS_1]", "contacts": ["[PHONE_1]"], "n": 2}
    assert hidden.reveal_args(args) == {
        "order_id": "100003",
        "address": "北京市朝阳区建国路88号5号楼2单元1003室",
        "contacts": ["13812345678"],
        "n": 2,
    }
