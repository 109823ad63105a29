"""Upsert parsed papers: each paper stored once, and a stored paper never made worse by a later record.

Identity: two records are the same paper when their arXiv ids are equal. A record without an arXiv id is matched
by its normalized title; a record with an id is matched by title only to a stored paper that has no id yet
(which then takes the id). Two records with different arXiv ids are two papers, whatever their titles.

Merging is field by field (see `merge`): the longer meaningful abstract, the known authors, the highest counts,
the earliest publication date, links from the first source that gave a valid one, the canonical version-free
arXiv page and PDF once an id is known; placeholders ("N/A", "", markup only) never replace real text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from newsletter.ingest.paper_in import PaperIn, arxiv_links, safe_url, unique_keywords
from newsletter.models import Paper

_TAG = re.compile(r"<[^>]*>")
_PLACEHOLDERS = {"n/a", "na", "none", "null", "nil", "undefined", "tbd", "todo", "unknown", "abstract",
                 "no abstract", "no abstract available", "abstract not available", "not available", "coming soon",
                 "no summary", "summary"}


@dataclass
class IngestResult:
    source: str
    seen: int = 0  # entries in the source
    new: int = 0
    updated: int = 0  # already stored and improved: counts refreshed, fields filled or bettered
    duplicates: int = 0  # the same paper more than once in this source
    embedded: int = 0  # papers given a sentence embedding (0 when semantic ranking is off)


class _Batch:
    """The rows this source touched, found by arXiv id and by title like stored rows are."""

    def __init__(self) -> None:
        self.by_id: dict[str, Paper] = {}
        self.by_title: dict[str, list[Paper]] = {}

    def add(self, row: Paper) -> None:
        self.by_id[row.external_id] = row
        rows = self.by_title.setdefault(row.title_key, [])
        if all(r is not row for r in rows):
            rows.append(row)

    def find(self, incoming: PaperIn) -> Paper | None:
        if incoming.arxiv_id and incoming.arxiv_id in self.by_id:
            return self.by_id[incoming.arxiv_id]
        return _title_match(incoming, self.by_title.get(incoming.title_key, []))


def upsert_papers(session: Session, papers: list[PaperIn], source: str) -> IngestResult:
    result = IngestResult(source=source, seen=len(papers))
    batch = _Batch()
    created: set[int] = set()
    improved: set[int] = set()
    for incoming in papers:
        row = batch.find(incoming)
        if row is not None:
            result.duplicates += 1
        else:
            row = _find(session, incoming)
        if row is None:
            row = _new_row(incoming)
            session.add(row)
            created.add(id(row))
        elif merge(row, incoming) and id(row) not in created:
            improved.add(id(row))
        batch.add(row)
    session.flush()
    result.new, result.updated = len(created), len(improved)
    return result


def _find(session: Session, incoming: PaperIn) -> Paper | None:
    if incoming.arxiv_id:
        found = session.exec(select(Paper).where(col(Paper.external_id) == incoming.arxiv_id)).first()
        if found:
            return found
    same_title = session.exec(select(Paper).where(col(Paper.title_key) == incoming.title_key)
                              .order_by(col(Paper.id))).all()
    return _title_match(incoming, list(same_title))


def _title_match(incoming: PaperIn, rows: list[Paper]) -> Paper | None:
    """Of the rows with the incoming title: for a record with an arXiv id, only one without an id (another id is
    another paper); for a record without an id, the one without an id if any, else the first."""
    untitled = [r for r in rows if r.external_id.startswith("title:")]
    if incoming.arxiv_id:
        return untitled[0] if untitled else None
    candidates = untitled or rows
    return candidates[0] if candidates else None


def _new_row(incoming: PaperIn) -> Paper:
    return Paper(
        external_id=incoming.external_id,
        title_key=incoming.title_key,
        title=incoming.title,
        abstract=incoming.abstract if meaningful(incoming.abstract) else "",
        authors=incoming.authors,
        url=incoming.url,
        pdf_url=incoming.pdf_url,
        code_url=incoming.code_url,
        upvotes=incoming.upvotes or 0,
        comments=incoming.comments or 0,
        keywords=unique_keywords(incoming.keywords),
        source=incoming.source,
        published_at=aware(incoming.published_at),
        tldr=incoming.tldr if meaningful(incoming.tldr) else "",
        thumbnail_url=incoming.thumbnail_url,
        project_url=incoming.project_url,
        organization=incoming.organization,
    )


def merge(row: Paper, incoming: PaperIn) -> bool:
    """Improve `row` with what `incoming` knows better, field by field. Returns whether anything changed."""
    changes: dict[str, object] = {}
    if incoming.arxiv_id and row.external_id.startswith("title:"):
        changes["external_id"] = incoming.arxiv_id
    arxiv_id = str(changes.get("external_id", row.external_id))
    if not arxiv_id.startswith("title:"):
        changes["url"], changes["pdf_url"] = arxiv_links(arxiv_id)  # canonical, whatever was stored before
    else:
        changes["url"] = safe_url(row.url) or incoming.url
        changes["pdf_url"] = safe_url(row.pdf_url) or incoming.pdf_url
    for name in ("code_url", "project_url", "thumbnail_url"):
        changes[name] = safe_url(getattr(row, name)) or getattr(incoming, name)
    if not meaningful(row.title) and meaningful(incoming.title):
        changes["title"] = incoming.title
    if meaningful(incoming.abstract) and (not meaningful(row.abstract) or len(incoming.abstract) > len(row.abstract)):
        changes["abstract"] = incoming.abstract
    if not meaningful(row.tldr) and meaningful(incoming.tldr):
        changes["tldr"] = incoming.tldr
    if not row.authors and incoming.authors:
        changes["authors"] = incoming.authors
    if not row.organization and incoming.organization:
        changes["organization"] = incoming.organization
    if incoming.upvotes is not None:
        changes["upvotes"] = max(row.upvotes or 0, incoming.upvotes)
    if incoming.comments is not None:
        changes["comments"] = max(row.comments or 0, incoming.comments)
    changes["keywords"] = unique_keywords(row.keywords or [], incoming.keywords)
    known = [d for d in (aware(row.published_at), aware(incoming.published_at)) if d is not None]
    changes["published_at"] = min(known) if known else None
    changed = {name: value for name, value in changes.items() if getattr(row, name) != value}
    for name, value in changed.items():
        setattr(row, name, value)
    if "title" in changed or "abstract" in changed:  # the stored vector described the old text
        row.embedding, row.embedding_model = None, ""
    return bool(changed)


def meaningful(text: str | None) -> bool:
    """Real text: at least three letters once markup is gone, and not a placeholder such as "N/A"."""
    if not text:
        return False
    plain = " ".join(_TAG.sub(" ", text).split())
    if plain.strip(" .…-–—:;[]()").casefold() in _PLACEHOLDERS:
        return False
    return sum(ch.isalpha() for ch in plain) >= 3


def aware(moment: datetime | None) -> datetime | None:
    """Feeds may give a time without a zone: it is taken as UTC (the column stores aware times)."""
    if moment is not None and moment.utcoffset() is None:
        return moment.replace(tzinfo=UTC)
    return moment
