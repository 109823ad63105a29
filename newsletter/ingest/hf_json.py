"""Hugging Face daily papers JSON (`/api/daily_papers?date=YYYY-MM-DD`).

Each item is `{"paper": {...}, "title", "summary", "thumbnail", "numComments", "organization", ...}`. Kept: the
paper's arXiv id, title, abstract, visible authors (`hidden: true` ones are left out, as the site does),
upvotes, comments, AI keywords, its one-line AI summary (`ai_summary`, stored as `tldr`), thumbnail, project
page, GitHub repository and the organisation's name.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

from newsletter.errors import FeedError
from newsletter.ingest.paper_in import MAX_COUNT, PaperIn, arxiv_id_from, clean_text, utc_time

MAX_DEPTH = 64  # real daily-papers JSON nests 5 levels deep
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_HF_ID = re.compile(r"^[\w.\-]{1,100}$")


def parse(text: str, source: str) -> list[PaperIn]:
    _check_depth(text, source)
    try:
        items = json.loads(text)
    except json.JSONDecodeError as error:
        raise FeedError(source, f"not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})") from None
    except RecursionError:  # _check_depth should have caught it
        raise FeedError(source, f"JSON nested more than {MAX_DEPTH} levels deep") from None
    if isinstance(items, dict) and isinstance(items.get("papers"), list):
        items = items["papers"]
    if isinstance(items, dict) and isinstance(items.get("error"), str):
        raise FeedError(source, f"the API answered with an error: {clean_text(items['error'])[:200]}")
    if not isinstance(items, list):
        raise FeedError(source, "expected a JSON list of daily-paper items")
    return [_paper(item, index, source) for index, item in enumerate(items)]


def _check_depth(text: str, source: str) -> None:
    """Refuse deep nesting before json.loads recurses into it (990 levels would end in a RecursionError)."""
    depth = 0
    for bracket in _NOT_BRACKET.sub("", _STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        if depth > MAX_DEPTH:
            raise FeedError(source, f"JSON nested more than {MAX_DEPTH} levels deep")


def _paper(item: object, index: int, source: str) -> PaperIn:
    if not isinstance(item, dict):
        raise FeedError(source, f"item {index} is not an object")
    paper: dict = item["paper"] if isinstance(item.get("paper"), dict) else item

    def first(*names: str) -> object:
        """The paper's own value of the first name it has, else the item's."""
        for name in names:
            for holder in (paper, item):
                if holder.get(name) not in (None, "", [], {}):
                    return holder[name]
        return None

    title = _string(first("title"))
    if not title:
        raise FeedError(source, f"item {index} has no title")
    paper_id = _string(paper.get("id"))
    arxiv_id = arxiv_id_from(paper_id) if paper_id else None
    hf_page = f"https://huggingface.co/papers/{paper_id}" if paper_id and _HF_ID.match(paper_id) else ""
    return PaperIn(
        title=title,
        abstract=_string(first("summary")),
        arxiv_id=arxiv_id,
        authors=_authors(paper.get("authors"), index, source),
        url=hf_page,  # replaced by the arXiv abstract page when the id is an arXiv id (PaperIn.canonical_links)
        code_url=_string(first("githubRepo")),
        upvotes=_count(paper.get("upvotes"), "upvotes", index, source),
        comments=_count(item.get("numComments"), "numComments", index, source),
        keywords=_keywords(first("ai_keywords")),
        published_at=_time(first("publishedAt"), index, source),
        source=source,
        tldr=_string(first("ai_summary")),
        thumbnail_url=_string(item.get("thumbnail") or paper.get("thumbnail")),
        project_url=_string(first("projectPage")),
        organization=_organization(first("organization")),
    )


def _string(value: object) -> str:
    return clean_text(value) if isinstance(value, str) else ""


def _authors(raw: object, index: int, source: str) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise FeedError(source, f"item {index}: authors is not a list")
    names = []
    for author in raw:
        if isinstance(author, dict):
            if author.get("hidden") is True:  # hidden on the paper's page: not shown here either
                continue
            author = author.get("name")
        name = _string(author)
        if name:
            names.append(name)
    return names


def _keywords(raw: object) -> list[str]:
    return [k for k in (_string(v) for v in raw) if k] if isinstance(raw, list) else []


def _organization(raw: object) -> str:
    if isinstance(raw, dict):
        return _string(raw.get("fullname")) or _string(raw.get("name"))
    return _string(raw)


def _count(raw: object, name: str, index: int, source: str) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= MAX_COUNT:
        raise FeedError(source, f"item {index}: {name} is not a non-negative integer ({raw!r:.60})")
    return raw


def _time(raw: object, index: int, source: str) -> datetime | None:
    if not raw:
        return None
    try:
        return utc_time(str(raw))
    except ValueError:
        raise FeedError(source, f"item {index}: publishedAt is not a date ({raw!r:.60})") from None
