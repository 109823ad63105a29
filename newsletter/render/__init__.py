"""Rendering an edition email: one compiled template, filled per recipient (HTML and plain text)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date

from newsletter.render.compile import compiled_html_template, text_template
from newsletter.render.context import PaperView, date_label, paper_view

__all__ = ["RenderedEmail", "PaperView", "paper_view", "render_edition"]


@dataclass
class RenderedEmail:
    subject: str
    html: str
    text: str


@dataclass
class Links:
    unsubscribe_url: str
    preferences_url: str = ""
    view_url: str = ""
    archive_url: str = ""


def one_line(text: str, limit: int = 120) -> str:
    """Header-safe: no CR/LF or other control characters survive, and it is not too long."""
    flat = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def render_edition(day: date, recipient: str, interests: str, papers: list[PaperView], trending: list[PaperView],
                   links: Links, postal_address: str) -> RenderedEmail:
    top = papers[0].title if papers else "no new papers matched today"
    count = len(papers)
    context = {
        "subject": one_line(f"{count} papers for you: {top}" if papers else "Paper Digest: nothing new today"),
        "preheader": one_line(f"Top pick: {top}", 150),
        "date_label": date_label(day),
        "heading": "Your papers today",
        "summary": f"{count} new paper{'s' if count != 1 else ''} matched your interests.",
        "papers": [asdict(p) for p in papers],
        "trending": [asdict(p) for p in trending],
        "recipient": recipient,
        "interests": interests or "(none given yet)",
        "postal_address": postal_address,
        **asdict(links),
    }
    return RenderedEmail(
        subject=context["subject"],
        html=compiled_html_template().render(context),
        text=text_template().render(context),
    )
