"""Who must not be mailed, and the status changes that put an address there (each one recorded as an Event).

A hard bounce (a 5xx at send time, or a DSN with a 5.x.x status) marks the address `bounced`; a complaint
(an ARF report) marks it `complained`; soft bounces are counted and suppress the address once
`soft_bounce_limit` arrive in a row (a successful delivery resets the count). Bounced and complained
addresses are never re-activated by confirming again (see subscribers.consent.confirm).
"""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import Session, col

from newsletter.models import Event, Subscriber, SubscriberStatus

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
    """Count one soft bounce; True when this one reached the limit and suppressed the address."""
    subscriber.soft_bounces += 1
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


def reset_soft_bounces(session: Session, subscriber_id: int) -> None:
    session.exec(update(Subscriber).where(col(Subscriber.id) == subscriber_id).values(soft_bounces=0))
