"""Planning an edition: rank every active subscriber once and record their picks as a pending delivery.

An edition takes new deliveries only while it is open (planned or sending): once paused or cancelled by an
operator, or pruned by the retention policy (newsletter.retention), planning refuses it (EditionClosed), whoever
plans (the CLI, a send tick, the demo), so no pending row ever lands in an edition that nothing will send, and an
edition whose deliveries were pruned is never sent to everyone again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from newsletter.batching import chunked
from newsletter.config import Settings
from newsletter.errors import EditionClosed
from newsletter.models import Delivery, DeliveryStatus, Edition, EditionStatus, Pick, Subscriber, SubscriberStatus
from newsletter.ranking import load_pool, profiles_for
from newsletter.ranking.score import CHUNK, THREADS

CLOSED = (EditionStatus.paused, EditionStatus.cancelled)


@dataclass
class PlanReport:
    edition_id: int
    planned: int = 0  # new delivery rows
    already_planned: int = 0
    nothing_new: int = 0  # subscribers with no unsent candidate left


def get_or_create_edition(session: Session, day: date) -> Edition:
    edition = session.exec(select(Edition).where(col(Edition.date) == day)).first()
    if edition is not None:
        return edition
    try:
        with session.begin_nested():
            edition = Edition(date=day)
            session.add(edition)
    except IntegrityError:  # another process created it first
        edition = session.exec(select(Edition).where(col(Edition.date) == day)).one()
    return edition


def require_open(edition: Edition) -> None:
    """Raise EditionClosed when an operator paused or cancelled the edition, or the retention prune took its
    details (planning it again would send everyone that old edition a second time)."""
    if edition.pruned_at is not None:
        raise EditionClosed(edition.id, f"edition {edition.id} ({edition.date}) is older than the retention "
                                        "(NEWSLETTER_RETENTION_DAYS) and was pruned; it takes no new deliveries")
    if edition.status == EditionStatus.paused:
        raise EditionClosed(edition.id, f"edition {edition.id} ({edition.date}) is paused; "
                                        f"`newsletter editions resume {edition.id}` continues it")
    if edition.status == EditionStatus.cancelled:
        raise EditionClosed(edition.id, f"edition {edition.id} ({edition.date}) is cancelled; nothing more is sent")


def plan_edition(session: Session, day: date, settings: Settings, only: list[int] | None = None) -> PlanReport:
    """Create the missing delivery rows (with picks) of `day`'s edition. Safe to run again: planned rows stay.

    Raises EditionClosed when the edition is paused or cancelled.
    """
    edition = get_or_create_edition(session, day)
    require_open(edition)
    assert edition.id is not None
    report = PlanReport(edition_id=edition.id)
    planned_for = set(session.exec(select(Delivery.subscriber_id).where(col(Delivery.edition_id) == edition.id)))
    query = (select(Subscriber)
             .where(col(Subscriber.status) == SubscriberStatus.active, col(Subscriber.paused).is_(False))
             .order_by(col(Subscriber.id)))
    if only is not None:
        query = query.where(col(Subscriber.id).in_(only))
    subscribers = list(session.exec(query))
    report.already_planned = sum(1 for s in subscribers if s.id in planned_for)
    todo = [s for s in subscribers if s.id not in planned_for]
    pool = load_pool(session, day, settings)
    for chunk in chunked(todo, CHUNK * THREADS):  # one chunk of subscribers per ranking thread
        ranked = pool.rank_many(profiles_for(session, chunk, settings), settings.papers_per_email, chunk=CHUNK)
        _add_deliveries(session, edition.id, list(zip(chunk, ranked)), report)
    session.flush()
    return report


def _add_deliveries(session: Session, edition_id: int, planned: list[tuple[Subscriber, list]],
                    report: PlanReport) -> None:
    """One delivery row per subscriber (skipped when nothing new matched) and its picks, in two bulk inserts
    (rows as dicts, not model objects: building and flushing ORM objects cost more than the ranking)."""
    deliveries = [{"edition_id": edition_id, "subscriber_id": subscriber.id, "attempts": 0,
                   "status": (DeliveryStatus.pending if picks else DeliveryStatus.skipped).value,
                   "error": None if picks else "no new papers matched"} for subscriber, picks in planned]
    report.planned += sum(1 for _, picks in planned if picks)
    report.nothing_new += sum(1 for _, picks in planned if not picks)
    # one multi-row INSERT ... RETURNING, ids in the rows' order: the ids the picks need
    ids = session.execute(insert(Delivery).returning(col(Delivery.id), sort_by_parameter_order=True),
                          deliveries).scalars().all()
    rows = [{"delivery_id": delivery_id, "paper_id": pick.paper.id, "position": position, "score": pick.score,
             "reasons": pick.reasons}
            for delivery_id, (_, picks) in zip(ids, planned) for position, pick in enumerate(picks, start=1)]
    if rows:
        session.execute(insert(Pick), rows)
