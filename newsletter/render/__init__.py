"""Rendering an edition email: one compiled template, filled per recipient (HTML and plain text).

Both parts come out mail-ready: CRLF line endings; the HTML is ASCII (non-ASCII as character references).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from newsletter.links import Links
from newsletter.render.compile import compiled_html_template, text_template
from newsletter.render.context import PaperView, date_label, paper_view

__all__ = ["RenderedEmail", "PaperView", "one_line", "paper_view", "render_context", "render_edition"]


@dataclass
class RenderedEmail:
    subject: str
    html: str
    text: str


def one_line(text: str, limit: int = 120) -> str:
    """Header-safe: no CR/LF or other control characters survive, and it is not too long."""
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else " " for ch in text)
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def render_context(day: date, recipient: str, interests: str, papers: list[PaperView], trending: list[PaperView],
                   links: Links, postal_address: str) -> dict:
    """Everything both templates need. Paper views are passed as they are (no copies: this runs per recipient)."""
    top = papers[0].title if papers else ""
    count = len(papers)
    return {
        "subject": one_line(f"{count} paper{'s' if count != 1 else ''} for you: {top}" if papers
                            else "Paper Digest: nothing new for you today"),
        "preheader": one_line(f"Top pick: {top}" if papers else "No new paper matched your interests today.", 150),
        "date_label": date_label(day),
        "heading": "Your papers today" if papers else "Nothing new for you today",
        "summary": f"{count} new paper{'s' if count != 1 else ''} matched your interests." if papers
                   else "No new paper matched your interests; here is what is trending.",
        "papers": papers,
        "trending": trending,
        "recipient": recipient,
        "interests": interests or "(none given yet)",
        "postal_address": postal_address,
        "unsubscribe_url": links.unsubscribe_url,
        "preferences_url": links.preferences_url,
        "view_url": links.view_url,
        "archive_url": links.archive_url,
    }


def render_edition(day: date, recipient: str, interests: str, papers: list[PaperView], trending: list[PaperView],
                   links: Links, postal_address: str) -> RenderedEmail:
    context = render_context(day, recipient, interests, papers, trending, links, postal_address)
    return RenderedEmail(subject=context["subject"], html=fill_html(context), text=text_template().render(context))


def fill_html(context: dict) -> str:
    html = compiled_html_template().render(context)  # ASCII: values pass through compile.ascii_html
    return html if html.isascii() else html.encode("ascii", "xmlcharrefreplace").decode("ascii")  # never, kept safe
