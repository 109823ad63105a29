"""One edition email as bytes: its Message-ID and its bulk-mail headers (RFC 2369 / RFC 8058).

The Message-ID names the delivery and carries its random key (`<edition-E.delivery-D.KEY@domain>`, the key drawn
once per delivery row and stored with it): a second copy of the same delivery (a retry, a resend after a crash) is
recognisable, a bounce quoting it leads back to the delivery (`delivery_of_message_id`), and a fresh database or a
staging copy, whose counters start again, never reuses one.
"""

from __future__ import annotations

import re

from newsletter.config import Settings
from newsletter.delivery.envelope import unsubscribe_mailbox
from newsletter.delivery.mime import address_domain, build_message, display_address
from newsletter.links import unsubscribe_url
from newsletter.models import Subscriber
from newsletter.render import RenderedEmail
from subscribers.tokens import make_token

_DELIVERY_MESSAGE_ID = re.compile(r"<edition-(\d+)\.delivery-(\d+)(?:\.[0-9a-f]+)?@[^>]+>")


def delivery_message_id(edition_id: int, delivery_id: int, message_key: str, settings: Settings) -> str:
    return f"<edition-{edition_id}.delivery-{delivery_id}.{message_key}@{address_domain(settings.from_address)}>"


def delivery_of_message_id(text: str) -> tuple[int, str] | None:
    """(delivery id, the Message-ID) when `text` holds one of ours, else None. The caller checks the id against
    the delivery row's stored Message-ID (anyone can write one of this shape)."""
    found = _DELIVERY_MESSAGE_ID.search(text)
    return (int(found.group(2)), found.group(0)) if found else None


def unsubscribe_mailto(subscriber: Subscriber, settings: Settings) -> str:
    """The mailto: form of List-Unsubscribe: the signed token rides in the subject (local parts are too short)."""
    assert subscriber.id is not None
    token = make_token("unsubscribe", subscriber.id, subscriber.email, settings)
    return f"mailto:{unsubscribe_mailbox(settings)}?subject=unsubscribe%20{token}"


def list_headers(subscriber: Subscriber, settings: Settings) -> dict[str, str]:
    """RFC 2369 / RFC 8058 bulk-mail headers; each unsubscribe target carries the recipient's signed token."""
    return {
        "List-Unsubscribe": f"<{unsubscribe_url(subscriber, settings)}>, <{unsubscribe_mailto(subscriber, settings)}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": f"Paper Digest <digest.{address_domain(settings.from_address)}>",
        "Precedence": "bulk",
    }


def message_bytes(rendered: RenderedEmail, subscriber: Subscriber, message_id: str, settings: Settings) -> bytes:
    to = display_address(subscriber.name, subscriber.email) if subscriber.name else subscriber.email
    return build_message(rendered, sender=settings.from_address, to=to, message_id=message_id,
                         extra_headers=list_headers(subscriber, settings))
