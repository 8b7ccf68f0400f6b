"""Knowledge-base files of any supported format → one ``Document`` each, or a ``DocumentError`` that says
which file and what is wrong with it. Every reader produces Markdown-style text ('#' headings, blank-line
paragraphs) so chunking and search need not know the format."""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path

import charset_normalizer
import pypdf
from pypdf import PasswordType
from pypdf.errors import DependencyError

from kefu.core.types import Locale
from kefu.knowledge.documents import Document, DocumentError, FaqEntry, parse_markdown
from kefu.knowledge.html_text import CJK_CHARS, html_text
from kefu.nlu.language import detect

SUPPORTED_SUFFIXES: frozenset[str] = frozenset({".md", ".markdown", ".txt", ".html", ".htm", ".pdf", ".csv", ".jsonl"})

_MB = 1024 * 1024
_TITLE_MAX_CHARS = 80
_BOMS = (  # (mark, codec, name); UTF-32 first: its little-endian mark starts with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
)
# Chinese characters, CJK and full-width punctuation: text that is written without spaces between words.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\ufffd\ue000-\uf8ff]")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_:.-]+)""", re.IGNORECASE)


def read_document(path: Path, *, language: Locale | None = None, max_bytes: int, doc_id: str | None = None) -> Document:
    """Read one knowledge file. ``doc_id`` given wins; otherwise Markdown front matter ``id:``, else the stem.
    ``language`` given wins; otherwise it is detected from the text."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        kind = f"'{suffix}'" if suffix else "(no suffix)"
        raise DocumentError(f"{path}: unsupported file type {kind}; supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}")
    try:
        size = path.stat().st_size
        data = path.read_bytes() if size <= max_bytes else b""
    except OSError as exc:
        raise DocumentError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    size = max(size, len(data))  # the file may have grown between stat and read
    if size > max_bytes:
        raise DocumentError(
            f"{path}: file is {_megabytes(size)}, over the {_megabytes(max_bytes)} limit (KEFU_KB_MAX_FILE_MB)"
        )
    source = str(path)
    if suffix in (".csv", ".jsonl"):
        rows = _csv_rows(decode_text(data, source), source) if suffix == ".csv" else _jsonl_rows(data, source)
        return _faq_document(rows, source, doc_id or path.stem, path.stem, language)
    if suffix in (".md", ".markdown"):
        doc = parse_markdown(decode_text(data, source), source, language or "en", path.stem)
        doc = replace(doc, id=doc_id) if doc_id else doc
    else:
        if suffix == ".txt":
            text, title = _mark_headings(decode_text(data, source)), None
        elif suffix == ".pdf":
            pdf_text, title = _pdf_text(data, source)
            text = _mark_headings(pdf_text)
        else:
            text, title = html_text(_decode_html(data, source))
        if not text.strip():
            raise DocumentError(f"{source}: empty document (no text after parsing)")
        if not title and (title := _first_line_title(text)):
            # The first line is the title: keep it out of the body, or every first chunk says it twice.
            rest = text.strip().split("\n", 1)[1] if "\n" in text.strip() else ""
            text = rest if rest.strip() else text
        title = title or path.stem
        doc = Document(id=doc_id or path.stem, language="en", title=title, body=text.strip(), source=source)
    return doc if language else replace(doc, language=_guess_language(doc.body))


def decode_text(data: bytes, source: str) -> str:
    """Bytes → text with ``\\n`` newlines: UTF-8, a byte-order mark, GB18030 or Big5, then detection."""
    text = _decode(data, source)
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _decode(data: bytes, source: str) -> str:
    for bom, codec, name in _BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(codec)
            except UnicodeDecodeError as exc:
                raise DocumentError(f"{source}: starts with a {name} byte-order mark but is not {name} text") from exc
            if "\x00" in text:
                raise DocumentError(f"{source}: binary content (NUL characters), not a text file")
            return text
    if b"\x00" in data:
        raise DocumentError(f"{source}: binary content (NUL bytes), not a text file")
    utf8 = _clean_decode(data, "utf-8")
    if utf8 is not None:
        return utf8
    for encoding, common in (("gb18030", _is_gb2312), ("cp950", _is_big5_level1)):
        legacy = _clean_decode(data, encoding)
        if legacy is not None and _looks_like(legacy, common):
            return legacy
    best = charset_normalizer.from_bytes(data).best()
    if best is None:
        raise DocumentError(
            f"{source}: unknown text encoding: not UTF-8, UTF-16 with a byte-order mark, GB18030 or Big5, "
            "and no other encoding fits (binary file?)"
        )
    return str(best)


def _clean_decode(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


def _looks_like(text: str, common: Callable[[str], bool]) -> bool:
    """Western bytes or the other Chinese encoding often decode cleanly too, into rare characters; real text
    in an encoding keeps almost all of its characters in that encoding's common set."""
    if _CONTROL.search(text):
        return False
    wide = [c for c in text if ord(c) > 0x7F]
    return bool(wide) and sum(map(common, wide)) >= 0.9 * len(wide)


def _is_gb2312(char: str) -> bool:
    try:
        char.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


