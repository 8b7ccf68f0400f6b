"""Sentence-level checks on a model's knowledge answer, in English and Chinese."""

from __future__ import annotations

from kefu.core.types import Citation
from kefu.llm.prompt import Passage
from kefu.respond.grounding import GroundedAnswer, SentenceBuffer

EN = [
    Passage(1, "shipping-times", "Shipping times", "In-stock items are dispatched within 24 hours of payment."),
    Passage(2, "returns-policy", "Returns", "You can return any item within 7 days of delivery without a reason."),
]
ZH = [
    Passage(1, "shipping-times", "发货时间", "现货商品在付款后 24 小时内发货。"),
    Passage(2, "returns-policy", "7天无理由退货", "商品签收之日起 7 天内，您可以申请无理由退货。"),
]


def test_buffer_releases_only_finished_sentences() -> None:
    buffer = SentenceBuffer()
    assert buffer.feed("Items ship within") == []
    assert buffer.feed(" 24 hours. Returns are") == ["Items ship within 24 hours."]
    assert buffer.feed(" free") == []
    assert buffer.flush() == ["Returns are free"]
    chinese = SentenceBuffer()
    assert chinese.feed("现货24小时内发货。七天") == ["现货24小时内发货。"]
    assert chinese.flush() == ["七天"]


def test_sentences_that_start_a_line_say_so_across_pieces() -> None:
    buffer = SentenceBuffer()
    assert buffer.feed("You can pay with:\n- Alipay\n") == ["You can pay with:", "\nAlipay"]  # bullets go
    assert buffer.feed("- WeChat Pay. Both work") == ["\nWeChat Pay."]
    assert buffer.flush() == ["Both work"]  # same line as the sentence before
    assert SentenceBuffer().feed("\nFirst line.\n") == ["First line."]  # nothing before it: no break


def test_consecutive_sentences_citing_the_same_passage_are_marked_once() -> None:
    answer = GroundedAnswer(EN, "How long is the return window?", "en")
    assert answer.offer("You can return any item within 7 days.") == "You can return any item within 7 days [1]."
    assert answer.offer("Return within 7 days of delivery.") == "Return within 7 days of delivery."
    assert answer.offer("In-stock items are dispatched within 24 hours.") == (
        "In-stock items are dispatched within 24 hours [2]."
    )


def test_a_price_with_a_decimal_point_is_not_a_sentence_end() -> None:
    buffer = SentenceBuffer()
    assert buffer.feed("It costs 5.99 yuan") == []


def test_supported_sentences_are_shown_with_citations_renumbered_in_order_of_use() -> None:
    answer = GroundedAnswer(EN, "How long is the return window?", "en")
    first = answer.offer("You can return an item within 7 days of delivery [2].")
    second = answer.offer("In-stock items are dispatched within 24 hours [1].")
    assert first == "You can return an item within 7 days of delivery [1]."
    assert second == "In-stock items are dispatched within 24 hours [2]."
    assert answer.citations == [Citation("returns-policy", "Returns"), Citation("shipping-times", "Shipping times")]


def test_an_unsupported_sentence_closes_the_answer() -> None:
    answer = GroundedAnswer(EN, "How long is the return window?", "en")
    assert answer.offer("Returns are accepted within 7 days [2].") is not None
    assert answer.offer("We also give every customer a free smartphone and a holiday voucher.") is None
    assert answer.closed
    assert answer.offer("You can return items within 7 days.") is None  # nothing after a failed sentence
    assert answer.rejected == ["We also give every customer a free smartphone and a holiday voucher."]


def test_no_answer_before_any_sentence_means_the_model_abstained() -> None:
    answer = GroundedAnswer(EN, "Do you sell cars?", "en")
    assert answer.offer("NO_ANSWER") is None
    assert answer.no_answer
    late = GroundedAnswer(EN, "How long is the return window?", "en")
    late.offer("Returns are accepted within 7 days [2].")
    late.offer("NO ANSWER")
    assert not late.no_answer and late.closed


