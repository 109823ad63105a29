"""Figures for operators: subscribers, deliveries, bounces, complaints, unsubscribes, papers, most-sent papers.

Everything is counted from the database, all time or for one day (that day's edition, events and ingests).
Editions whose details the retention prune removed count through their tallies (newsletter.retention), so the
figures are the same before and after a prune.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Select, func, union_all
from sqlmodel import Session, col, select

from newsletter.edition_control import delivery_counts
from newsletter.models import (
    Delivery,
    DeliveryStatus,
    Edition,
    EditionPaperTally,
    Event,
    Paper,
    Pick,
    Subscriber,
    SubscriberStatus,
)

EVENT_KINDS = {"bounces": "bounce", "soft_bounces": "soft_bounce", "complaints": "complaint",
               "unsubscribes": "unsubscribe"}
MOST_SENT_SHOWN = 10


def gather_stats(session: Session, day: date | None = None) -> dict:
    """A JSON-ready summary; with `day`, deliveries, events and ingests of that day only."""
    edition = session.exec(select(Edition).where(col(Edition.date) == day)).first() if day else None
    edition_id = edition.id if edition else (-1 if day else None)  # a day without an edition has no deliveries
    span = _day_span(day) if day else None
    return {
        "date": day.isoformat() if day else None,
        "edition": {"id": edition.id, "status": edition.status} if edition else None,
        "subscribers": _subscriber_counts(session),
        "deliveries": delivery_counts(session, edition_id),
        "events": {name: _event_count(session, kind, span) for name, kind in EVENT_KINDS.items()},
        "papers_ingested": _papers_ingested(session, span),
        "most_sent_papers": _most_sent(session, edition_id),
    }


def _day_span(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def _subscriber_counts(session: Session) -> dict[str, int]:
    counts = {status.value: 0 for status in SubscriberStatus}
    counts.update(dict(session.exec(select(Subscriber.status, func.count()).group_by(col(Subscriber.status))).all()))
    counts["total"] = sum(counts.values())
    counts["paused"] = session.exec(select(func.count()).select_from(Subscriber)
                                    .where(col(Subscriber.paused).is_(True))).one()
    return counts


def _event_count(session: Session, kind: str, span: tuple[datetime, datetime] | None) -> int:
    query = select(func.count()).select_from(Event).where(col(Event.kind) == kind)
    if span:
        query = query.where(col(Event.created_at) >= span[0], col(Event.created_at) < span[1])
    return session.exec(query).one()


def _papers_ingested(session: Session, span: tuple[datetime, datetime] | None) -> int:
    query = select(func.count()).select_from(Paper)
    if span:
        query = query.where(col(Paper.ingested_at) >= span[0], col(Paper.ingested_at) < span[1])
    return session.exec(query).one()


def _most_sent(session: Session, edition_id: int | None) -> list[dict]:
    """Papers by how many sent emails carried them, pruned editions' tallies included (ties: lower paper id first)."""
    live: Select = (select(col(Pick.paper_id).label("paper_id"), func.count(col(Pick.id)).label("sent"))
                    .join(Delivery, col(Delivery.id) == Pick.delivery_id)
                    .where(col(Delivery.status) == DeliveryStatus.sent).group_by(col(Pick.paper_id)))
    pruned: Select = select(col(EditionPaperTally.paper_id).label("paper_id"),
                            col(EditionPaperTally.sent).label("sent"))
    if edition_id is not None:
        live = live.where(col(Delivery.edition_id) == edition_id)
        pruned = pruned.where(col(EditionPaperTally.edition_id) == edition_id)
    both = union_all(live, pruned).subquery()
    sent_count = func.sum(both.c.sent).label("sent")
    query = (select(Paper.id, Paper.external_id, Paper.title, sent_count)
             .join(both, both.c.paper_id == Paper.id)
             .group_by(col(Paper.id), col(Paper.external_id), col(Paper.title))
             .order_by(sent_count.desc(), col(Paper.id)).limit(MOST_SENT_SHOWN))
    return [{"paper_id": pid, "external_id": ext, "title": title, "sent": int(sent)}
            for pid, ext, title, sent in session.exec(query)]