def _is_big5_level1(char: str) -> bool:
    """Big5's symbols and frequent characters (lead bytes 0xA1–0xC6), not its rarer second level."""
    try:
        encoded = char.encode("big5")
    except UnicodeEncodeError:
        return False
    return encoded[0] <= 0xC6


def _megabytes(size: int) -> str:
    return f"{size / _MB:.1f} MB" if size >= _MB // 10 else f"{size} bytes"


def _guess_language(text: str) -> Locale:
    verdict = detect(text)
    if verdict != "mixed":
        return verdict
    # A mixed document is Chinese when its Chinese lines carry more of the text than its English ones.
    weight = {"zh": 0, "en": 0, "mixed": 0}
    for line in text.splitlines():
        weight[detect(line)] += len(line)
    return "zh" if weight["zh"] >= weight["en"] else "en"


def _first_line_title(text: str) -> str | None:
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first.lstrip("#").strip() if first and len(first) <= _TITLE_MAX_CHARS else None


# --- plain-text headings -------------------------------------------------------------------------------

# Heading styles of plain-text documents, outermost first. A style only becomes '#' headings when every line
# in it is followed by text (not by a line of the same or an outer style), so numbered lists stay lists; the
# styles that ordinary English lines can look like ("1.5 kg", "2. Tap") also need a blank line above each.
_HEADING_STYLES = (
    (re.compile(r"第[一二三四五六七八九十百零〇两\d]+[章篇编部]\s*.*"), False),
    (re.compile(r"第[一二三四五六七八九十百零〇两\d]+节\s*.*"), False),
    (re.compile(r"[A-Z][A-Z0-9&/' -]*[A-Z0-9]"), True),
    (re.compile(r"[一二三四五六七八九十]+[、．.]\s*\S.*"), False),
    (re.compile(r"\d{1,2}[.．、]\s*[^\d\s].*"), True),
    (re.compile(r"[（(][一二三四五六七八九十]+[）)]\s*\S.*"), False),
    (re.compile(r"\d{1,2}\.\d{1,2}\.?\s+\S.*"), True),
)
_HEADING_MAX_CHARS = 40
_SENTENCE_END = tuple(".,;:!?。，；：！？、")


def _heading_style(line: str) -> int | None:
    if not line or len(line) > _HEADING_MAX_CHARS or line.endswith(_SENTENCE_END):
        return None
    return next((rank for rank, (style, _) in enumerate(_HEADING_STYLES) if style.fullmatch(line)), None)


def _mark_headings(text: str) -> str:
    lines = [line.rstrip() for line in text.splitlines()]
    filled = [i for i, line in enumerate(lines) if line.strip()]
    styles = {i: _heading_style(lines[i].strip()) for i in filled[1:]}  # the first line is the title's
    rejected: set[int] = set()
    for n, here in enumerate(filled[1:], start=1):
        style = styles[here]
        if style is None:
            continue
        after = styles[filled[n + 1]] if n + 1 < len(filled) else style
        glued = filled[n - 1] == here - 1  # no blank line above
        if (after is not None and after <= style) or (glued and _HEADING_STYLES[style][1]):
            rejected.add(style)
    adopted = sorted({s for s in styles.values() if s is not None} - rejected)
    level = {style: min(2 + n, 6) for n, style in enumerate(adopted)}
    for i, style in styles.items():
        if style in level:
            lines[i] = f"{'#' * level[style]} {lines[i].strip()}"
    return "\n".join(lines)


# --- HTML bytes ----------------------------------------------------------------------------------------


def _decode_html(data: bytes, source: str) -> str:
    """A byte-order mark wins, then the page's own <meta charset>, then the usual guessing."""
    declared = _META_CHARSET.search(data[:4096])
    if declared and not any(data.startswith(bom) for bom, _, _ in _BOMS):
        try:
            encoding = codecs.lookup(declared.group(1).decode("ascii")).name
        except LookupError:
            encoding = ""  # an unknown name: guess as for any text
        if encoding in ("gb2312", "gbk"):
            encoding = "gb18030"  # what pages labelled GB2312 or GBK really contain
        if encoding and not encoding.startswith(("utf-16", "utf-32")):
            text = _clean_decode(data, encoding)
            if text is not None and "\x00" not in text:
                return text.replace("\r\n", "\n").replace("\r", "\n")
    return decode_text(data, source)


# --- PDF -----------------------------------------------------------------------------------------------


def _pdf_text(data: bytes, source: str) -> tuple[str, str | None]:
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise DocumentError(f"{source}: encrypted PDF (needs a password); save it without protection")
        raw_pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = reader.metadata.title if reader.metadata else None
    except DocumentError:
        raise
    except DependencyError as exc:
        raise DocumentError(f"{source}: encrypted PDF that cannot be opened here: {exc}") from exc
    except Exception as exc:  # pypdf reports a damaged file through many exception types; all mean the same
        raise DocumentError(f"{source}: corrupt or unreadable PDF: {exc or type(exc).__name__}") from exc
    pages = (_reflow(page) for page in raw_pages)
    text = "\n\n".join(page for page in pages if page)
    if not text:
        raise DocumentError(f"{source}: PDF has no extractable text (scanned? no text layer)")
    title = meta_title.strip() if isinstance(meta_title, str) else ""
    return text, title or None


