"""The delivery ledger: claim a row before sending, finish it right after the server answers.

Rule for rows left in `sending` by a crashed process: after `lease` has passed they are put back to `pending`
and sent again. Only messages that were in flight at the crash can be sent twice, and each copy carries the same
Message-ID, so a duplicate is recognisable.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlmodel import Session, select

from newsletter.models import Delivery, DeliveryStatus, utcnow

DEFAULT_LEASE = timedelta(minutes=15)


def pending_ids(session: Session, edition_id: int, after_id: int = 0, limit: int | None = None,
                subscriber_ids: list[int] | None = None) -> list[int]:
    query = (select(Delivery.id)
             .where(Delivery.edition_id == edition_id, Delivery.status == DeliveryStatus.pending,
                    Delivery.id > after_id)
             .order_by(Delivery.id))
    if subscriber_ids is not None:
        query = query.where(Delivery.subscriber_id.in_(subscriber_ids))
    if limit:
        query = query.limit(limit)
    return list(session.exec(query))


def claim(session: Session, delivery_id: int) -> bool:
    """Atomically move one row pending -> sending. False when another sender got it first."""
    result = session.exec(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status == DeliveryStatus.pending)
        .values(status=DeliveryStatus.sending.value, claimed_at=utcnow(), attempts=Delivery.attempts + 1)
    )
    session.commit()
    return result.rowcount == 1


def finish(session: Session, delivery_id: int, status: DeliveryStatus, *, message_id: str | None = None,
           error: str | None = None) -> None:
    values = {"status": status.value, "error": error}
    if status == DeliveryStatus.sent:
        values.update(message_id=message_id, sent_at=utcnow())
    session.exec(update(Delivery).where(Delivery.id == delivery_id, Delivery.status == DeliveryStatus.sending)
                 .values(**values))
    session.commit()


def release(session: Session, delivery_id: int, error: str) -> None:
    """Give a claimed row back (temporary failure): a later run retries it."""
    finish(session, delivery_id, DeliveryStatus.pending, error=error)


def release_stale(session: Session, edition_id: int, lease: timedelta = DEFAULT_LEASE) -> int:
    """Put rows stuck in `sending` for longer than `lease` back to `pending` (see the module's rule)."""
    result = session.exec(
        update(Delivery)
        .where(Delivery.edition_id == edition_id, Delivery.status == DeliveryStatus.sending,
               Delivery.claimed_at < utcnow() - lease)
        .values(status=DeliveryStatus.pending.value)
    )
    session.commit()
    return result.rowcount
