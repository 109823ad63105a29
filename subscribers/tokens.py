"""Signed, purpose-bound tokens for the links in emails (unsubscribe, confirm, preferences, feedback).

A token names one subscriber and one purpose, and carries a fingerprint of the subscriber's address, so a token
minted for one purpose or one person never acts for another, and a re-created account does not honour old links.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode
from itsdangerous.url_safe import URLSafeSerializerMixin

from newsletter.config import Settings
from newsletter.errors import BadToken, ExpiredToken

PURPOSES = ("unsubscribe", "confirm", "preferences", "feedback", "view")
MAX_AGE = {"confirm": 7 * 86400, "preferences": 90 * 86400}  # others never expire: old emails keep working


def _serializer(purpose: str, settings: Settings) -> URLSafeTimedSerializer:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    return _serializer_for(purpose, settings.signing_key)


class _Serializer(URLSafeTimedSerializer):
    """itsdangerous's URL-safe timed tokens, without the zlib attempt on every dump: our payloads are a few dozen
    bytes, which never compress shorter, so the tokens are the same and cost a quarter. Reading still accepts
    compressed ones."""

    def dump_payload(self, obj) -> bytes:
        return base64_encode(super(URLSafeSerializerMixin, self).dump_payload(obj))


@lru_cache(maxsize=64)
def _serializer_for(purpose: str, key: str) -> URLSafeTimedSerializer:
    """Made once per purpose and key: an email carries some twenty tokens."""
    return _Serializer(key, salt=f"newsletter.{purpose}")


@lru_cache(maxsize=4096)
def _fingerprint(email: str) -> str:
    return hashlib.sha256(email.encode()).hexdigest()[:12]


def make_token(purpose: str, subscriber_id: int, email: str, settings: Settings, extra: dict | None = None) -> str:
    payload = {"s": subscriber_id, "e": _fingerprint(email), **(extra or {})}
    return _serializer(purpose, settings).dumps(payload)


def read_token(purpose: str, token: str, settings: Settings, max_age: int | None = None) -> dict:
    """The payload of a valid token for `purpose`. Raises BadToken when tampered, expired or for another purpose."""
    serializer = _serializer(purpose, settings)
    try:
        payload = serializer.loads(token, max_age=max_age or MAX_AGE.get(purpose))
    except SignatureExpired as error:
        expired = serializer.load_payload(error.payload) if error.payload is not None else None
        if not isinstance(expired, dict) or not _well_formed(expired):
            raise BadToken("this link has expired") from None
        raise ExpiredToken("this link has expired", purpose, token, expired) from None
    except BadSignature:
        raise BadToken("this link is not valid (it may have been cut short or altered)") from None
    if not _well_formed(payload):
        raise BadToken("this link is not valid")
    return payload


def _well_formed(payload) -> bool:
    return isinstance(payload, dict) and "s" in payload and "e" in payload


def token_matches(payload: dict, email: str) -> bool:
    return payload.get("e") == _fingerprint(email)
