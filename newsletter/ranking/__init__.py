"""Choosing papers for subscribers: the candidate pool of an edition, each subscriber's profile, what they were sent."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta, timezone

from sqlmodel import Session, or_, select

from newsletter.models import Delivery, DeliveryStatus, Feedback, Paper, Pick, Subscriber
from newsletter.ranking import embeddings
from newsletter.ranking.score import CandidatePool, Profile, Recommendation

__all__ = ["CandidatePool", "Profile", "Recommendation", "candidate_papers", "load_pool", "profiles_for",
           "sent_paper_ids"]


def edition_end(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=timezone.utc)


def candidate_papers(session: Session, day: date, window_days: int) -> list[Paper]:
    """Papers ingested or published in the `window_days` up to the end of `day`."""
    end = edition_end(day)
    start = end - timedelta(days=window_days)
    recent = or_(Paper.ingested_at.between(start, end), Paper.published_at.between(start, end))
    return list(session.exec(select(Paper).where(recent).order_by(Paper.id)))


def load_pool(session: Session, day: date, window_days: int) -> CandidatePool:
    """The edition's candidates, indexed once. Papers that missed embedding at ingest are embedded (and stored) here."""
    papers = candidate_papers(session, day, window_days)
    embeddings.embed_missing(session, papers)
    return CandidatePool(papers, now=edition_end(day))


def sent_paper_ids(session: Session, subscriber_id: int, exclude_edition_id: int | None = None) -> set[int]:
    """Papers this subscriber has already been sent (in deliveries the server accepted)."""
    return sent_papers_of(session, [subscriber_id], exclude_edition_id)[subscriber_id]


def sent_papers_of(session: Session, subscriber_ids: Sequence[int],
                   exclude_edition_id: int | None = None) -> dict[int, set[int]]:
    """subscriber id -> ids of the papers they were sent, for many subscribers in one query."""
    query = (
        select(Delivery.subscriber_id, Pick.paper_id)
        .join(Delivery, Delivery.id == Pick.delivery_id)
        .where(Delivery.subscriber_id.in_(subscriber_ids), Delivery.status == DeliveryStatus.sent)
    )
    if exclude_edition_id is not None:
        query = query.where(Delivery.edition_id != exclude_edition_id)
    sent: dict[int, set[int]] = {sid: set() for sid in subscriber_ids}
    for subscriber_id, paper_id in session.exec(query):
        sent[subscriber_id].add(paper_id)
    return sent


def feedback_papers_of(session: Session, subscriber_ids: Sequence[int]) -> dict[int, dict[str, list[Paper]]]:
    """subscriber id -> {"more": [papers], "less": [papers]}, for many subscribers in one query."""
    found: dict[int, dict[str, list[Paper]]] = {sid: {"more": [], "less": []} for sid in subscriber_ids}
    rows = session.exec(select(Feedback.subscriber_id, Feedback.kind, Paper)
                        .join(Paper, Paper.id == Feedback.paper_id)
                        .where(Feedback.subscriber_id.in_(subscriber_ids)).order_by(Feedback.id))
    for subscriber_id, kind, paper in rows:
        found[subscriber_id][kind].append(paper)
    return found


def profiles_for(session: Session, subscribers: Sequence[Subscriber]) -> list[Profile]:
    """Ranker profiles for a batch of subscribers: a handful of queries, whatever the batch size."""
    ids = [s.id for s in subscribers]
    vectors = embeddings.profile_vectors(session, subscribers)
    sent = sent_papers_of(session, ids)
    feedback = feedback_papers_of(session, ids)
    return [Profile.of(s, vector=v, sent=sent[s.id], liked=feedback[s.id]["more"], disliked=feedback[s.id]["less"])
            for s, v in zip(subscribers, vectors)]

