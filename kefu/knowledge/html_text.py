"""HTML → Markdown-style text: headings as '#', paragraphs, list items and table rows, without scripts,
navigation and other page furniture. Decoding the bytes is the readers' job; this sees text only."""

from __future__ import annotations

import re
from html.parser import HTMLParser

# CJK characters and punctuation (a character class body), shared with the PDF reader.
CJK_CHARS = "\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_CJK_GAP = re.compile(rf"(?<=[{CJK_CHARS}]) (?=[{CJK_CHARS}])")
_SKIPPED = frozenset({"script", "style", "nav", "header", "footer", "noscript", "svg", "template"})
_BLOCKS = frozenset(  # elements that end a paragraph
    {"p", "div", "section", "article", "main", "aside", "ul", "ol", "dl", "dt", "dd", "table", "thead", "tbody",
     "blockquote", "pre", "figure", "figcaption", "form", "hr", "address", "details", "summary", "body"}
)  # fmt: skip
_HEADINGS = {f"h{n}": n for n in range(1, 7)}


class _HtmlText(HTMLParser):
    """Collects an HTML page's readable text as Markdown blocks; one instance per page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title: list[str] = []
        self.h1: str | None = None
        self.blocks: list[tuple[str, str]] = []  # (text, group): list items, table rows join without blank lines
        self._skip = 0
        self._in_title = False
        self._words: list[str] = []
        self._prefix = ""
        self._heading = 0
        self._cells: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title" and not self._skip and not self.title:  # the page's, not an <svg>'s or a second one
            self._in_title = True
        elif tag in _SKIPPED:
            self._skip += 1
        elif self._skip:
            return
        elif tag == "tr":
            self._flush()
            self._cells = []
        elif tag in ("td", "th") and self._cells is not None:
            self._end_cell()
            self._cell = []
        elif self._cells is not None:
            if self._cell is not None:
                self._cell.append("\n")  # inside a table cell, blocks and line breaks only separate words
        elif tag in _HEADINGS:
            self._flush()
            self._heading = _HEADINGS[tag]
        elif tag == "li":
            self._flush()
            self._prefix = "- "
        elif tag == "br":
            self._words.append("\n")
        elif tag in _BLOCKS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in _SKIPPED:
            self._skip = max(0, self._skip - 1)
        elif self._skip:
            return
        elif tag in ("td", "th"):
            self._end_cell()
        elif tag in ("tr", "table"):
            self._end_row()
        elif tag in _HEADINGS or tag == "li" or tag in _BLOCKS:
            self._flush()

    def handle_data(self, data: str) -> None:
        data = re.sub(r"\s", " ", data)  # source newlines are spaces; only <br> breaks a line
        if self._in_title:
            self.title.append(data)
        elif self._skip:
            return
        elif self._cell is not None:
            self._cell.append(data)
        else:
            self._words.append(data)

    def close(self) -> None:
        super().close()
        self._end_row()
        self._flush()

    def _end_cell(self) -> None:
        if self._cell is not None and self._cells is not None:
            self._cells.append(" ".join(filter(None, map(_collapse, "".join(self._cell).split("\n")))))
        self._cell = None

    def _end_row(self) -> None:
        self._end_cell()
        if self._cells is not None:
            row = " | ".join(cell for cell in self._cells if cell)
            self._cells = None
            if row:
                self.blocks.append((row, "tr"))

    def _flush(self) -> None:
        lines = [_collapse(line) for line in "".join(self._words).split("\n")]
        text = "\n".join(line for line in lines if line)
        self._words.clear()
        if text and self._heading:
            text = text.replace("\n", " ")
            self.h1 = self.h1 or (text if self._heading == 1 else None)
            self.blocks.append((f"{'#' * self._heading} {text}", ""))
        elif text:
            self.blocks.append((self._prefix + text, "li" if self._prefix else ""))
        self._heading = 0
        self._prefix = ""


def _collapse(text: str) -> str:
    return _CJK_GAP.sub("", " ".join(text.split()))


def html_text(page: str) -> tuple[str, str | None]:
    """(body, title): the title from <title>, else the first <h1>, else None."""
    parser = _HtmlText()
    parser.feed(page)
    parser.close()
    body, last = "", ""
    for block, group in parser.blocks:
        body += ("\n" if group and group == last else "\n\n") + block if body else block
        last = group
    return body, _collapse("".join(parser.title)) or parser.h1
