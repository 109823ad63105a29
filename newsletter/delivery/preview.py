"""The exact email a subscriber gets for a day, without sending it to them: shown (preview, "view in browser",
the admin preview) or sent to someone else as a test copy. Nothing here records a delivery.

A preview uses the planned picks when the subscriber's delivery of that day exists, else a live ranking, so
before planning it shows what planning would choose and afterwards exactly what was (or will be) sent.

A test copy is marked as a test twice: the subject starts with TEST_SUBJECT_PREFIX and the `X-Newsletter-Test`
header names the subscriber. It has its own Message-ID (never the delivery's) and no `List-Unsubscribe` headers,
so a mail provider's unsubscribe button on the test copy cannot unsubscribe the real subscriber. The body, with
the subscriber's own links, is unchanged.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from datetime import date

from sqlmodel import Session, col, select

from newsletter.compose import delivery_picks, render_for
from newsletter.config import Settings
from newsletter.delivery.message import delivery_message_id, list_headers, message_bytes
from newsletter.delivery.mime import address_domain, build_message
from newsletter.delivery.smtp import SmtpSender
from newsletter.log import event
from newsletter.models import Delivery, Edition, Subscriber
from newsletter.ranking import recommend, trending_papers
from newsletter.render import RenderedEmail
from subscribers.profiles import normalize_email

TEST_SUBJECT_PREFIX = "[TEST] "
TEST_HEADER = "X-Newsletter-Test"
log = logging.getLogger("newsletter.delivery")


def preview_email(session: Session, subscriber: Subscriber, day: date, settings: Settings,
                  issued_at: int | None = None) -> tuple[RenderedEmail, bytes]:
    """What `subscriber` gets for `day`: the rendered parts and the whole message as it would go to the server.
    `issued_at`: sign its links as of that time (an edition shown through an older signed link); default now."""
    delivery = session.exec(
        select(Delivery).join(Edition, col(Edition.id) == Delivery.edition_id)
        .where(col(Edition.date) == day, col(Delivery.subscriber_id) == subscriber.id)
    ).first()
    if delivery is not None and delivery.id is not None:
        picks = delivery_picks(session, delivery.id)
        message_id = delivery_message_id(delivery.edition_id, delivery.id, delivery.message_key, settings)
    else:
        picks = recommend(session, subscriber, day, settings)
        message_id = f"<preview@{address_domain(settings.from_address)}>"
    rendered = render_for(subscriber, day, picks, trending_papers(session, day, settings), settings, issued_at)
    return rendered, message_bytes(rendered, subscriber, message_id, settings)


def send_test_email(session: Session, subscriber: Subscriber, day: date, to: str, settings: Settings) -> str:
    """Send `subscriber`'s email for `day` to `to`. Returns its Message-ID. Raises DeliveryError."""
    recipient = normalize_email(to)
    rendered, _ = preview_email(session, subscriber, day, settings)
    message_id = f"<test-{uuid.uuid4().hex}@{address_domain(settings.from_address)}>"
    headers = {name: value for name, value in list_headers(subscriber, settings).items()
               if not name.startswith("List-Unsubscribe")}
    headers[TEST_HEADER] = f"yes; as={subscriber.email}; date={day.isoformat()}"
    marked = replace(rendered, subject=TEST_SUBJECT_PREFIX + rendered.subject)
    data = build_message(marked, sender=settings.from_address, to=recipient, message_id=message_id,
                         extra_headers=headers)
    with SmtpSender(settings) as sender:
        sender.send(recipient, data)
    event(log, "test email sent", to=recipient, as_subscriber=subscriber.email, message_id=message_id)
    return message_id