def test_numbers_outside_the_passages_give_way_to_the_passage_that_backs_the_sentence() -> None:
    answer = GroundedAnswer(EN, "How long is the return window?", "en")
    assert answer.offer("Returns:") is None
    assert not answer.closed
    assert answer.offer("2.") is None
    assert answer.offer("Returns are accepted within 7 days [9].") == "Returns are accepted within 7 days [1]."
    assert answer.citations == [Citation("returns-policy", "Returns")]


def test_a_wrong_number_is_replaced_by_the_passage_that_says_it() -> None:
    answer = GroundedAnswer(EN, "How fast do you ship?", "en")
    # The model named passage 2 (returns) for a sentence that passage 1 (shipping) says.
    assert answer.offer("In-stock items are dispatched within 24 hours [2].") == (
        "In-stock items are dispatched within 24 hours [1]."
    )
    assert answer.citations == [Citation("shipping-times", "Shipping times")]


def test_an_answer_no_passage_backs_alone_still_gets_a_citation() -> None:
    answer = GroundedAnswer(EN, "what is the return window", "en")
    assert answer.offer("Happy to help with your return window question.") == (
        "Happy to help with your return window question."
    )
    assert answer.citations == []
    assert answer.ensure_citation() == " [1]"
    assert answer.citations == [Citation("returns-policy", "Returns")]


def test_the_safety_check_can_refuse_a_sentence() -> None:
    answer = GroundedAnswer(EN, "shipping?", "en", allowed=lambda text: "24" not in text)
    assert answer.offer("In-stock items are dispatched within 24 hours [1].") is None
    assert answer.closed


def test_chinese_answers_are_checked_word_by_word() -> None:
    answer = GroundedAnswer(ZH, "多久可以退货？", "zh")
    assert answer.offer("签收之日起 7 天内可以申请无理由退货【2】。") == "签收之日起 7 天内可以申请无理由退货[1]。"
    assert answer.citations == [Citation("returns-policy", "7天无理由退货")]
    assert answer.offer("另外我们赠送每位顾客一台新款手机和旅游优惠券。") is None
    assert answer.closed


def test_a_claim_the_passages_only_make_negated_is_refused() -> None:
    payments = [
        Passage(
            1,
            "payment-methods",
            "Payment methods",
            "You can pay with Alipay, WeChat Pay and UnionPay cards. "
            "We do not offer cash on delivery, bank transfers or PayPal.",
        )
    ]
    flipped = GroundedAnswer(payments, "What payment methods do you accept?", "en")
    assert flipped.offer("You can pay with UnionPay cards, including cash on delivery.") is None
    assert flipped.closed and flipped.rejected
    clause = [Passage(1, "returns", "Returns", "You can return items within 7 days, but not gift cards.")]
    assert GroundedAnswer(clause, "can I return items?", "en").offer("You can return items within 7 days.")
    assert GroundedAnswer(clause, "gift card return?", "en").offer("You can return gift cards.") is None
    kept = GroundedAnswer(payments, "What payment methods do you accept?", "en")
    assert kept.offer("You can pay with Alipay or UnionPay cards.") is not None
    assert kept.offer("We don't offer cash on delivery.") is not None


def test_a_chinese_claim_the_passages_only_make_negated_is_refused() -> None:
    gifts = [Passage(1, "returns", "退货", "礼品卡不支持无理由退货。其他商品签收之日起七天内可以申请无理由退货。")]
    flipped = GroundedAnswer(gifts, "礼品卡能退吗？", "zh")
    assert flipped.offer("礼品卡支持无理由退货。") is None
    kept = GroundedAnswer(gifts, "礼品卡能退吗？", "zh")
    assert kept.offer("礼品卡不支持无理由退货。") is not None
    assert kept.offer("其他商品签收七天内可以申请无理由退货。") is not None
