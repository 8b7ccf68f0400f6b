"""Knowledge files of every supported format, in Chinese and English, and every way they can be refused."""

from __future__ import annotations

import io
import json
import random
import re
from pathlib import Path

import pypdf
import pytest

from kefu.knowledge.chunking import chunk_document
from kefu.knowledge.documents import DocumentError, FaqEntry
from kefu.knowledge.readers import SUPPORTED_SUFFIXES, decode_text, read_document

LIMIT = 1024 * 1024


def _refused(path: Path, reason: str, max_bytes: int = LIMIT) -> None:
    with pytest.raises(DocumentError) as info:
        read_document(path, max_bytes=max_bytes)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert reason in message, message


def _write(tmp_path: Path, name: str, data: str | bytes, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode(encoding))
    return path


def _pdf(pages: list[list[str]], *, title: str | None = None, password: str | None = None) -> bytes:
    """A real PDF with a text layer: a Type0 font whose codes are Unicode code points, mapped back by a
    ToUnicode table, so the same bytes carry English and Chinese."""
    chars = sorted({c for page in pages for line in page for c in line})
    to_unicode = (
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n"
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
        "/CMapName /Adobe-Identity-UCS def /CMapType 2 def\n"
        "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"
        f"{len(chars)} beginbfchar\n" + "\n".join(f"<{ord(c):04X}> <{ord(c):04X}>" for c in chars) + "\nendbfchar\n"
        "endcmap CMapName currentdict /CMap defineresource pop end end"
    ).encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"",  # the page tree, once the pages are numbered
        b"<< /Type /Font /Subtype /Type0 /BaseFont /T /Encoding /Identity-H"
        b" /DescendantFonts [4 0 R] /ToUnicode 5 0 R >>",
        b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /T /DW 600"
        b" /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(to_unicode), to_unicode),
    ]
    kids = []
    for page in pages:
        shown = " T* ".join(f"<{line.encode('utf-16-be').hex().upper()}> Tj" for line in page)
        content = f"BT /F1 12 Tf 14 TL 72 720 Td {shown} ET".encode() if page else b""
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content))
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >>"
            b" /Contents %d 0 R >>" % len(objects)
        )
        kids.append(b"%d 0 R" % len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), len(kids))
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, obj)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    if title is None and password is None:
        return bytes(out)
    writer = pypdf.PdfWriter(clone_from=io.BytesIO(bytes(out)))
    if title:
        writer.add_metadata({"/Title": title})
    if password is not None:
        writer.encrypt(password, "owner-secret", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


# --- Markdown ------------------------------------------------------------------------------------------


def test_english_markdown_with_front_matter(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "returns.md",
        "---\nid: return-policy\ntitle: Return policy\ntags: [refund, exchange]\n---\n"
        "# Returns\r\n\r\nYou can return items within 7 days.\r\n\r\n## Costs\r\n\r\nThe buyer pays shipping.\r\n",
    )
    doc = read_document(path, max_bytes=LIMIT)
    assert (doc.id, doc.title, doc.tags, doc.language, doc.kind) == (
        "return-policy", "Return policy", ("refund", "exchange"), "en", "article"
    )  # fmt: skip
    assert doc.source == str(path)
    assert doc.body == "# Returns\n\nYou can return items within 7 days.\n\n## Costs\n\nThe buyer pays shipping."
    assert [c.path for c in chunk_document(doc)] == [("Returns",), ("Returns", "Costs")]
    assert read_document(path, max_bytes=LIMIT, doc_id="given", language="zh").id == "given"
    assert read_document(path, max_bytes=LIMIT, language="zh").language == "zh"


def test_chinese_markdown_without_front_matter(tmp_path: Path) -> None:
    path = _write(tmp_path, "退货.markdown", "\ufeff# 退货政策\n\n收货后七天内可以申请 iPhone 退货，运费由买家承担。\n")
    doc = read_document(path, max_bytes=LIMIT)
    assert (doc.id, doc.title, doc.language) == ("退货", "退货政策", "zh")


# --- plain text and encodings --------------------------------------------------------------------------

ZH_TEXT = "退货须知\n\n一、退货政策\n收货后七天内可以无理由退货。\n\n二、退款时间\n退款在三个工作日内原路退回。\n"


def test_gbk_chinese_text_gets_headings(tmp_path: Path) -> None:
    doc = read_document(_write(tmp_path, "notice.txt", ZH_TEXT, "gbk"), max_bytes=LIMIT)
    assert (doc.id, doc.title, doc.language) == ("notice", "退货须知", "zh")
    # The first line became the title, so the body starts at the first section.
    assert doc.body == "## 一、退货政策\n收货后七天内可以无理由退货。\n\n## 二、退款时间\n退款在三个工作日内原路退回。"
    assert [(c.path, c.text) for c in chunk_document(doc)] == [
        (("", "一、退货政策"), "收货后七天内可以无理由退货。"),
        (("", "二、退款时间"), "退款在三个工作日内原路退回。"),
    ]


def test_chapter_and_section_headings_nest(tmp_path: Path) -> None:
    text = (
        "会员手册\n第一章 积分\n第一节 获取\n每消费一元得一分。\n第二节 使用\n一百分抵一元。\n"
        "第二章 等级\n年消费满五千元为金卡。\n"
    )
    doc = read_document(_write(tmp_path, "vip.txt", text), max_bytes=LIMIT)
    headings = [line for line in doc.body.splitlines() if line.startswith("#")]
    assert headings == ["## 第一章 积分", "### 第一节 获取", "### 第二节 使用", "## 第二章 等级"]


def test_big5_and_utf16_and_utf8_bom_text(tmp_path: Path) -> None:
    big5 = read_document(
        _write(tmp_path, "tw.txt", "退貨說明\n\n收貨後七天內可以無理由退貨。", "big5"), max_bytes=LIMIT
    )
    assert (big5.title, big5.language) == ("退貨說明", "zh")
    assert big5.body.endswith("收貨後七天內可以無理由退貨。")
    utf16 = _write(tmp_path, "en16.txt", "Shipping\r\n\r\nOrders ship within 48 hours.\r\n", "utf-16")
    assert utf16.read_bytes()[:2] in (b"\xff\xfe", b"\xfe\xff")
    doc = read_document(utf16, max_bytes=LIMIT)
    assert (doc.title, doc.body, doc.language) == ("Shipping", "Orders ship within 48 hours.", "en")
    bom = read_document(_write(tmp_path, "bom.txt", "\ufeffWarranty\n\nOne year.", "utf-8"), max_bytes=LIMIT)
    assert (bom.title, bom.body) == ("Warranty", "One year.")
    assert decode_text("价格：九十九元".encode("gb18030"), "x") == "价格：九十九元"
    assert decode_text("Prix : quatre-vingt-dix-neuf €, très bien, déjà payé".encode("cp1252"), "x") == (
        "Prix : quatre-vingt-dix-neuf €, très bien, déjà payé"
    )


def test_english_text_headings_only_when_reliable(tmp_path: Path) -> None:
    sections = (
        "Help centre\n\nRETURNS\n\nItems can be returned.\n\n"
        "1. Refunds\n\nRefunds take 3 days.\n\n2. Exchanges\n\nSwap sizes.\n"
    )
    doc = read_document(_write(tmp_path, "help.txt", sections), max_bytes=LIMIT)
    assert [line for line in doc.body.splitlines() if line.startswith("#")] == [
        "## RETURNS", "### 1. Refunds", "### 2. Exchanges"
    ]  # fmt: skip
    steps = "How to return\n\nSteps:\n1. Open the app\n2. Tap Orders\n3. Tap Return\nDone.\n"
    listed = read_document(_write(tmp_path, "steps.txt", steps), max_bytes=LIMIT)
    assert listed.body == steps.split("\n\n", 1)[1].strip() and listed.title == "How to return"
    wrapped = "Price list\n\nThe box weighs\n1.5 kg and costs\n2 dollars.\n"
    assert (
        read_document(_write(tmp_path, "wrapped.txt", wrapped), max_bytes=LIMIT).body
        == wrapped.split("\n\n", 1)[1].strip()
    )
    long_first = "x" * 81 + "\n\nbody"
    assert read_document(_write(tmp_path, "long-line.txt", long_first), max_bytes=LIMIT).title == "long-line"


def test_mixed_language_goes_by_the_lines_that_carry_it(tmp_path: Path) -> None:
    text = "退货政策 Return Policy\n\n收货后七天内可以无理由退货，请保留好原包装和发票，运费由买家承担。\nSee the app."
    assert read_document(_write(tmp_path, "mixed.txt", text), max_bytes=LIMIT).language == "zh"
    english = "Return Policy 退货\n\nYou can return any item within seven days of delivery if it is unused."
    assert read_document(_write(tmp_path, "mixed-en.txt", english), max_bytes=LIMIT).language == "en"


# --- HTML ----------------------------------------------------------------------------------------------

ZH_HTML = """<!DOCTYPE html>
<html><head><meta charset="gbk"><title>配送说明 &amp; 运费</title>
<style>body { color: red }</style><script>var x = "不要这个";</script></head>
<body><header>网站首页</header><nav><a href="/">首页</a></nav>
<h1>配送说明</h1>
<!-- 注释不要 -->
<p>我们使用顺丰和
   京东物流发货，&lt;48小时&gt;内发出。</p>
<h2>运费</h2>
<ul><li>满99元包邮</li><li>偏远地区<br>另加10元</li></ul>
<table><tr><th>地区</th><th>时效</th></tr><tr><td>北京<br>天津</td><td>1天</td></tr></table>
<noscript>请开启脚本</noscript><svg><text>图标</text></svg>
<footer>版权所有</footer></body></html>"""


def test_chinese_html_page_in_gbk(tmp_path: Path) -> None:
    doc = read_document(_write(tmp_path, "shipping.html", ZH_HTML, "gbk"), max_bytes=LIMIT)
    assert (doc.id, doc.title, doc.language) == ("shipping", "配送说明 & 运费", "zh")
    assert doc.body == (
        "# 配送说明\n\n我们使用顺丰和京东物流发货，<48小时>内发出。\n\n## 运费\n\n"
        "- 满99元包邮\n- 偏远地区\n另加10元\n\n地区 | 时效\n北京 天津 | 1天"
    )
    assert [c.path for c in chunk_document(doc)] == [("配送说明",), ("配送说明", "运费")]


def test_english_html_title_from_first_h1(tmp_path: Path) -> None:
    html = (
        "<html><body><div><h1>Warranty  terms</h1><p>One&nbsp;year on all <b>electronics</b>.</p></div></body></html>"
    )
    doc = read_document(_write(tmp_path, "warranty.htm", html), max_bytes=LIMIT)
    assert (doc.title, doc.body, doc.language) == (
        "Warranty terms",
        "# Warranty terms\n\nOne year on all electronics.",
        "en",
    )


# --- PDF -----------------------------------------------------------------------------------------------


def test_pdf_pages_titles_and_line_joining(tmp_path: Path) -> None:
    pages = [
        ["Return guide", "You can return any item within seven days of deli-", "very, no questions asked."],
        ["退货政策", "自收货之日起七天内可以无理由退货，运费由买家承", "担。", "短行"],
    ]
    doc = read_document(_write(tmp_path, "guide.pdf", _pdf(pages, title="Returns Guide")), max_bytes=LIMIT)
    assert (doc.id, doc.title) == ("guide", "Returns Guide")
    assert doc.body == (
        "Return guide\nYou can return any item within seven days of delivery, no questions asked.\n\n"
        "退货政策\n自收货之日起七天内可以无理由退货，运费由买家承担。\n短行"
    )
    zh = read_document(_write(tmp_path, "zh.pdf", _pdf([pages[1]])), max_bytes=LIMIT)
    assert (zh.title, zh.language) == ("退货政策", "zh")


def test_pdf_with_empty_user_password_opens(tmp_path: Path) -> None:
    path = _write(tmp_path, "open.pdf", _pdf([["Warranty", "One year."]], password=""))
    assert read_document(path, max_bytes=LIMIT).body == "One year."


def test_bad_pdfs_are_refused(tmp_path: Path) -> None:
    good = _pdf([["Warranty", "One year."]])
    _refused(_write(tmp_path, "cut.pdf", good[: len(good) // 2]), "corrupt or unreadable PDF")
    _refused(_write(tmp_path, "junk.pdf", b"%PDF-1.4\nthis is not a pdf at all\n"), "corrupt or unreadable PDF")
    _refused(_write(tmp_path, "locked.pdf", _pdf([["Secret"]], password="pw")), "encrypted PDF (needs a password)")
    _refused(_write(tmp_path, "scan.pdf", _pdf([[]])), "PDF has no extractable text (scanned? no text layer)")


# --- FAQ tables ----------------------------------------------------------------------------------------


def test_english_csv_faq(tmp_path: Path) -> None:
    csv_text = (
        'Question,Answer,Notes\nHow long is the warranty?,"One year, from delivery.",x\n\nDo you ship abroad?,No.,\n'
    )
    doc = read_document(_write(tmp_path, "shipping_faq.csv", csv_text), max_bytes=LIMIT)
    assert (doc.id, doc.title, doc.kind, doc.language) == ("shipping_faq", "Shipping Faq", "faq", "en")
    assert doc.faq == (
        FaqEntry("How long is the warranty?", "One year, from delivery."),
        FaqEntry("Do you ship abroad?", "No."),
    )
    assert doc.body == "## How long is the warranty?\n\nOne year, from delivery.\n\n## Do you ship abroad?\n\nNo."


def test_chinese_csv_faq_with_semicolons_in_gbk(tmp_path: Path) -> None:
    csv_text = "序号;问题;答案\n1;多久发货？;付款后48小时内发货，节假日顺延。\n2;可以开发票吗？;可以，在订单页申请。\n"
    doc = read_document(_write(tmp_path, "常见-问题.csv", csv_text, "gbk"), max_bytes=LIMIT)
    assert (doc.title, doc.language, len(doc.faq)) == ("常见 问题", "zh", 2)
    assert doc.faq[1] == FaqEntry("可以开发票吗？", "可以，在订单页申请。")
    tsv = read_document(_write(tmp_path, "tab.csv", "问\t回答\n退货运费谁出？\t买家承担。\n"), max_bytes=LIMIT)
    assert tsv.faq == (FaqEntry("退货运费谁出？", "买家承担。"),)


def test_jsonl_faq_both_languages(tmp_path: Path) -> None:
    lines = [{"Q": "Can I cancel?", "A": "Yes, before it ships."}, {"问": "能取消吗？", "答": "发货前可以。"}]
    text = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n\n"
    doc = read_document(_write(tmp_path, "cancel-faq.jsonl", text), max_bytes=LIMIT, language="en")
    assert (doc.title, doc.language) == ("Cancel Faq", "en")
    assert doc.faq == (FaqEntry("Can I cancel?", "Yes, before it ships."), FaqEntry("能取消吗？", "发货前可以。"))


def test_faq_errors_name_the_line(tmp_path: Path) -> None:
    _refused(
        _write(tmp_path, "cols.csv", "title;text\na;b\n"),
        "FAQ table needs a question column (question, q, 问题, 问) and an answer column "
        "(answer, a, 答案, 答, 回答); found columns: title, text",
    )
    _refused(_write(tmp_path, "noans.csv", "question,answer\nQ1,A1\n\nQ2,  \n"), "line 4: empty answer")
    _refused(_write(tmp_path, "noq.jsonl", '{"q": "a?", "a": "b"}\n{"q": "", "a": "c"}\n'), "line 2: empty question")
    _refused(_write(tmp_path, "bad.jsonl", '{"q": "a?", "a": "b"}\n\n{"q": "c?", "a": \n'), "line 3: bad JSON: ")
    _refused(_write(tmp_path, "list.jsonl", '["q", "a"]\n'), "line 1: expected a JSON object, got list")
    _refused(_write(tmp_path, "keys.jsonl", '{"question": "x?", "reply": "y"}\n'), "line 1: FAQ entry needs")
    _refused(
        _write(tmp_path, "dup.csv", "Q,A\nHow to pay?,Card.\nShipping?,Free.\nhow to  PAY?,Cash.\n"),
        "line 4 repeats the question of line 2: 'how to PAY?'",
    )
    _refused(_write(tmp_path, "header-only.csv", "question,answer\n"), "empty document (no FAQ entries)")


# --- refusals common to every format -------------------------------------------------------------------


def test_size_limit_message(tmp_path: Path) -> None:
    big = _write(tmp_path, "big.txt", b"a" * (LIMIT + 300_000))
    _refused(big, "file is 1.3 MB, over the 1.0 MB limit (KEFU_KB_MAX_FILE_MB)")
    _refused(_write(tmp_path, "small.txt", b"a" * 2000), "file is 2000 bytes, over the 1000 bytes limit", 1000)


def test_unsupported_binary_unknown_and_empty(tmp_path: Path) -> None:
    expected = ".csv, .htm, .html, .jsonl, .markdown, .md, .pdf, .txt"
    assert ", ".join(sorted(SUPPORTED_SUFFIXES)) == expected
    _refused(_write(tmp_path, "report.docx", b"PK"), f"unsupported file type '.docx'; supported: {expected}")
    _refused(_write(tmp_path, "README", b"x"), "unsupported file type (no suffix)")
    _refused(_write(tmp_path, "image.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), "binary content (NUL bytes)")
    noise = random.Random(1)
    _refused(_write(tmp_path, "noise.txt", bytes(noise.randrange(1, 256) for _ in range(400))), "unknown text encoding")
    _refused(
        _write(tmp_path, "odd16.txt", b"\xff\xfeA\x00B"), "starts with a UTF-16 byte-order mark but is not UTF-16 text"
    )
    _refused(_write(tmp_path, "blank.txt", " \n\n\t\n"), "empty document (no text after parsing)")
    _refused(_write(tmp_path, "scripts.html", "<html><script>x()</script><p> </p></html>"), "empty document")
    _refused(_write(tmp_path, "blank.md", "---\ntitle: x\n---\n"), "empty document")
    with pytest.raises(DocumentError, match=re.escape(f"{tmp_path / 'missing.txt'}: cannot read")):
        read_document(tmp_path / "missing.txt", max_bytes=LIMIT)
