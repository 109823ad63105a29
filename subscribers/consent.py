"""Consent changes: confirming, unsubscribing and resubscribing. Each one is immediate and recorded."""

from __future__ import annotations

import logging

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from newsletter.clock import utcnow
from newsletter.config import Settings
from newsletter.errors import BadToken, ExpiredToken, InvalidInput
from newsletter.log import event
from newsletter.models import Event, Subscriber, SubscriberStatus
from subscribers.profiles import (
    add_subscriber,
    find_subscriber,
    normalize_email,
    subscriber_by_id,
    validated_profile,
)
from subscribers.tokens import read_token, token_matches

log = logging.getLogger("newsletter.subscribers")

# What a sign-up request owes the address, by its current status (bounced / complained addresses get nothing).
CONFIRM, MANAGE = "confirm", "manage"
_OWED = {SubscriberStatus.pending: CONFIRM, SubscriberStatus.unsubscribed: CONFIRM, SubscriberStatus.active: MANAGE}


def subscriber_for_token(session: Session, purpose: str, token: str, settings: Settings) -> tuple[Subscriber, dict]:
    payload = read_token(purpose, token, settings)
    return _owner(session, payload), payload


def subscriber_for_any_age_token(session: Session, purpose: str, token: str, settings: Settings) -> Subscriber:
    """Like subscriber_for_token, but an expired (still genuine) token is accepted: for "send me a new link"."""
    try:
        return subscriber_for_token(session, purpose, token, settings)[0]
    except ExpiredToken as expired:
        return _owner(session, expired.payload)


def _owner(session: Session, payload: dict) -> Subscriber:
    """The subscriber a token's payload names, when the address it was signed for is still theirs. A token of a
    row that was merged into another (two capitalisations of one address, see migration 0006) acts for the row it
    was merged into."""
    subscriber = subscriber_by_id(session, payload.get("s"))
    if subscriber is not None and token_matches(payload, subscriber.email):
        return subscriber
    if subscriber is None:
        merged = _merged_into(session, payload.get("s"))
        if merged is not None and token_matches(payload, merged[1]):
            return merged[0]
    raise BadToken("this link does not belong to a current subscription")


def _merged_into(session: Session, old_id: object) -> tuple[Subscriber, str] | None:
    if type(old_id) is not int:
        return None
    for subscriber_id, detail in session.exec(select(Event.subscriber_id, Event.detail)
                                              .where(col(Event.kind) == "merged")):
        if isinstance(detail, dict) and detail.get("from") == old_id:
            survivor = subscriber_by_id(session, subscriber_id)
            return (survivor, str(detail.get("email", ""))) if survivor is not None else None
    return None


def request_subscription(session: Session, email: str, **profile) -> tuple[Subscriber, str | None]:
    """A sign-up from the web form. Returns the subscriber and the email owed to the address: CONFIRM, MANAGE or None.

    A new address becomes a pending subscriber with the profile given. An existing subscriber's profile is never
    changed here: typing an address does not prove owning it (the preferences page, reached from their mail, does).
    """
    address = normalize_email(email)
    validated_profile(**profile)  # a bad field is reported before anything is looked up or written
    subscriber = find_subscriber(session, address)
    if subscriber is None:
        try:
            with session.begin_nested():
                subscriber = add_subscriber(session, address, status=SubscriberStatus.pending, **profile)
        except (IntegrityError, InvalidInput):
            # A concurrent request signed the same address up a moment ago (seen by add_subscriber's own look,
            # or by the unique index); the profile was validated above, so nothing else raises here.
            subscriber = find_subscriber(session, address)
            if subscriber is None:
                raise
        else:
            record(session, subscriber, "subscribe_request")
            return subscriber, CONFIRM
    return subscriber, _OWED.get(SubscriberStatus(subscriber.status))


def record(session: Session, subscriber: Subscriber, kind: str, **detail) -> None:
    session.add(Event(subscriber_id=subscriber.id, kind=kind, detail=detail))
    session.flush()


def unsubscribe(session: Session, subscriber: Subscriber, **detail) -> bool:
    """Stop all mail to this subscriber at once. Returns False when they were already unsubscribed.

    `detail` goes into the recorded event (e.g. how the request came: a mailto: message).
    """
    if subscriber.status == SubscriberStatus.unsubscribed:
        return False
    subscriber.status = SubscriberStatus.unsubscribed
    subscriber.unsubscribed_at = utcnow()
    session.add(subscriber)
    record(session, subscriber, "unsubscribe", **detail)
    event(log, "subscriber unsubscribed", subscriber=subscriber.id, email=subscriber.email)
    return True


def confirm(session: Session, subscriber: Subscriber) -> bool:
    """Activate a pending (or returning) subscriber: double opt-in. Bounced addresses stay suppressed."""
    if subscriber.status in (SubscriberStatus.active, SubscriberStatus.bounced, SubscriberStatus.complained):
        return False
    subscriber.status = SubscriberStatus.active
    subscriber.confirmed_at = utcnow()
    subscriber.unsubscribed_at = None
    subscriber.consent = "double-opt-in"
    session.add(subscriber)
    record(session, subscriber, "confirm")
    return True
