"""Consent changes: confirming, unsubscribing and resubscribing. Each one is immediate and recorded."""

from __future__ import annotations

import logging

from sqlmodel import Session

from newsletter.errors import BadToken
from newsletter.log import event
from newsletter.models import Subscriber, SubscriberStatus, utcnow
from subscribers.tokens import read_token, token_matches

log = logging.getLogger("newsletter.subscribers")


def subscriber_for_token(session: Session, purpose: str, token: str) -> tuple[Subscriber, dict]:
    payload = read_token(purpose, token)
    subscriber = session.get(Subscriber, payload["s"])
    if subscriber is None or not token_matches(payload, subscriber.email):
        raise BadToken("this link does not belong to a current subscription")
    return subscriber, payload


def unsubscribe(session: Session, subscriber: Subscriber) -> bool:
    """Stop all mail to this subscriber at once. Returns False when they were already unsubscribed."""
    if subscriber.status == SubscriberStatus.unsubscribed:
        return False
    subscriber.status = SubscriberStatus.unsubscribed.value
    subscriber.unsubscribed_at = utcnow()
    session.add(subscriber)
    session.flush()
    event(log, "subscriber unsubscribed", subscriber=subscriber.id, email=subscriber.email)
    return True


def confirm(session: Session, subscriber: Subscriber) -> bool:
    """Activate a pending (or returning) subscriber. Bounced addresses stay suppressed."""
    if subscriber.status in (SubscriberStatus.active, SubscriberStatus.bounced, SubscriberStatus.complained):
        return False
    subscriber.status = SubscriberStatus.active.value
    subscriber.confirmed_at = utcnow()
    subscriber.unsubscribed_at = None
    session.add(subscriber)
    session.flush()
    return True
