"""Ingest papers from a file or URL in any supported format: parse everything first, then store in one go."""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import httpx
from sqlmodel import Session

from newsletter.errors import FeedError
from newsletter.ingest import arxiv_atom, hf_json, listing_text
from newsletter.ingest.paper_in import PaperIn
from newsletter.ingest.store import IngestResult, upsert_papers
from newsletter.log import event

PARSERS = {"hf-json": hf_json.parse, "arxiv-atom": arxiv_atom.parse, "listing": listing_text.parse}
FORMATS = tuple(PARSERS)
SAMPLE_DIR = resources.files("newsletter") / "sample"
log = logging.getLogger("newsletter.ingest")


def detect_format(text: str) -> str:
    head = text.lstrip()[:500]
    if head.startswith(("[", "{")):
        return "hf-json"
    if head.startswith("<"):
        return "arxiv-atom"
    return "listing"


def read_source(source: str, timeout: float = 20.0) -> str:
    """The text of a local path or an http(s) URL."""
    if source.startswith(("http://", "https://")):
        try:
            response = httpx.get(source, timeout=httpx.Timeout(timeout, connect=5.0), follow_redirects=True,
                                 headers={"User-Agent": "paper-newsletter/0.1"})
            response.raise_for_status()
        except httpx.HTTPStatusError as error:
            raise FeedError(source, f"HTTP {error.response.status_code}") from None
        except httpx.HTTPError as error:
            raise FeedError(source, f"could not fetch ({error.__class__.__name__}: {error})") from None
        return response.text
    path = Path(source)
    if not path.is_file():
        raise FeedError(source, "no such file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise FeedError(source, "not UTF-8 text") from None


def parse_source(text: str, source: str, format: str | None = None) -> list[PaperIn]:
    fmt = format or detect_format(text)
    if fmt not in PARSERS:
        raise FeedError(source, f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    return PARSERS[fmt](text, source)


def ingest(session: Session, source: str, format: str | None = None) -> IngestResult:
    """Read, parse and store one source. A malformed source raises FeedError and stores nothing.

    Embedding the new papers is the caller's next step (newsletter.jobs.ingest_sources does both).
    """
    papers = parse_source(read_source(source), source, format)
    result = upsert_papers(session, papers, source)
    event(log, "papers ingested", source=source, entries=result.seen, new=result.new, updated=result.updated,
          duplicates=result.duplicates)
    return result


def sample_sources() -> list[str]:
    """The bundled sample corpus, shipped inside the package."""
    return sorted(str(p) for p in SAMPLE_DIR.iterdir() if p.name.endswith(".txt"))
