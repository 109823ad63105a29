"""Composing one subscriber's email: their picks, their signed links, the edition's trending list."""

from __future__ import annotations

from datetime import date

from sqlmodel import Session, select

from newsletter.config import Settings
from newsletter.delivery.envelope import unsubscribe_mailbox
from newsletter.models import Delivery, Paper, Pick, Subscriber
from newsletter.ranking import Recommendation, candidate_papers, load_pool, profiles_for
from newsletter.ranking.feedback import feedback_url
from newsletter.render import Links, RenderedEmail, render_edition
from newsletter.render.context import paper_view
from newsletter.render.mime import address_domain, build_message, display_address
from subscribers.tokens import make_token

TRENDING_SHOWN = 5


def signed_path(purpose: str, subscriber: Subscriber, settings: Settings, extra: dict | None = None) -> str:
    """The web app's path for a signed link: each token purpose is served at /<purpose>/<token>."""
    return f"/{purpose}/{make_token(purpose, subscriber.id, subscriber.email, extra, settings=settings)}"


def absolute_url(path: str, settings: Settings) -> str:
    return f"{settings.base_url.rstrip('/')}{path}"


def unsubscribe_url(subscriber: Subscriber, settings: Settings) -> str:
    return absolute_url(signed_path("unsubscribe", subscriber, settings), settings)


def view_path(subscriber: Subscriber, day: date, settings: Settings) -> str:
    return signed_path("view", subscriber, settings, {"d": day.isoformat()})


def subscriber_links(subscriber: Subscriber, day: date, settings: Settings) -> Links:
    return Links(
        unsubscribe_url=unsubscribe_url(subscriber, settings),
        preferences_url=absolute_url(signed_path("preferences", subscriber, settings), settings),
        view_url=absolute_url(view_path(subscriber, day, settings), settings),
        archive_url=absolute_url("/archive", settings),
    )


def trending_papers(session: Session, day: date, settings: Settings) -> list[Paper]:
    """The edition's most upvoted candidates: enough that each reader still gets a few they were not picked."""
    papers = [p for p in candidate_papers(session, day, settings.candidate_days) if p.upvotes]
    return sorted(papers, key=lambda p: -p.upvotes)[: TRENDING_SHOWN + settings.papers_per_email]


def render_for(subscriber: Subscriber, day: date, picks: list[Recommendation], trending_pool: list[Paper],
               settings: Settings) -> RenderedEmail:
    chosen = {r.paper.id for r in picks}
    trending = [p for p in trending_pool if p.id not in chosen][:TRENDING_SHOWN]
    return render_edition(
        day=day,
        recipient=subscriber.email,
        interests=subscriber.interests or ", ".join(subscriber.keywords),
        papers=[paper_view(r.paper, r.reasons, feedback_url(subscriber, r.paper.id, "more", settings),
                           feedback_url(subscriber, r.paper.id, "less", settings)) for r in picks],
        trending=[paper_view(p) for p in trending],
        links=subscriber_links(subscriber, day, settings),
        postal_address=settings.postal_address,
    )


def delivery_picks(session: Session, delivery_id: int, papers: dict[int, Paper] | None = None) -> list[Recommendation]:
    """A planned delivery's picks, best first."""
    return picks_of_deliveries(session, [delivery_id], papers).get(delivery_id, [])


def picks_of_deliveries(session: Session, delivery_ids: list[int],
                        papers: dict[int, Paper] | None = None) -> dict[int, list[Recommendation]]:
    """delivery id -> its picks, best first, in two queries however many deliveries. `papers` (id -> Paper) is a
    cache shared by a send run: each paper is loaded once per run rather than once per email."""
    rows = session.exec(select(Pick.delivery_id, Pick.paper_id, Pick.score, Pick.reasons)
                        .where(Pick.delivery_id.in_(delivery_ids)).order_by(Pick.delivery_id, Pick.position)).all()
    papers = {} if papers is None else papers
    missing = list({paper_id for _, paper_id, _, _ in rows if paper_id not in papers})
    if missing:
        papers.update((paper.id, paper) for paper in session.exec(select(Paper).where(Paper.id.in_(missing))))
    picks: dict[int, list[Recommendation]] = {}
    for delivery_id, paper_id, score, reasons in rows:
        picks.setdefault(delivery_id, []).append(Recommendation(papers[paper_id], score, reasons))
    return picks


def live_picks(session: Session, subscriber: Subscriber, day: date, settings: Settings,
               limit: int | None = None) -> list[Recommendation]:
    """What the ranker would pick for this subscriber now (for previews and `recommend`)."""
    pool = load_pool(session, day, settings.candidate_days)
    return pool.rank(profiles_for(session, [subscriber])[0], limit or settings.papers_per_email)


def preview_email(session: Session, subscriber: Subscriber, day: date, settings: Settings) -> tuple[RenderedEmail, bytes]:
    """Exactly what `subscriber` gets for `day`: their planned picks if the edition was planned, else a live ranking."""
    from newsletter.models import Edition

    delivery = session.exec(
        select(Delivery).join(Edition, Edition.id == Delivery.edition_id)
        .where(Edition.date == day, Delivery.subscriber_id == subscriber.id)
    ).first()
    picks = delivery_picks(session, delivery.id) if delivery else live_picks(session, subscriber, day, settings)
    rendered = render_for(subscriber, day, picks, trending_papers(session, day, settings), settings)
    message_id = message_id_for(delivery, settings) if delivery else f"<preview@{address_domain(settings.from_address)}>"
    return rendered, message_bytes(rendered, subscriber, message_id, settings)


def message_id_for(delivery: Delivery, settings: Settings) -> str:
    """Derived from the delivery, so a second copy of the same delivery is recognisable by its Message-ID."""
    return delivery_message_id(delivery.edition_id, delivery.id, settings)


def delivery_message_id(edition_id: int, delivery_id: int, settings: Settings) -> str:
    return f"<edition-{edition_id}.delivery-{delivery_id}@{address_domain(settings.from_address)}>"


def unsubscribe_mailto(subscriber: Subscriber, settings: Settings) -> str:
    """The mailto: form of List-Unsubscribe: the signed token rides in the subject (local parts are too short)."""
    token = make_token("unsubscribe", subscriber.id, subscriber.email, settings=settings)
    return f"mailto:{unsubscribe_mailbox(settings)}?subject=unsubscribe%20{token}"


def list_headers(subscriber: Subscriber, settings: Settings) -> dict[str, str]:
    """RFC 2369 / RFC 8058 bulk-mail headers; each unsubscribe target carries the recipient's signed token."""
    return {
        "List-Unsubscribe": f"<{unsubscribe_url(subscriber, settings)}>, <{unsubscribe_mailto(subscriber, settings)}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": f"Paper Digest <digest.{address_domain(settings.from_address)}>",
        "Precedence": "bulk",
    }


def message_bytes(rendered: RenderedEmail, subscriber: Subscriber, message_id: str, settings: Settings) -> bytes:
    to = display_address(subscriber.name, subscriber.email) if subscriber.name else subscriber.email
    return build_message(rendered, sender=settings.from_address, to=to, message_id=message_id,
                         extra_headers=list_headers(subscriber, settings))
