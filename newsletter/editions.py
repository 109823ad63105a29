"""Planning an edition: rank every active subscriber once and record their picks as a pending delivery."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from newsletter.config import Settings
from newsletter.models import Delivery, DeliveryStatus, Edition, Pick, Subscriber, SubscriberStatus
from newsletter.ranking import CandidatePool, candidate_papers, sent_paper_ids


@dataclass
class PlanReport:
    edition_id: int
    planned: int = 0  # new delivery rows
    already_planned: int = 0
    nothing_new: int = 0  # subscribers with no unsent candidate left


def get_or_create_edition(session: Session, day: date) -> Edition:
    edition = session.exec(select(Edition).where(Edition.date == day)).first()
    if edition is not None:
        return edition
    try:
        with session.begin_nested():
            edition = Edition(date=day)
            session.add(edition)
    except IntegrityError:  # another process created it first
        edition = session.exec(select(Edition).where(Edition.date == day)).one()
    return edition


def plan_edition(session: Session, day: date, settings: Settings, only: list[int] | None = None) -> PlanReport:
    """Create the missing delivery rows (with picks) of `day`'s edition. Safe to run again: planned rows stay."""
    edition = get_or_create_edition(session, day)
    report = PlanReport(edition_id=edition.id)
    planned_for = set(session.exec(select(Delivery.subscriber_id).where(Delivery.edition_id == edition.id)))
    query = (select(Subscriber).where(Subscriber.status == SubscriberStatus.active, Subscriber.paused == False)  # noqa: E712
             .order_by(Subscriber.id))
    if only is not None:
        query = query.where(Subscriber.id.in_(only))
    pool = CandidatePool(candidate_papers(session, day, settings.candidate_days))
    for subscriber in session.exec(query).all():
        if subscriber.id in planned_for:
            report.already_planned += 1
            continue
        picks = pool.rank(subscriber, sent_paper_ids(session, subscriber.id), settings.papers_per_email)
        delivery = Delivery(edition_id=edition.id, subscriber_id=subscriber.id)
        if not picks:
            delivery.status = DeliveryStatus.skipped.value
            delivery.error = "no new papers matched"
            report.nothing_new += 1
        else:
            report.planned += 1
        session.add(delivery)
        session.flush()
        for position, pick in enumerate(picks, start=1):
            session.add(Pick(delivery_id=delivery.id, paper_id=pick.paper.id, position=position,
                             score=pick.score, reasons=pick.reasons))
    session.flush()
    return report
