"""The arXiv API's Atom feed (`export.arxiv.org/api/query?...`)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime

from newsletter.errors import FeedError
from newsletter.ingest.paper_in import PaperIn, arxiv_id_from, arxiv_links, clean_text

NS = {"atom": "http://www.w3.org/2005/Atom", "arxiv": "http://arxiv.org/schemas/atom"}


def parse(text: str, source: str) -> list[PaperIn]:
    if "<!DOCTYPE" in text[:2000] or "<!ENTITY" in text:
        raise FeedError(source, "XML with a DOCTYPE or entities is refused")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as error:
        raise FeedError(source, f"not well-formed XML ({error})") from None
    if root.tag != f"{{{NS['atom']}}}feed":
        raise FeedError(source, f"expected an Atom <feed>, found <{root.tag}>")
    return [_paper(entry, index, source) for index, entry in enumerate(root.findall("atom:entry", NS))]


def _paper(entry: ET.Element, index: int, source: str) -> PaperIn:
    title = clean_text(entry.findtext("atom:title", "", NS))
    if not title:
        raise FeedError(source, f"entry {index} has no title")
    entry_id = entry.findtext("atom:id", "", NS)
    arxiv_id = arxiv_id_from(entry_id) if "arxiv.org" in entry_id else None
    abs_url, pdf_url = arxiv_links(arxiv_id) if arxiv_id else (entry_id, "")
    for link in entry.findall("atom:link", NS):
        if link.get("title") == "pdf":
            pdf_url = link.get("href", pdf_url)
        elif link.get("rel") == "alternate":
            abs_url = link.get("href", abs_url)
    categories = [c.get("term", "") for c in entry.findall("atom:category", NS)]
    return PaperIn(
        title=title,
        abstract=clean_text(entry.findtext("atom:summary", "", NS)),
        arxiv_id=arxiv_id,
        authors=[clean_text(a.findtext("atom:name", "", NS)) for a in entry.findall("atom:author", NS)],
        url=abs_url,
        pdf_url=pdf_url,
        keywords=[c for c in categories if c],
        published_at=_time(entry.findtext("atom:published", "", NS), index, source),
        source=source,
    )


def _time(raw: str, index: int, source: str) -> datetime | None:
    if not raw.strip():
        return None
    try:
        return datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise FeedError(source, f"entry {index}: <published> is not a date ({raw!r})") from None
