"""What a source name means, and reading it: a path, an http(s) URL, or a shortcut expanded for an edition date.

Shortcuts read the day BEFORE the edition date: the edition of December 3 is ingested at dawn UTC
(NEWSLETTER_INGEST_SCHEDULE), when December 3's lists have barely started and December 2's are complete.

- `hf:daily`: the Hugging Face daily papers of that day, `<NEWSLETTER_HF_API_URL>?date=YYYY-MM-DD&limit=100`.
- `arxiv:cs.LG,cs.CL,cs.CV`: that day's submissions (UTC) in those categories, from the arXiv API at
  NEWSLETTER_ARXIV_API_URL, NEWSLETTER_ARXIV_PAGE_SIZE entries per request, at most NEWSLETTER_ARXIV_MAX_PAGES
  requests, NEWSLETTER_ARXIV_DELAY_SECONDS (3 s, as arXiv asks) between any two requests of this process.
- `sample`: the bundled sample corpus (three files, each its own source).
- anything else: a local path or an http(s) URL (gzip is undone, see newsletter.ingest.fetch).

In NEWSLETTER_SOURCES (comma-separated) the categories after `arxiv:` belong to it: `hf:daily,arxiv:cs.LG,cs.CL`
is two sources. Write a local file named like a category with a slash (`./cs.CL`).
"""

from __future__ import annotations

import logging
import re
from datetime import date, timedelta
from importlib import resources
from urllib.parse import urlencode

from newsletter.config import Settings
from newsletter.errors import FeedError
from newsletter.ingest import arxiv_atom
from newsletter.ingest.fetch import PACER, read_text
from newsletter.ingest.formats import parse_source
from newsletter.ingest.paper_in import PaperIn
from newsletter.log import event

HF_DAILY = "hf:daily"
ARXIV_PREFIX = "arxiv:"
SAMPLE = "sample"
HF_LIMIT = 100  # the most the daily-papers API returns per request
SAMPLE_DIR = resources.files("newsletter") / "sample"
_CATEGORY = re.compile(r"^[a-z][a-z\-]*(?:\.[A-Za-z][A-Za-z\-]*)?$")
log = logging.getLogger("newsletter.ingest")


def split_sources(text: str) -> list[str]:
    """NEWSLETTER_SOURCES as a list: split on commas, the categories after `arxiv:` kept with it."""
    sources: list[str] = []
    for piece in (p.strip() for p in text.split(",")):
        if not piece:
            continue
        if sources and sources[-1].lower().startswith(ARXIV_PREFIX) and piece != SAMPLE and _CATEGORY.match(piece):
            sources[-1] += "," + piece
        else:
            sources.append(piece)
    return sources


def sample_sources() -> list[str]:
    """The bundled sample corpus, shipped inside the package."""
    return sorted(str(p) for p in SAMPLE_DIR.iterdir() if p.name.endswith(".txt"))


def expand(source: str) -> list[str]:
    """The sources a name stands for: `sample` is three files; anything else is itself."""
    return sample_sources() if source == SAMPLE else [source]


def is_shortcut(source: str) -> bool:
    return source.lower() == HF_DAILY or source.lower().startswith(ARXIV_PREFIX)


def listing_day(edition_day: date) -> date:
    """The day whose lists the shortcuts read for an edition: the last complete one."""
    return edition_day - timedelta(days=1)


def load(source: str, edition_day: date, settings: Settings, format: str | None = None) -> list[PaperIn]:
    """Read and parse one source (a path, a URL or a shortcut for the edition of `edition_day`): every paper,
    or a FeedError."""
    if source.lower() == HF_DAILY:
        url = with_query(settings.hf_api_url, {"date": listing_day(edition_day).isoformat(), "limit": HF_LIMIT})
        return parse_source(_read(url, settings), url, format or "hf-json")
    if source.lower().startswith(ARXIV_PREFIX):
        return arxiv_day(source, categories(source), listing_day(edition_day), settings)
    if source.lower().startswith("hf:"):
        raise FeedError(source, f"unknown source shortcut (use {HF_DAILY} or arxiv:<category>,<category>...)")
    return parse_source(_read(source, settings), source, format)


def categories(source: str) -> list[str]:
    names = [c.strip() for c in source[len(ARXIV_PREFIX):].split(",") if c.strip()]
    if not names:
        raise FeedError(source, "name at least one arXiv category, e.g. arxiv:cs.LG,cs.CL")
    for name in names:
        if not _CATEGORY.match(name):
            raise FeedError(source, f"{name!r} is not an arXiv category (e.g. cs.LG, stat.ML, hep-th)")
    return names


def arxiv_query(names: list[str], day: date) -> str:
    stamp = day.strftime("%Y%m%d")
    return f"({' OR '.join(f'cat:{c}' for c in names)}) AND submittedDate:[{stamp}0000 TO {stamp}2359]"


def arxiv_day(source: str, names: list[str], day: date, settings: Settings) -> list[PaperIn]:
    """All of `day`'s submissions in the categories, page by page, politely; a failed page fails the source."""
    query = arxiv_query(names, day)
    papers: list[PaperIn] = []
    start, total = 0, None
    for _number in range(1, settings.arxiv_max_pages + 1):
        url = with_query(settings.arxiv_api_url, {"search_query": query, "start": start,
                                                  "max_results": settings.arxiv_page_size,
                                                  "sortBy": "submittedDate", "sortOrder": "ascending"})
        with PACER.turn(ARXIV_PREFIX, settings.arxiv_delay_seconds):
            text = _read(url, settings)
        page = arxiv_atom.parse_page(text, url)
        papers.extend(page.papers)
        start += len(page.papers)
        total = page.total
        if not page.papers or total is None or start >= total:
            break
    else:
        event(log, "arxiv page cap reached", level=logging.WARNING, source=source, day=day.isoformat(),
              pages=settings.arxiv_max_pages, read=start, total=total)
    return papers


def with_query(base: str, params: dict) -> str:
    return f"{base}{'&' if '?' in base else '?'}{urlencode(params)}"


def _read(location: str, settings: Settings) -> str:
    return read_text(location, timeout=settings.ingest_timeout, max_bytes=settings.ingest_max_bytes)
