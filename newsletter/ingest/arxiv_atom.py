"""The arXiv API's Atom feed (`export.arxiv.org/api/query?...`).

arXiv reports a refused query as a feed too (HTTP 200 or 400): one entry titled "Error" whose id is
http://arxiv.org/api/errors#... and whose author is "arXiv api core", with the message in its summary. That feed
is a FeedError quoting the message, never a paper called "Error".
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime

from newsletter.errors import FeedError
from newsletter.ingest.paper_in import PaperIn, arxiv_id_from, clean_text, utc_time

ATOM = "http://www.w3.org/2005/Atom"
NS = {"atom": ATOM, "arxiv": "http://arxiv.org/schemas/atom", "opensearch": "http://a9.com/-/spec/opensearch/1.1/"}
_ERROR_ID = re.compile(r"^https?://(?:www\.|export\.)?arxiv\.org/api/errors\b", re.IGNORECASE)
ERROR_AUTHOR = "arXiv api core"


@dataclass
class Page:
    """One response of the arXiv API: its papers and, when the feed says, the paging figures."""

    papers: list[PaperIn] = field(default_factory=list)
    total: int | None = None  # opensearch:totalResults
    start: int | None = None  # opensearch:startIndex


def parse(text: str, source: str) -> list[PaperIn]:
    return parse_page(text, source).papers


def parse_page(text: str, source: str) -> Page:
    root = _root(text, source)
    message = _error_in(root)
    if message is not None:
        raise FeedError(source, f"arXiv API error: {message}")
    papers = [_paper(entry, index, source) for index, entry in enumerate(root.findall("atom:entry", NS))]
    return Page(papers, _count(root, "totalResults"), _count(root, "startIndex"))


def error_message(text: str) -> str | None:
    """arXiv's error message when `text` is its error feed; else None (also for anything that is not XML)."""
    try:
        return _error_in(_root(text, ""))
    except FeedError:
        return None


def _root(text: str, source: str) -> ET.Element:
    if "<!DOCTYPE" in text[:2000] or "<!ENTITY" in text:
        raise FeedError(source, "XML with a DOCTYPE or entities is refused")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as error:
        raise FeedError(source, f"not well-formed XML ({error})") from None
    if root.tag == "feed":
        raise FeedError(source, "an Atom <feed> without the Atom namespace")
    if root.tag != f"{{{ATOM}}}feed":
        raise FeedError(source, f"expected an Atom <feed>, found <{root.tag}>")
    return root


def _error_in(root: ET.Element) -> str | None:
    for entry in root.findall("atom:entry", NS):
        entry_id = _text(entry.find("atom:id", NS))
        title = _text(entry.find("atom:title", NS))
        authors = {_text(a.find("atom:name", NS)) for a in entry.findall("atom:author", NS)}
        if _ERROR_ID.match(entry_id) or (title == "Error" and ERROR_AUTHOR in authors):
            return _text(entry.find("atom:summary", NS)) or entry_id.partition("#")[2].replace("_", " ") or "unknown"
    return None


def _paper(entry: ET.Element, index: int, source: str) -> PaperIn:
    title = _text(entry.find("atom:title", NS))
    if not title:
        raise FeedError(source, f"entry {index} has no title")
    arxiv_id = arxiv_id_from(_text(entry.find("atom:id", NS)))
    page, pdf_url = "", ""
    for link in entry.findall("atom:link", NS):
        if link.get("title") == "pdf":
            pdf_url = link.get("href", "")
        elif link.get("rel", "alternate") == "alternate":
            page = link.get("href", "")
    categories = [c.get("term", "") for c in entry.findall("atom:category", NS)]
    return PaperIn(
        title=title,
        abstract=_text(entry.find("atom:summary", NS)),
        arxiv_id=arxiv_id,
        authors=[name for a in entry.findall("atom:author", NS) if (name := _text(a.find("atom:name", NS)))],
        url=page,
        pdf_url=pdf_url,
        keywords=[c for c in categories if c],
        published_at=_time(_text(entry.find("atom:published", NS)), index, source),
        source=source,
    )


def _text(element: ET.Element | None) -> str:
    """All the text inside `element`, child elements included (an XHTML title is not cut at its first tag)."""
    return clean_text("".join(element.itertext())) if element is not None else ""


def _count(root: ET.Element, name: str) -> int | None:
    raw = _text(root.find(f"opensearch:{name}", NS))
    return int(raw) if raw.isascii() and raw.isdigit() else None


def _time(raw: str, index: int, source: str) -> datetime | None:
    if not raw:
        return None
    try:
        return utc_time(raw)
    except ValueError:
        raise FeedError(source, f"entry {index}: <published> is not a date ({raw!r:.60})") from None
