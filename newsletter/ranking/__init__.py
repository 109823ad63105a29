"""Choosing papers for a subscriber: the candidate pool of an edition, and what each subscriber was already sent."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from sqlmodel import Session, or_, select

from newsletter.models import Delivery, DeliveryStatus, Paper, Pick, Subscriber
from newsletter.ranking.score import CandidatePool, Recommendation

__all__ = ["CandidatePool", "Recommendation", "candidate_papers", "sent_paper_ids", "recommend"]


def candidate_papers(session: Session, day: date, window_days: int) -> list[Paper]:
    """Papers ingested or published in the `window_days` up to the end of `day`."""
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=timezone.utc)
    start = end - timedelta(days=window_days)
    recent = or_(Paper.ingested_at.between(start, end), Paper.published_at.between(start, end))
    return list(session.exec(select(Paper).where(recent).order_by(Paper.id)))


def sent_paper_ids(session: Session, subscriber_id: int, exclude_edition_id: int | None = None) -> set[int]:
    """Papers this subscriber has already been sent (in deliveries the server accepted)."""
    query = (
        select(Pick.paper_id)
        .join(Delivery, Delivery.id == Pick.delivery_id)
        .where(Delivery.subscriber_id == subscriber_id, Delivery.status == DeliveryStatus.sent)
    )
    if exclude_edition_id is not None:
        query = query.where(Delivery.edition_id != exclude_edition_id)
    return set(session.exec(query))


def recommend(session: Session, subscriber: Subscriber, day: date, window_days: int, limit: int) -> list[Recommendation]:
    pool = CandidatePool(candidate_papers(session, day, window_days))
    return pool.rank(subscriber, sent_paper_ids(session, subscriber.id), limit)
