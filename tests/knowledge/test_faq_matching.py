"""FAQ tables: each entry is its own passage, found by a customer's paraphrase of its question."""

from __future__ import annotations

from pathlib import Path

from kefu.knowledge.base import ranking_for
from kefu.knowledge.encoding import encode_documents
from kefu.knowledge.index import KnowledgeIndex
from kefu.knowledge.readers import read_document
from kefu.runtime import Runtime

FAQ_EN = """question,answer
Can I change the delivery time slot after ordering?,Yes: open the order and pick another slot 6 hours ahead.
Do you deliver on public holidays?,We deliver every day except the Spring Festival holiday.
Is there a deposit for the cool box?,The insulated box carries a 20 yuan deposit refunded when the courier collects it.
How do I report missing items?,Report missing items within 24 hours from the order page with a photo of the receipt.
"""
FAQ_ZH = """问题,答案
下单后还能改送货时间吗,可以，在送达前6小时打开订单重新选择时段。
节假日送货吗,除春节假期外每天都配送。
保温箱要押金吗,保温箱押金20元，快递员回收后退还。
少送了东西怎么办,请在24小时内在订单页上传小票照片申报缺货。
"""


def test_paraphrased_questions_find_their_entry(tmp_path: Path, runtime: Runtime) -> None:
    (tmp_path / "grocery-faq.csv").write_text(FAQ_EN)
    (tmp_path / "生鲜问答.csv").write_text(FAQ_ZH)
    docs = [read_document(tmp_path / name, max_bytes=100_000) for name in ("grocery-faq.csv", "生鲜问答.csv")]
    assert [(d.kind, d.language, len(d.faq)) for d in docs] == [("faq", "en", 4), ("faq", "zh", 4)]
    kb = runtime.knowledge
    encoded = [e for d in docs for e in encode_documents([d], kb.encoders_for(d.language))]
    index = KnowledgeIndex(encoded, kb.encoders, {lang: ranking_for(lang, kb.minilm) for lang in ("en", "zh")})
    asks = [
        ("en", "can I move my delivery to a later time?", "Can I change the delivery time slot after ordering?"),
        ("en", "are you open for deliveries during national holidays", "Do you deliver on public holidays?"),
        ("en", "something was missing from my bag", "How do I report missing items?"),
        ("zh", "送货时间能不能改一下", "下单后还能改送货时间吗"),
        ("zh", "过年放假也送吗", "节假日送货吗"),
        ("zh", "东西没送齐", "少送了东西怎么办"),
    ]
    for lang, question, entry in asks:
        best = index.search(question, lang, 1)[0].chunk  # type: ignore[arg-type]
        assert best.path[-1] == entry, (question, best.path)
