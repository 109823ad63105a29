"""Who is due now, and which delivery rows still need a sender: the core of the periodic send tick.

Schedule rule: a subscriber gets the edition dated their LOCAL date, once, at the first tick on or after their
local `send_hour` that day (a missed tick is caught up later the same local day). Weekly subscribers get it only
on `settings.weekly_weekday` (0 = Monday) of their local calendar. An edition (one per date) is therefore sent
over about a day and a half as that date travels round the time zones; "due" means "no delivery row yet in the
edition of my local date", so any tick may run twice.

Due work lives in the database, never as delayed tasks in the broker: a delivery row taken by a send task is
stamped `queued_at`; a row still pending a lease after that (its task was lost with a killed worker) is handed
out again, and the ledger's claim makes the second hand-out harmless.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from newsletter.batching import IN_CLAUSE, chunked
from newsletter.config import Settings
from newsletter.log import event
from newsletter.models import Delivery, DeliveryStatus, Edition, EditionStatus, Subscriber, SubscriberStatus

log = logging.getLogger("newsletter.dispatch")


def due_subscribers(session: Session, now: datetime, settings: Settings) -> dict[date, list[int]]:
    """Ids of the subscribers due at `now` (aware), grouped by the edition date (their local date)."""
    receiving = (col(Subscriber.status) == SubscriberStatus.active, col(Subscriber.paused).is_(False))
    zones = session.exec(select(Subscriber.timezone).where(*receiving).distinct()).all()
    due: dict[date, list[int]] = defaultdict(list)
    for zone in sorted(zones):
        local = _local_time(now, zone)
        if local is None:
            continue
        frequencies = ["daily"] + (["weekly"] if local.weekday() == settings.weekly_weekday else [])
        already = (select(Delivery.subscriber_id).join(Edition, col(Edition.id) == Delivery.edition_id)
                   .where(col(Edition.date) == local.date()))
        ids = session.exec(
            select(Subscriber.id)
            .where(*receiving, col(Subscriber.timezone) == zone, col(Subscriber.send_hour) <= local.hour,
                   col(Subscriber.frequency).in_(frequencies), col(Subscriber.id).not_in(already))
            .order_by(col(Subscriber.id))
        ).all()
        due[local.date()].extend(ids)
    return {day: sorted(ids) for day, ids in due.items() if ids}


def _local_time(now: datetime, zone: str) -> datetime | None:
    try:
        return now.astimezone(ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError):
        # Profiles are validated on input; a bad value written around them is reported, not guessed at.
        event(log, "unknown time zone: its subscribers are not scheduled", logging.ERROR, timezone=zone)
        return None


def take_unqueued(session: Session, edition_id: int, subscriber_ids: Sequence[int], now: datetime) -> list[int]:
    """Stamp and return the pending, never-queued deliveries of these subscribers in the edition."""
    ids = session.exec(
        select(Delivery.id)
        .where(col(Delivery.edition_id) == edition_id, col(Delivery.subscriber_id).in_(subscriber_ids),
               col(Delivery.status) == DeliveryStatus.pending, col(Delivery.queued_at).is_(None))
        .order_by(col(Delivery.id))
    ).all()
    mark_queued(session, ids, now)
    return list(ids)


def take_lost(session: Session, now: datetime, settings: Settings) -> dict[int, list[int]]:
    """Stamp and return, per edition, pending rows no live task holds: never queued, or queued a lease ago.

    Rows waiting for a retry time (`next_attempt_at` in the future) and rows of paused or cancelled editions wait.
    """
    rows = session.exec(
        select(Delivery.edition_id, Delivery.id)
        .join(Edition, col(Edition.id) == Delivery.edition_id)
        .where(col(Delivery.status) == DeliveryStatus.pending,
               col(Edition.status).not_in([EditionStatus.paused.value, EditionStatus.cancelled.value]),
               or_(col(Delivery.queued_at).is_(None), col(Delivery.queued_at) < now - settings.delivery_lease),
               or_(col(Delivery.next_attempt_at).is_(None), col(Delivery.next_attempt_at) <= now))
        .order_by(col(Delivery.id))
    ).all()
    lost: dict[int, list[int]] = defaultdict(list)
    for edition_id, delivery_id in rows:
        lost[edition_id].append(delivery_id)
    mark_queued(session, [delivery_id for _, delivery_id in rows], now)
    return dict(lost)


def mark_queued(session: Session, ids: Sequence[int], now: datetime) -> None:
    """Record that a send task now holds these rows (the tick hands them out again only a lease later)."""
    for chunk in chunked(ids, IN_CLAUSE):
        session.exec(update(Delivery).where(col(Delivery.id).in_(chunk)).values(queued_at=now)
                     .execution_options(synchronize_session=False))
