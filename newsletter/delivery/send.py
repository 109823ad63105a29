"""Sending an edition: claim each pending row, re-check the subscriber, render, hand to SMTP, record."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import update
from sqlmodel import Session, select

from newsletter.compose import compose_delivery, message_id_for, trending_papers
from newsletter.config import Settings
from newsletter.delivery import ledger
from newsletter.log import event
from newsletter.delivery.smtp import PermanentFailure, SmtpSender, TemporaryFailure
from newsletter.models import Delivery, DeliveryStatus, Edition, EditionStatus, Subscriber, SubscriberStatus

log = logging.getLogger("newsletter.delivery")
MAX_CONSECUTIVE_DEFERRALS = 5  # then the server is likely down: stop and leave the rest pending


@dataclass
class SendReport:
    edition_id: int
    sent: int = 0
    failed: int = 0  # permanent refusals
    deferred: int = 0  # temporary failures, left pending for a later run
    skipped: int = 0  # suppressed at send time, or taken by another sender
    errors: list[str] = field(default_factory=list)
    stopped: str = ""  # why the run ended before the last pending row: "interrupted", "edition paused", ...

    @property
    def handled(self) -> int:
        return self.sent + self.failed + self.deferred + self.skipped


def send_edition(session: Session, edition_id: int, settings: Settings, *, limit: int | None = None,
                 delivery_ids: list[int] | None = None,
                 on_progress: Callable[[SendReport], None] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> SendReport:
    """Send the pending deliveries of an edition (all, or only those in `delivery_ids`) once.

    Safe to run again and beside other senders: each row is claimed before it is sent. Before each claim the
    edition's status is read again, so a pause or cancel from elsewhere takes effect after the message in flight;
    `should_stop` (e.g. set by Ctrl-C) ends the run the same way. Unsent rows stay pending for the next run.
    """
    edition = session.get(Edition, edition_id)
    report = SendReport(edition_id=edition_id)
    if edition is None or edition.status in (EditionStatus.paused, EditionStatus.cancelled):
        return report
    ledger.release_stale(session, edition_id)
    trending_pool = trending_papers(session, edition.date, settings)
    consecutive_deferrals = 0
    with SmtpSender(settings) as sender:
        if delivery_ids is None:
            delivery_ids = ledger.pending_ids(session, edition_id, limit=limit)
        for delivery_id in delivery_ids:
            report.stopped = _reason_to_stop(session, edition_id, should_stop)
            if report.stopped:
                break
            deferred_before = report.deferred
            _send_one(session, sender, delivery_id, edition, trending_pool, settings, report)
            consecutive_deferrals = consecutive_deferrals + 1 if report.deferred > deferred_before else 0
            if on_progress:
                on_progress(report)
            if consecutive_deferrals >= MAX_CONSECUTIVE_DEFERRALS:
                report.stopped = f"{consecutive_deferrals} temporary failures in a row"
                break
    _update_edition_status(session, edition)
    return report


def _reason_to_stop(session: Session, edition_id: int, should_stop: Callable[[], bool] | None) -> str:
    if should_stop and should_stop():
        return "interrupted"
    status = session.exec(select(Edition.status).where(Edition.id == edition_id)).one()
    session.commit()  # end the read transaction so the next check sees a fresh status
    if status in (EditionStatus.paused, EditionStatus.cancelled):
        return f"edition {status}"
    return ""


def _update_edition_status(session: Session, edition: Edition) -> None:
    """`sending` while rows are pending, else `done`; a pause or cancel made meanwhile always wins."""
    still_open = bool(ledger.pending_ids(session, edition.id, limit=1))
    session.exec(
        update(Edition)
        .where(Edition.id == edition.id, Edition.status.not_in((EditionStatus.paused, EditionStatus.cancelled)))
        .values(status=(EditionStatus.sending if still_open else EditionStatus.done).value)
    )
    session.commit()
    session.refresh(edition)


def _send_one(session: Session, sender: SmtpSender, delivery_id: int, edition: Edition, trending_pool: list,
              settings: Settings, report: SendReport) -> None:
    if not ledger.claim(session, delivery_id):
        report.skipped += 1
        return
    delivery = session.get(Delivery, delivery_id)
    session.refresh(delivery)
    subscriber = session.get(Subscriber, delivery.subscriber_id)
    session.refresh(subscriber)  # unsubscribes are honoured at send time, not only at planning time
    if subscriber.status != SubscriberStatus.active or subscriber.paused:
        reason = "paused" if subscriber.status == SubscriberStatus.active else subscriber.status
        ledger.finish(session, delivery_id, DeliveryStatus.skipped, error=f"subscriber is {reason}")
        report.skipped += 1
        return
    message_id = message_id_for(delivery, settings)
    data = compose_delivery(session, delivery, subscriber, edition.date, trending_pool, settings)
    try:
        sender.send(subscriber.email, data)
    except PermanentFailure as error:
        ledger.finish(session, delivery_id, DeliveryStatus.failed, error=str(error))
        subscriber.status = SubscriberStatus.bounced.value
        session.add(subscriber)
        session.commit()
        report.failed += 1
        report.errors.append(f"{subscriber.email}: {error}")
        event(log, "delivery failed", logging.WARNING, delivery=delivery_id, to=subscriber.email, error=str(error))
        return
    except TemporaryFailure as error:
        ledger.release(session, delivery_id, str(error))
        report.deferred += 1
        report.errors.append(f"{subscriber.email}: {error}")
        event(log, "delivery deferred", logging.WARNING, delivery=delivery_id, to=subscriber.email, error=str(error))
        return
    ledger.finish(session, delivery_id, DeliveryStatus.sent, message_id=message_id)
    report.sent += 1
    event(log, "delivery sent", delivery=delivery_id, to=subscriber.email, message_id=message_id)
