"""Small builders shared by tests."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from email.message import Message

from newsletter.ingest import ingest, sample_sources
from newsletter.models import SubscriberStatus
from subscribers.profiles import add_subscriber

TODAY = datetime.now(timezone.utc).date()


def ingest_sample(session) -> None:
    for source in sample_sources():
        ingest(session, source)
    session.commit()


def add_active(session, email: str, interests: str = "", keywords: str = "", **profile):
    subscriber = add_subscriber(session, email, status=SubscriberStatus.active, interests=interests,
                                keywords=keywords, **profile)
    session.commit()
    return subscriber


def html_part(message: Message) -> str:
    return next(p for p in message.walk() if p.get_content_type() == "text/html").get_content()


def text_part(message: Message) -> str:
    return next(p for p in message.walk() if p.get_content_type() == "text/plain").get_content()


def unsubscribe_url(message: Message) -> str:
    return re.search(r"<(https?://[^>]+)>", message["List-Unsubscribe"]).group(1)


def day(value: str) -> date:
    return date.fromisoformat(value)
