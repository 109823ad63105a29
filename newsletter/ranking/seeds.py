"""Seed papers: a reader starts their profile from papers they wrote or liked, named by arXiv id or by title.

The rules for what a reader types ("2401.12345, Attention Is All You Need; https://arxiv.org/abs/1706.03762v7"):

- references are separated by commas, semicolons or line breaks;
- an arXiv id in any form (2401.12345, 2401.12345v2, arXiv:2401.12345, an arxiv.org abs or pdf link) names the
  stored paper with that id, whatever the version;
- anything else is a title, compared as ingest compares titles (case, accents and punctuation ignored); a title
  that itself contains commas is found too (neighbouring pieces are tried joined back together, longest first);
- a reference that names no stored paper is listed back to the reader (InvalidInput naming each one): nothing is
  silently dropped, and nothing is saved until every reference resolves;
- at most MAX_SEEDS papers; the same paper named twice counts once.

Resolved seeds are stored as paper ids on the subscriber (`Subscriber.seed_paper_ids`). The ranker learns from
them like from papers saved with "more like this", never recommends them, and names them in its reasons
("Close to “…”, one of your seed papers").
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlmodel import Session, col, select

from newsletter.errors import InvalidInput
from newsletter.ingest.paper_in import arxiv_id_from, title_key
from newsletter.models import Paper
from subscribers.profiles import MAX_SEED_PAPERS as MAX_SEEDS

_MAX_JOINED = 6  # pieces of one title split by its own commas
_SEPARATORS = re.compile(r"[;\n]")


def resolve(session: Session, text: str) -> tuple[list[Paper], list[str]]:
    """(the stored papers `text` names, in order and without repeats; the references that name none)."""
    found: dict[int, Paper] = {}
    unresolved: list[str] = []
    for chunk in _SEPARATORS.split(text or ""):
        parts = [" ".join(part.split()) for part in chunk.split(",")]
        parts = [part for part in parts if part]
        at = 0
        while at < len(parts):
            for end in range(min(len(parts), at + _MAX_JOINED), at, -1):
                paper = _lookup(session, ", ".join(parts[at:end]), single=end == at + 1)
                if paper is not None:
                    found.setdefault(paper.id, paper)
                    at = end
                    break
            else:
                unresolved.append(parts[at])
                at += 1
    return list(found.values()), unresolved


def seed_paper_ids(session: Session, text: str) -> list[int]:
    """The ids of the papers `text` names; InvalidInput listing every reference that names no stored paper."""
    papers, unresolved = resolve(session, text)
    if unresolved:
        listed = "; ".join(f"\u201c{ref}\u201d" for ref in unresolved)
        raise InvalidInput(f"seed papers not found among stored papers: {listed}. Give an arXiv id (e.g. 2401.12345) "
                           "or the exact title of a paper the newsletter has listed")
    if len(papers) > MAX_SEEDS:
        raise InvalidInput(f"at most {MAX_SEEDS} seed papers, not {len(papers)}")
    return [paper.id for paper in papers]


def seed_papers(session: Session, ids: Sequence[int]) -> list[Paper]:
    """The stored papers with these ids, in the order given (ids of papers no longer stored are skipped)."""
    if not ids:
        return []
    by_id = {p.id: p for p in session.exec(select(Paper).where(col(Paper.id).in_(list(ids))))}
    return [by_id[i] for i in ids if i in by_id]


def seed_text(session: Session, ids: Sequence[int]) -> str:
    """The seeds as a reader would type them back (arXiv id when known, else the title), one per line."""
    return "\n".join(reference(p) for p in seed_papers(session, ids))


def reference(paper: Paper) -> str:
    return paper.external_id if arxiv_id_from(paper.external_id) else paper.title


def _lookup(session: Session, ref: str, single: bool) -> Paper | None:
    if single:
        arxiv_id = arxiv_id_from(ref)
        if arxiv_id:
            return session.exec(select(Paper).where(col(Paper.external_id) == arxiv_id)).first()
    key = title_key(ref)
    if not key:
        return None
    return session.exec(select(Paper).where(col(Paper.title_key) == key).order_by(col(Paper.id))).first()