def _reflow(page: str) -> str:
    """Undo the PDF's line wrapping where it is certain: an English word hyphenated across lines, and a
    Chinese line that runs to the right margin (a shorter line ends a paragraph or is a heading)."""
    lines = [line.strip() for line in page.splitlines()]
    width = max((_display_width(line) for line in lines), default=0)
    out: list[str] = []
    for prev, line in zip(["", *lines], lines, strict=False):  # prev: the line as printed, before any joining
        if re.search(r"[A-Za-z]-$", prev) and re.match(r"[a-z]", line):
            out[-1] = out[-1][:-1] + line
        elif (
            re.search(rf"[{CJK_CHARS}]$", prev)
            and re.match(rf"[{CJK_CHARS}]", line)
            and _display_width(prev) >= 0.9 * width
        ):
            out[-1] += line
        else:
            out.append(line)
    return "\n".join(out).strip()


def _display_width(line: str) -> int:
    return len(line) + len(re.findall(rf"[{CJK_CHARS}]", line))


# --- FAQ tables ----------------------------------------------------------------------------------------

_QUESTION_NAMES = ("question", "q", "问题", "问")
_ANSWER_NAMES = ("answer", "a", "答案", "答", "回答")
_COLUMNS_HINT = f"a question column ({', '.join(_QUESTION_NAMES)}) and an answer column ({', '.join(_ANSWER_NAMES)})"

_Row = tuple[int, object, object]  # line number, question, answer


def _column(names: Iterable[str], wanted: tuple[str, ...]) -> int | None:
    keys = [name.strip().lstrip("\ufeff").casefold() for name in names]
    return next((i for i, key in enumerate(keys) if key in wanted), None)


def _csv_rows(text: str, source: str) -> Iterator[_Row]:
    header_line = text.split("\n", 1)[0]
    for delimiter in (",", ";", "\t"):  # the delimiter is the one that splits the header into known columns
        header = next(csv.reader([header_line], delimiter=delimiter), [])
        q, a = _column(header, _QUESTION_NAMES), _column(header, _ANSWER_NAMES)
        if q is not None and a is not None:
            break
    else:
        found = ", ".join(name.strip() for name in re.split(r"[,;\t]", header_line) if name.strip()) or "none"
        raise DocumentError(f"{source}: FAQ table needs {_COLUMNS_HINT}; found columns: {found}")
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    next(reader)
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DocumentError(f"{source}: line {line}: bad CSV: {exc}") from exc
        if any(cell.strip() for cell in row):
            yield line, row[q] if q < len(row) else "", row[a] if a < len(row) else ""


def _jsonl_rows(data: bytes, source: str) -> Iterator[_Row]:
    for line, raw in enumerate(decode_text(data, source).split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise DocumentError(f"{source}: line {line}: bad JSON: {exc.msg} (column {exc.colno})") from exc
        if not isinstance(item, dict):
            raise DocumentError(f"{source}: line {line}: expected a JSON object, got {type(item).__name__}")
        keys = list(item)
        q, a = _column(keys, _QUESTION_NAMES), _column(keys, _ANSWER_NAMES)
        if q is None or a is None:
            raise DocumentError(f"{source}: line {line}: FAQ entry needs {_COLUMNS_HINT}; found: {', '.join(keys)}")
        yield line, item[keys[q]], item[keys[a]]


def _faq_document(rows: Iterable[_Row], source: str, doc_id: str, stem: str, language: Locale | None) -> Document:
    entries: list[FaqEntry] = []
    seen: dict[str, int] = {}
    for line, question_value, answer_value in rows:
        question = " ".join(_cell_text(question_value, "question", source, line).split())
        answer = _cell_text(answer_value, "answer", source, line).strip()
        key = question.casefold()
        if key in seen:
            raise DocumentError(f"{source}: line {line} repeats the question of line {seen[key]}: {question!r}")
        seen[key] = line
        entries.append(FaqEntry(question, answer))
    if not entries:
        raise DocumentError(f"{source}: empty document (no FAQ entries)")
    body = "\n\n".join(f"## {entry.question}\n\n{entry.answer}" for entry in entries)
    locale = language or _guess_language(body)
    words = re.sub(r"[-_]+", " ", stem).split()
    title = " ".join(w[:1].upper() + w[1:] for w in words) if locale == "en" else " ".join(words)
    return Document(
        id=doc_id, language=locale, title=title or stem, body=body, source=source, kind="faq", faq=tuple(entries)
    )


def _cell_text(value: object, field: str, source: str, line: int) -> str:
    if value is None:
        text = ""
    elif isinstance(value, str | int | float) and not isinstance(value, bool):
        text = str(value)
    else:
        raise DocumentError(f"{source}: line {line}: {field} must be text, got {type(value).__name__}")
    if not text.strip():
        raise DocumentError(f"{source}: line {line}: empty {field}")
    return text
