"""One subscriber's edition email (subject, HTML and text): their picks, their signed links, the trending list."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlmodel import Session, col, select

from newsletter.config import Settings
from newsletter.links import edition_links, feedback_url
from newsletter.models import Paper, Pick, Subscriber
from newsletter.ranking import Recommendation
from newsletter.render import RenderedEmail, render_edition
from newsletter.render.context import paper_view

TRENDING_SHOWN = 3


def trending_room(picks: int, settings: Settings) -> int:
    """How many trending papers follow `picks` picks: they fill a short edition up to papers_per_email (at most
    TRENDING_SHOWN), so a full edition stays within three phone screens and a reader with few matches still
    gets something to read."""
    return max(0, min(TRENDING_SHOWN, settings.papers_per_email - picks))


def render_for(subscriber: Subscriber, day: date, picks: Sequence[Recommendation], trending_pool: Sequence[Paper],
               settings: Settings, issued_at: int | None = None) -> RenderedEmail:
    """The edition of `day` for `subscriber`: `picks` in order, then the trending papers not among them.
    `issued_at`: sign its links as of that time (newsletter.links.signed_path); default now."""
    assert subscriber.id is not None
    chosen = {r.paper.id for r in picks}
    trending = [p for p in trending_pool if p.id not in chosen][:trending_room(len(picks), settings)]
    return render_edition(
        day=day,
        recipient=subscriber.email,
        interests=subscriber.interests or ", ".join(subscriber.keywords),
        papers=[paper_view(r.paper, r.reasons, feedback_url(subscriber, r.paper.id, "more", settings, issued_at),
                           feedback_url(subscriber, r.paper.id, "less", settings, issued_at)) for r in picks],
        trending=[paper_view(p) for p in trending],
        links=edition_links(subscriber, day, settings, issued_at),
        postal_address=settings.postal_address,
        language=settings.language,
    )


def delivery_picks(session: Session, delivery_id: int, papers: dict[int, Paper] | None = None) -> list[Recommendation]:
    """A planned delivery's picks, best first."""
    return picks_of_deliveries(session, [delivery_id], papers).get(delivery_id, [])


def picks_of_deliveries(session: Session, delivery_ids: Sequence[int],
                        papers: dict[int, Paper] | None = None) -> dict[int, list[Recommendation]]:
    """delivery id -> its picks, best first, in two queries however many deliveries. `papers` (id -> Paper) is a
    cache shared by a send run: each paper is loaded once per run rather than once per email."""
    rows = session.exec(select(Pick.delivery_id, Pick.paper_id, Pick.score, Pick.reasons)
                        .where(col(Pick.delivery_id).in_(delivery_ids))
                        .order_by(col(Pick.delivery_id), col(Pick.position))).all()
    papers = {} if papers is None else papers
    missing = list({paper_id for _, paper_id, _, _ in rows if paper_id not in papers})
    if missing:
        found = session.exec(select(Paper).where(col(Paper.id).in_(missing)))
        papers.update((paper.id, paper) for paper in found if paper.id is not None)
    picks: dict[int, list[Recommendation]] = {}
    for delivery_id, paper_id, score, reasons in rows:
        picks.setdefault(delivery_id, []).append(Recommendation(papers[paper_id], score, list(reasons)))
    return picks
