"""Who must not be mailed, and the status changes that put an address there (each one recorded as an Event).

A hard bounce (a 5xx at send time, or a DSN with a 5.x.x status) marks the address `bounced`; a complaint (an ARF
report) marks it `complained`; soft bounces are counted and suppress the address once `soft_bounce_limit` arrive in
a row (a delivery that never bounced ends the row; see soft_bounce_run). Bounced and complained addresses are never
re-activated by confirming again (see subscribers.consent.confirm).
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import update
from sqlmodel import Session, col, select

from newsletter.models import Delivery, DeliveryStatus, Event, Subscriber, SubscriberStatus

SUPPRESSED = (SubscriberStatus.bounced.value, SubscriberStatus.complained.value)


def send_blocker(status: str, paused: bool) -> str | None:
    """Why a subscriber must not get mail now, or None. Checked at send time, not only when planning."""
    if status != SubscriberStatus.active:
        return f"subscriber is {status}"
    if paused:
        return "subscriber is paused"
    return None


def record_hard_bounce(session: Session, subscriber: Subscriber, detail: dict) -> None:
    if subscriber.status not in SUPPRESSED:
        subscriber.status = SubscriberStatus.bounced
    session.add(subscriber)
    session.add(Event(subscriber_id=subscriber.id, kind="bounce", detail=detail))
    session.flush()


def record_complaint(session: Session, subscriber: Subscriber, detail: dict) -> None:
    subscriber.status = SubscriberStatus.complained
    session.add(subscriber)
    session.add(Event(subscriber_id=subscriber.id, kind="complaint", detail=detail))
    session.flush()


def record_soft_bounce(session: Session, subscriber: Subscriber, detail: dict, limit: int) -> bool:
    """Count one soft bounce; True when this one reached the limit and suppressed the address.

    When the report names its delivery (VERP or our Message-ID), "in a row" is counted over the subscriber's
    deliveries (see soft_bounce_run): an SMTP server accepting the next edition is no proof of delivery when
    it is a relay, which accepts everything and returns its DSNs days later. Otherwise the count goes up by one.
    """
    delivery_id = detail.get("delivery_id")
    if delivery_id is None:
        subscriber.soft_bounces += 1
    else:
        subscriber.soft_bounces = soft_bounce_run(session, subscriber.id, delivery_id)
    session.add(Event(subscriber_id=subscriber.id, kind="soft_bounce",
                      detail={**detail, "count": subscriber.soft_bounces}))
    reached = subscriber.soft_bounces >= limit and subscriber.status not in SUPPRESSED
    if reached:
        subscriber.status = SubscriberStatus.bounced
        session.add(Event(subscriber_id=subscriber.id, kind="bounce",
                          detail={**detail, "reason": f"{subscriber.soft_bounces} soft bounces in a row"}))
    session.add(subscriber)
    session.flush()
    return reached


def soft_bounce_run(session: Session, subscriber_id: int, delivery_id: int) -> int:
    """Soft bounces in a row, this report for `delivery_id` included, over the subscriber's sent deliveries.

    Counting back from the newest delivery with a soft bounce, each delivery adds its soft bounces; the first
    sent delivery without one ends the run: its DSN would have come before the later ones' (a relay keeps every
    message the same queue lifetime), so it was delivered. Reports that arrive out of order still add up.
    """
    per_delivery = Counter(detail.get("delivery_id") for detail in session.exec(
        select(Event.detail).where(col(Event.subscriber_id) == subscriber_id, col(Event.kind) == "soft_bounce"))
        if isinstance(detail, dict))
    per_delivery[delivery_id] += 1
    newest = max(key for key in per_delivery if key is not None)
    sent = session.exec(select(Delivery.id).where(col(Delivery.subscriber_id) == subscriber_id,
                                                  col(Delivery.id) <= newest,
                                                  col(Delivery.status) == DeliveryStatus.sent)
                        .order_by(col(Delivery.id).desc()))
    run = 0
    for sent_id in sent:
        if not per_delivery.get(sent_id):
            break
        run += per_delivery[sent_id]
    return run or per_delivery[delivery_id]


def reset_soft_bounces(session: Session, subscriber_id: int) -> None:
    session.exec(update(Subscriber).where(col(Subscriber.id) == subscriber_id).values(soft_bounces=0))
