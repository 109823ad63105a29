"""Ingest papers: read a source (file, URL or shortcut), parse everything, then store in one go.

`ingest(session, source, settings)` stores one source in the caller's transaction; a malformed or unreadable
source raises FeedError before anything is written. newsletter.jobs.ingest_sources runs every configured source
this way, each in its own transaction, and embeds the new papers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from sqlmodel import Session

from newsletter.clock import today
from newsletter.config import Settings
from newsletter.ingest.fetch import read_text
from newsletter.ingest.formats import FORMATS, PARSERS, detect_format, parse_source
from newsletter.ingest.paper_in import PaperIn
from newsletter.ingest.sources import SAMPLE, SAMPLE_DIR, expand, is_shortcut, load, sample_sources, split_sources
from newsletter.ingest.store import IngestResult, upsert_papers
from newsletter.log import event

__all__ = ["FORMATS", "PARSERS", "SAMPLE", "SAMPLE_DIR", "IngestResult", "PaperIn", "SourceReport", "detect_format",
           "expand", "ingest", "is_shortcut", "parse_source", "read_source", "sample_sources", "split_sources"]
log = logging.getLogger("newsletter.ingest")


def read_source(source: str, timeout: float = 20.0) -> str:
    """The text of a local path or an http(s) URL (gzip undone, UTF-8 decoded)."""
    return read_text(source, timeout=timeout)


def ingest(session: Session, source: str, settings: Settings, *, day: date | None = None,
           format: str | None = None) -> IngestResult:
    """Read, parse and store one source (`day`: the edition date shortcuts expand for, default today UTC).

    Embedding the new papers is the caller's next step (newsletter.jobs.ingest_sources does both).
    """
    papers = load(source, day or today(), settings, format)
    result = upsert_papers(session, papers, source)
    event(log, "papers ingested", source=source, entries=result.seen, new=result.new, updated=result.updated,
          duplicates=result.duplicates)
    return result


@dataclass
class SourceReport:
    """How one source went: `ok` with its counts, or failed with the reason (nothing of it was stored)."""

    source: str  # as named (a path, a URL, "hf:daily", "sample")
    location: str  # what was read: the same, or one file of the sample corpus
    ok: bool
    reason: str = ""
    result: IngestResult | None = None

    def as_dict(self) -> dict:
        counts = self.result
        return {"source": self.source, "location": self.location, "ok": self.ok, "reason": self.reason,
                "entries": counts.seen if counts else 0, "new": counts.new if counts else 0,
                "updated": counts.updated if counts else 0, "duplicates": counts.duplicates if counts else 0,
                "embedded": counts.embedded if counts else 0}
