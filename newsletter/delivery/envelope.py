"""Envelope and reply addresses: the (optionally VERP-signed) bounce address and the unsubscribe mailbox.

With VERP the envelope sender names the delivery: `bounces+d42-k3j5h2a9qz@example.org`. A bounce sent back to
it identifies the delivery even when the returned message lost its headers. The signature (an HMAC of the
delivery id, 50 bits in lowercase base32) keeps forged bounces from suppressing arbitrary subscribers; it is
short because a local part may hold at most 64 characters, and lowercase because some servers fold case.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from email.utils import parseaddr
from functools import lru_cache

from newsletter.config import Settings
from newsletter.delivery.mime import address_domain

_VERP_TAG = re.compile(r"\+d(\d+)-([a-z2-7]{10})@", re.IGNORECASE)


def bounce_base(settings: Settings) -> str:
    return _bare_address(settings.bounce_address or settings.from_address)


@lru_cache(maxsize=16)
def _bare_address(text: str) -> str:
    return parseaddr(text)[1]


def envelope_sender(delivery_id: int, settings: Settings) -> str:
    """The MAIL FROM address for one delivery: the bounce address, tagged with the delivery under VERP."""
    base = bounce_base(settings)
    if not settings.verp:
        return base
    local, _, domain = base.rpartition("@")
    return f"{local}+d{delivery_id}-{_signature(delivery_id, settings)}@{domain}"


def delivery_from_bounce_address(address: str, settings: Settings) -> int | None:
    """The delivery id a VERP address names, or None when it is not one of ours or its signature is wrong."""
    match = _VERP_TAG.search(address)
    if not match:
        return None
    delivery_id = int(match.group(1))
    if not hmac.compare_digest(match.group(2).lower(), _signature(delivery_id, settings)):
        return None
    return delivery_id


def unsubscribe_mailbox(settings: Settings) -> str:
    return settings.unsubscribe_mailbox or f"unsubscribe@{address_domain(settings.from_address)}"


def _signature(delivery_id: int, settings: Settings) -> str:
    digest = hmac.new(settings.signing_key.encode(), f"verp:{delivery_id}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode()[:10].lower()
