"""Upsert parsed papers: each paper stored once, found by arXiv id, else by normalized title."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, select

from newsletter.ingest.paper_in import PaperIn
from newsletter.models import Paper


@dataclass
class IngestResult:
    source: str
    seen: int = 0  # entries in the source
    new: int = 0
    updated: int = 0  # already stored; upvotes or missing fields refreshed
    duplicates: int = 0  # the same paper more than once in this source
    embedded: int = 0  # papers given a sentence embedding (0 when semantic ranking is off)


def upsert_papers(session: Session, papers: list[PaperIn], source: str) -> IngestResult:
    result = IngestResult(source=source, seen=len(papers))
    batch: dict[str, Paper] = {}  # title_key -> row touched in this batch
    for incoming in papers:
        key = incoming.title_key
        if key in batch:
            result.duplicates += 1
            _merge(batch[key], incoming)
            continue
        existing = _find(session, incoming)
        if existing is None:
            batch[key] = _new_row(incoming)
            session.add(batch[key])
            result.new += 1
        else:
            batch[key] = existing
            result.updated += _merge(existing, incoming)
    session.flush()
    return result


def _find(session: Session, incoming: PaperIn) -> Paper | None:
    if incoming.arxiv_id:
        found = session.exec(select(Paper).where(Paper.external_id == incoming.arxiv_id)).first()
        if found:
            return found
    return session.exec(select(Paper).where(Paper.title_key == incoming.title_key)).first()


def _new_row(incoming: PaperIn) -> Paper:
    return Paper(
        external_id=incoming.external_id,
        title_key=incoming.title_key,
        title=incoming.title,
        abstract=incoming.abstract,
        authors=incoming.authors,
        url=incoming.url,
        pdf_url=incoming.pdf_url,
        code_url=incoming.code_url,
        upvotes=incoming.upvotes or 0,
        comments=incoming.comments or 0,
        keywords=incoming.keywords,
        source=incoming.source,
        published_at=incoming.published_at,
    )


def _merge(row: Paper, incoming: PaperIn) -> int:
    """Refresh counts and fill fields the stored row lacks. Returns 1 if anything changed."""
    changes = {}
    if incoming.upvotes is not None and incoming.upvotes != row.upvotes:
        changes["upvotes"] = incoming.upvotes
    if incoming.comments is not None and incoming.comments != row.comments:
        changes["comments"] = incoming.comments
    if incoming.arxiv_id and row.external_id.startswith("title:"):
        changes["external_id"] = incoming.arxiv_id
    for name in ("abstract", "authors", "url", "pdf_url", "code_url", "keywords", "published_at"):
        value = getattr(incoming, name)
        if value and not getattr(row, name):
            changes[name] = value
    for name, value in changes.items():
        setattr(row, name, value)
    return 1 if changes else 0
