"""Which parser reads a text: detected from its first characters unless forced. An HTML page is never a feed."""

from __future__ import annotations

from newsletter.errors import FeedError
from newsletter.ingest import arxiv_atom, hf_json, listing_text
from newsletter.ingest.fetch import html_summary
from newsletter.ingest.paper_in import PaperIn

PARSERS = {"hf-json": hf_json.parse, "arxiv-atom": arxiv_atom.parse, "listing": listing_text.parse}
FORMATS = tuple(PARSERS)


def detect_format(text: str) -> str:
    head = text.lstrip("\ufeff \t\r\n")[:500]
    if head.startswith(("[", "{")):
        return "hf-json"
    if head.startswith("<"):
        return "arxiv-atom"
    return "listing"


def parse_source(text: str, source: str, format: str | None = None) -> list[PaperIn]:
    """Every paper in `text`, or a FeedError naming what is wrong with it (nothing is half-parsed)."""
    fmt = format or detect_format(text)
    if fmt not in PARSERS:
        raise FeedError(source, f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    page = html_summary(text.lstrip("\ufeff"))
    if page is not None:  # a rate-limit notice, a login wall, a 404 page served with status 200
        raise FeedError(source, "got an HTML page, not a feed" + (f": {page}" if page else ""))
    return PARSERS[fmt](text.lstrip("\ufeff"), source)
