"""Hugging Face daily papers JSON (`/api/daily_papers?date=YYYY-MM-DD`)."""

from __future__ import annotations

import json
from datetime import datetime

from newsletter.errors import FeedError
from newsletter.ingest.paper_in import PaperIn, arxiv_id_from, arxiv_links, clean_text


def parse(text: str, source: str) -> list[PaperIn]:
    try:
        items = json.loads(text)
    except json.JSONDecodeError as error:
        raise FeedError(source, f"not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})") from None
    if isinstance(items, dict) and isinstance(items.get("papers"), list):
        items = items["papers"]
    if not isinstance(items, list):
        raise FeedError(source, "expected a JSON list of daily-paper items")
    return [_paper(item, index, source) for index, item in enumerate(items)]


def _paper(item: object, index: int, source: str) -> PaperIn:
    if not isinstance(item, dict):
        raise FeedError(source, f"item {index} is not an object")
    paper = item.get("paper") if isinstance(item.get("paper"), dict) else item
    title = clean_text(str(paper.get("title") or item.get("title") or ""))
    if not title:
        raise FeedError(source, f"item {index} has no title")
    paper_id = str(paper.get("id") or "")
    arxiv_id = arxiv_id_from(paper_id) if paper_id else None
    abs_url, pdf_url = arxiv_links(arxiv_id) if arxiv_id else ("", "")
    return PaperIn(
        title=title,
        abstract=clean_text(str(paper.get("summary") or item.get("summary") or "")),
        arxiv_id=arxiv_id,
        authors=_authors(paper.get("authors"), index, source),
        url=f"https://huggingface.co/papers/{paper_id}" if paper_id else abs_url,
        pdf_url=pdf_url,
        code_url=str(paper.get("githubRepo") or item.get("githubRepo") or ""),
        upvotes=_count(paper.get("upvotes"), "upvotes", index, source),
        comments=_count(item.get("numComments"), "numComments", index, source),
        keywords=[str(k) for k in (paper.get("ai_keywords") or item.get("ai_keywords") or []) if str(k).strip()],
        published_at=_time(paper.get("publishedAt") or item.get("publishedAt"), index, source),
        source=source,
    )


def _authors(raw: object, index: int, source: str) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise FeedError(source, f"item {index}: authors is not a list")
    names = [a.get("name") if isinstance(a, dict) else a for a in raw]
    return [clean_text(str(n)) for n in names if n and not (isinstance(n, dict))]


def _count(raw: object, name: str, index: int, source: str) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise FeedError(source, f"item {index}: {name} is not a non-negative integer ({raw!r})")
    return raw


def _time(raw: object, index: int, source: str) -> datetime | None:
    if not raw:
        return None
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        raise FeedError(source, f"item {index}: publishedAt is not a date ({raw!r})") from None
