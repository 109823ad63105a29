"""Plain values a template needs, built from rows. Pure functions: no database, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

from newsletter.ingest.paper_in import safe_url
from newsletter.models import Paper
from newsletter.render.latex import readable

SNIPPET_CHARS = 320
SHORT_SNIPPET_CHARS = 200  # the abstract's opening under a TL;DR
LINE_CHARS = 100  # the one line under a compact pick's title
AUTHORS_SHOWN = 3


@dataclass
class PaperView:
    title: str
    url: str
    pdf_url: str
    code_url: str
    authors_line: str
    upvotes: int
    snippet: str
    reasons: list[str] = field(default_factory=list)
    more_url: str = ""
    less_url: str = ""
    tldr: str = ""  # the Hugging Face feed's one-line AI summary
    thumbnail_url: str = ""
    project_url: str = ""
    organization: str = ""
    line: str = ""  # one line for a compact pick: the TL;DR, else the abstract's opening

    @property
    def reasons_line(self) -> str:
        return "; ".join(self.reasons)

    @property
    def reason(self) -> str:
        """The first reason, shown prominently (the ranking engine puts the one that matters most first)."""
        return self.reasons[0] if self.reasons else ""

    @property
    def other_reasons(self) -> str:
        return "; ".join(self.reasons[1:])


@lru_cache(maxsize=8192)  # the same abstracts go to many recipients
def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """The start of `text`, cut on a word boundary, with an ellipsis when cut."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-") + "…"


def authors_line(authors: list[str], shown: int = AUTHORS_SHOWN) -> str:
    if not authors:
        return ""
    if len(authors) <= shown:
        return ", ".join(authors)
    return ", ".join(authors[:shown]) + " et al."


link = lru_cache(maxsize=16384)(safe_url)  # the same links go to many recipients


def paper_url(paper: Paper) -> str:
    """The paper's canonical page (its arXiv abstract page when the id is known), or '' when no page is known:
    then no "Paper" link is shown (never a search page standing in for the paper)."""
    return link(paper.url)


def paper_view(paper: Paper, reasons: list[str] | None = None, more_url: str = "", less_url: str = "") -> PaperView:
    """What a reader sees of a paper: LaTeX made readable. Every link from a feed passes `link` here, whatever is
    stored: only absolute http(s) links reach an email or a page (ingest keeps only those too; this is the second
    wall)."""
    tldr = " ".join(readable(paper.tldr).split())
    abstract = snippet(readable(paper.abstract), SHORT_SNIPPET_CHARS if tldr else SNIPPET_CHARS)
    return PaperView(
        title=readable(paper.title),
        url=paper_url(paper),
        pdf_url=link(paper.pdf_url),
        code_url=link(paper.code_url),
        authors_line=authors_line(paper.authors),
        upvotes=paper.upvotes,
        snippet=abstract,
        reasons=list(reasons or []),
        more_url=more_url,
        less_url=less_url,
        tldr=tldr,
        thumbnail_url=link(paper.thumbnail_url),
        project_url=link(paper.project_url),
        organization=" ".join(paper.organization.split()),
        line=snippet(tldr or abstract, LINE_CHARS),
    )


@lru_cache(maxsize=64)
def date_label(day: date) -> str:
    return day.strftime("%A, %B ") + str(day.day) + day.strftime(", %Y")


@lru_cache(maxsize=4096)
def wrap(text: str, width: int = 72, indent: str = "", newline: str = "\n") -> str:
    """Greedy word wrap for the plain-text part: much cheaper than textwrap, and cached, since the same
    abstracts go to many recipients. A word longer than `width` gets a line of its own (URLs stay whole).
    """
    lines: list[str] = []
    line = ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return (newline + indent).join(lines)
