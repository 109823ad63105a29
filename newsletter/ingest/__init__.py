"""Ingest papers: read a source (file, URL or shortcut), parse everything, then store in one go.

`ingest(session, source)` is one source in the caller's transaction. `ingest_all(database, sources, settings)`
is what the CLI and the scheduled job run: every source in its own transaction, one report per source; a source
that fails (unreadable, malformed, refused by its server, even a bug) is reported and logged, and the next one
is ingested all the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from newsletter.config import Settings
from newsletter.errors import FeedError
from newsletter.ingest.fetch import read_text
from newsletter.ingest.formats import FORMATS, PARSERS, detect_format, parse_source
from newsletter.ingest.paper_in import PaperIn
from newsletter.ingest.sources import SAMPLE, SAMPLE_DIR, expand, is_shortcut, load, sample_sources, split_sources
from newsletter.ingest.store import IngestResult, upsert_papers
from newsletter.log import event
from newsletter.ranking.embeddings import embed_missing

__all__ = ["FORMATS", "PARSERS", "SAMPLE", "SAMPLE_DIR", "IngestResult", "PaperIn", "SourceReport", "detect_format",
           "expand", "ingest", "ingest_all", "is_shortcut", "parse_source", "read_source", "sample_sources",
           "split_sources"]
log = logging.getLogger("newsletter.ingest")
SessionFactory = Callable[[], AbstractContextManager[Session] | Session]


def read_source(source: str, timeout: float = 20.0) -> str:
    """The text of a local path or an http(s) URL (gzip undone, UTF-8 decoded)."""
    return read_text(source, timeout=timeout)


def ingest(session: Session, source: str, format: str | None = None, *, settings: Settings | None = None,
           day: date | None = None) -> IngestResult:
    """Read, parse and store one source (`day`: the edition date shortcuts expand for, default today UTC), then
    embed the papers that have no vector yet (once per paper).

    A malformed source raises FeedError and stores nothing.
    """
    papers = load(source, day or _today(), settings, format)
    result = upsert_papers(session, papers, source)
    result.embedded = embed_missing(session)
    event(log, "papers ingested", source=source, entries=result.seen, new=result.new, updated=result.updated,
          duplicates=result.duplicates, embedded=result.embedded)
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


def ingest_all(database: str | SessionFactory | None, sources: list[str], settings: Settings, *,
               day: date | None = None, format: str | None = None) -> list[SourceReport]:
    """Ingest each source in its own transaction; one report per source (the sample corpus: one per file).

    `database`: a SQLAlchemy URL, a callable returning a session or a transaction context (`db.session_scope`
    style), or None for the configured database. `day`: the edition date shortcuts expand for (default today, UTC).
    """
    transaction = _transactions(database, settings)
    day = day or _today()
    reports = []
    for source in sources:
        for location in expand(source):
            reports.append(_ingest_one(transaction, source, location, settings, day, format))
    return reports


def _ingest_one(transaction: Callable[[], AbstractContextManager[Session]], source: str, location: str,
                settings: Settings, day: date, format: str | None) -> SourceReport:
    for attempt in (1, 2):
        try:
            with transaction() as session:
                result = ingest(session, location, format, settings=settings, day=day)
            return SourceReport(source, location, ok=True, result=result)
        except FeedError as error:
            reason = error.problem if error.source == location else str(error)
            event(log, "source failed", level=logging.WARNING, source=location, reason=reason)
            return SourceReport(source, location, ok=False, reason=reason)
        except IntegrityError:
            if attempt == 1:  # another ingest stored one of these papers meanwhile: the second pass finds it
                continue
            log.exception("source failed: %s", location)
            return SourceReport(source, location, ok=False, reason="database conflict (stored concurrently)")
        except Exception as error:  # a bug or a database problem: reported, logged with its traceback, next source
            log.exception("source failed: %s", location)
            return SourceReport(source, location, ok=False,
                                reason=f"unexpected error ({error.__class__.__name__}: {error})")
    raise AssertionError("unreachable")


def _transactions(database: str | SessionFactory | None, settings: Settings
                  ) -> Callable[[], AbstractContextManager[Session]]:
    from newsletter import db

    if database is None or isinstance(database, str):
        url = database or settings.sqlalchemy_url
        return lambda: db.session_scope(url)

    @contextmanager
    def transaction() -> Iterator[Session]:
        opened = database()
        if not isinstance(opened, OrmSession):  # already a transaction context, e.g. db.session_scope
            with opened as session:
                yield session
            return
        with opened as session:  # a bare session (a sessionmaker): commit here
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    return transaction


def _today() -> date:
    return datetime.now(timezone.utc).date()
