"""A test send: the exact email a subscriber would get for a day, delivered to someone else, recording nothing.

It is marked as a test twice: the subject starts with TEST_SUBJECT_PREFIX and the `X-Newsletter-Test` header
names the subscriber. It has its own Message-ID (never the delivery's) and no `List-Unsubscribe` headers, so a
mail provider's unsubscribe button on the test copy cannot unsubscribe the real subscriber. The body, with the
subscriber's own links, is unchanged.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from datetime import date

from sqlmodel import Session

from newsletter.compose import list_headers, preview_email
from newsletter.config import Settings
from newsletter.delivery.smtp import SmtpSender
from newsletter.log import event
from newsletter.models import Subscriber
from newsletter.render.mime import address_domain, build_message
from subscribers.profiles import normalize_email

TEST_SUBJECT_PREFIX = "[TEST] "
TEST_HEADER = "X-Newsletter-Test"
log = logging.getLogger("newsletter.delivery")


def send_test_email(session: Session, subscriber: Subscriber, day: date, to: str, settings: Settings) -> str:
    """Send `subscriber`'s email for `day` to `to`. Returns its Message-ID. Raises DeliveryError."""
    recipient = normalize_email(to)
    rendered, _ = preview_email(session, subscriber, day, settings)
    message_id = f"<test-{uuid.uuid4().hex}@{address_domain(settings.from_address)}>"
    headers = {name: value for name, value in list_headers(subscriber, settings).items()
               if not name.startswith("List-Unsubscribe")}
    headers[TEST_HEADER] = f"yes; as={subscriber.email}; date={day.isoformat()}"
    data = build_message(replace(rendered, subject=TEST_SUBJECT_PREFIX + rendered.subject), sender=settings.from_address,
                         to=recipient, message_id=message_id, extra_headers=headers)
    with SmtpSender(settings) as sender:
        sender.send(recipient, data)
    event(log, "test email sent", to=recipient, as_subscriber=subscriber.email, message_id=message_id)
    return message_id
