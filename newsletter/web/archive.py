"""The public archive of each day's trending edition, and a subscriber's own edition "in the browser"."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from sqlmodel import Session, col, select

from newsletter.clock import today
from newsletter.config import Settings
from newsletter.delivery.preview import preview_email
from newsletter.errors import BadToken, NotFound
from newsletter.models import Delivery, Edition
from newsletter.ranking import candidate_papers, trending_papers
from newsletter.render.context import PaperView, date_label, paper_view
from newsletter.web.pages import page
from newsletter.web.state import AppSettings, database
from subscribers.consent import subscriber_for_token
from subscribers.tokens import ISSUED_AT

router = APIRouter()
ARCHIVE_DAYS = 60
ARCHIVE_PAPERS = 15


def showcase(session: Session, day: date, settings: Settings, limit: int) -> tuple[str, list[PaperView]]:
    """A day's trending papers (most upvoted), filled up with its newest papers when fewer than `limit` have
    upvotes (on many days only a couple do). The heading says which: "Trending", "Trending and new", or "New"
    when no source gave upvotes."""
    trending = trending_papers(session, day, settings)[:limit]
    if len(trending) >= limit:
        return "Trending", [paper_view(p) for p in trending]
    shown = {p.id for p in trending}
    newest = sorted((p for p in candidate_papers(session, day, settings.candidate_days) if p.id not in shown),
                    key=lambda p: (p.published_at or p.ingested_at).replace(tzinfo=None), reverse=True)
    papers = [*trending, *newest[: limit - len(trending)]]
    kind = "Trending and new" if trending and len(papers) > len(trending) else "Trending" if trending else "New"
    return kind, [paper_view(p) for p in papers]


@router.get("/archive")
def archive_index(settings: AppSettings):
    with database(settings) as session:
        days = session.exec(select(col(Edition.date)).where(col(Edition.date) <= today())
                            .order_by(col(Edition.date).desc()).limit(ARCHIVE_DAYS)).all()
    return page("archive_index.html", days=[(d, date_label(d)) for d in days])


@router.get("/archive/{day}")
def archive_day(day: date, settings: AppSettings):
    with database(settings) as session:
        if day > today() or session.exec(select(Edition.id).where(col(Edition.date) == day)).first() is None:
            raise NotFound(f"there is no edition for {day.isoformat()}")
        kind, papers = showcase(session, day, settings, ARCHIVE_PAPERS)
    return page("archive_day.html", day=day, label=date_label(day), kind=kind, papers=papers)


@router.get("/view/{token}")
def view_in_browser(token: str, settings: AppSettings):
    """The subscriber's own edition of a day, exactly as emailed (the signed link names the subscriber and day)."""
    with database(settings) as session:
        subscriber, payload = subscriber_for_token(session, "view", token, settings)
        try:
            day = date.fromisoformat(str(payload.get("d")))
        except ValueError:
            raise BadToken("this link is not valid") from None
        delivery = session.exec(select(Delivery).join(Edition, col(Edition.id) == Delivery.edition_id)
                                .where(col(Edition.date) == day, col(Delivery.subscriber_id) == subscriber.id)).first()
        if delivery is None:
            pruned = session.exec(select(Edition.pruned_at).where(col(Edition.date) == day)).first()
            if pruned is not None:  # NEWSLETTER_RETENTION_DAYS shorter than the link's life (newsletter.retention)
                raise NotFound(f"the edition of {day.isoformat()} is older than this newsletter keeps editions")
            raise NotFound(f"there is no edition of {day.isoformat()} for this subscription")
        # Its links are signed as of this link's own time: they expire with it (subscribers.tokens).
        rendered, _ = preview_email(session, subscriber, day, settings, issued_at=payload[ISSUED_AT])
    return HTMLResponse(rendered.html, headers={"X-Robots-Tag": "noindex"})
