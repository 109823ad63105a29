"""Rendering an edition email: one compiled template, filled per recipient (HTML and plain text).

Both parts come out mail-ready: CRLF line endings; the HTML is ASCII (non-ASCII as character references).

The email's best places say what is inside: the subject names the top pick and how many more there are, in at most
SUBJECT_CHARS characters cut at a word (so it changes every day with the top pick); the preheader (the line a
mailbox shows after the subject) names the next picks instead of repeating the subject. The top TOP_PICKS papers
get their abstract and every reason; the rest are compact: title, one line, the first reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from newsletter.links import Links
from newsletter.render.compile import compiled_html_template, text_template
from newsletter.render.context import PaperView, date_label, paper_view

__all__ = ["RenderedEmail", "PaperView", "cut_at_word", "one_line", "paper_view", "preheader_text", "render_context",
           "render_edition", "subject_line"]

SUBJECT_CHARS = 70  # what a phone's inbox shows of a subject, about; Gmail's web inbox shows less
PREHEADER_CHARS = 140
TOP_PICKS = 2  # picks shown whole (TL;DR or abstract, every reason); the rest are compact


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


def cut_at_word(text: str, limit: int) -> str:
    """`text` on one line in at most `limit` characters, cut at a word boundary with "…" when it is longer (a
    single word longer than the limit is cut inside it)."""
    flat = one_line(text, 10 * limit + 10)
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 3:
        cut = cut[:space]
    return cut.rstrip(" ,;:-–—(") + "…"


def subject_line(titles: list[str]) -> str:
    """"<top pick's title> +N more" in at most SUBJECT_CHARS characters, the title cut at a word when needed."""
    if not titles:
        return "Paper Digest: nothing new for you today"
    more = f" +{len(titles) - 1} more" if len(titles) > 1 else ""
    return cut_at_word(titles[0], SUBJECT_CHARS - len(more)) + more


def preheader_text(titles: list[str], first_line: str = "") -> str:
    """What the inbox shows after the subject: the next two picks (or the top pick's own line when it is alone),
    never the subject again."""
    if not titles:
        return "No new paper matched your interests today; here is what is trending."
    if len(titles) == 1:
        return cut_at_word(first_line or "Your one new paper today.", PREHEADER_CHARS)
    text = "Also: " + " · ".join(cut_at_word(t, 64) for t in titles[1:3])
    return cut_at_word(text + (f" and {len(titles) - 3} more" if len(titles) > 3 else ""), PREHEADER_CHARS)


def footer_interests(interests: str) -> str:
    """The interests as they end the footer's sentence (which adds its own full stop)."""
    return " ".join(interests.split()).rstrip(" .;,:") or "(none given yet)"


def render_context(day: date, recipient: str, interests: str, papers: list[PaperView], trending: list[PaperView],
                   links: Links, postal_address: str, language: str = "en") -> dict:
    """Everything both templates need. Paper views are passed as they are (no copies: this runs per recipient)."""
    count = len(papers)
    titles = [p.title for p in papers]
    return {
        "lang": language,
        "subject": subject_line(titles),
        "preheader": preheader_text(titles, papers[0].line if papers else ""),
        "date_label": date_label(day),
        "heading": f"{count} paper{'s' if count != 1 else ''} for you today" if papers
                   else "Nothing new for you today",
        "summary": "" if papers else "No new paper matched your interests; here is what is trending.",
        "papers": papers,
        "top_count": TOP_PICKS,
        "trending": trending,
        "recipient": recipient,
        "interests": footer_interests(interests),
        "postal_address": postal_address,
        "unsubscribe_url": links.unsubscribe_url,
        "preferences_url": links.preferences_url,
        "view_url": links.view_url,
        "archive_url": links.archive_url,
    }


def render_edition(day: date, recipient: str, interests: str, papers: list[PaperView], trending: list[PaperView],
                   links: Links, postal_address: str, language: str = "en") -> RenderedEmail:
    context = render_context(day, recipient, interests, papers, trending, links, postal_address, language)
    return RenderedEmail(subject=context["subject"], html=fill_html(context), text=text_template().render(context))


def fill_html(context: dict) -> str:
    html = compiled_html_template().render(context)  # ASCII: values pass through compile.ascii_html
    return html if html.isascii() else html.encode("ascii", "xmlcharrefreplace").decode("ascii")  # never, kept safe
