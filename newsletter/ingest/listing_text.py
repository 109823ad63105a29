"""Plain listing text copied from the daily-papers pages: a title line, then its abstract line.

Page furniture ("Subscribe", "Get trending papers in your email inbox!", dates, blank lines) is skipped.
"""

from __future__ import annotations

import re

from newsletter.errors import FeedError
from newsletter.ingest.paper_in import PaperIn, clean_text

_FURNITURE = {
    "new",
    "subscribe",
    "get trending papers in your email inbox!",
    "get trending papers in your email inbox once a day!",
    "byak and the research community",
}
_DATE_LINE = re.compile(r"^(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]* \d{1,2}(, \d{4})?$", re.I)
_GLUED_SUBSCRIBE = re.compile(r"^Subscribe(?=\S)")
MAX_TITLE_CHARS = 400


def parse(text: str, source: str) -> list[PaperIn]:
    if "\x00" in text:
        raise FeedError(source, "binary data, not a text listing")
    lines = list(_content_lines(text))
    if not lines:
        raise FeedError(source, "no papers found (expected a title line followed by an abstract line)")
    if len(lines) == 1:
        raise FeedError(source, f"a single line of text, not a feed: {lines[0][1][:100]!r}")
    if len(lines) % 2:
        number, title = lines[-1]
        raise FeedError(source, f"line {number}: title {title[:60]!r} has no abstract line after it")
    papers = []
    for (title_line, title), (_, abstract) in zip(lines[::2], lines[1::2]):
        if len(title) > MAX_TITLE_CHARS:
            raise FeedError(source, f"line {title_line}: expected a title, found {len(title)} characters of text")
        papers.append(PaperIn(title=title, abstract=abstract, source=source))
    return papers


def _content_lines(text: str):
    for number, raw in enumerate(text.splitlines(), start=1):
        line = clean_text(_GLUED_SUBSCRIBE.sub("", raw.strip()))
        if line and line.casefold() not in _FURNITURE and not _DATE_LINE.match(line):
            yield number, line
