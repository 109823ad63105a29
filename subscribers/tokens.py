"""Signed, purpose-bound tokens for the links in emails (unsubscribe, confirm, preferences, feedback, view).

A token names one subscriber and one purpose, and carries a fingerprint of the subscriber's address, so a token
minted for one purpose or one person never acts for another; subscriber ids are never reused (AUTOINCREMENT on
SQLite, sequences on PostgreSQL), so a re-created account does not honour old links.

Each purpose has a lifetime (MAX_AGE), enforced when the token is read. A page opened with a token that mints
links of its own (the preferences page, an edition in the browser, the feedback page) signs them with the time
of the token that opened it (`issued_at`), so following links never makes a link live longer than the first.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import cast

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode, want_bytes
from itsdangerous.url_safe import URLSafeSerializerMixin

from newsletter.config import Settings
from newsletter.errors import BadToken, ExpiredToken

PURPOSES = ("unsubscribe", "confirm", "preferences", "feedback", "view")
DAY = 86400
# Seconds each purpose's link works. Unsubscribing never expires: every email ever sent must be able to stop the
# mail. The others expire; the preferences and confirm pages offer a fresh link by email when they have.
MAX_AGE: dict[str, int | None] = {"unsubscribe": None, "confirm": 7 * DAY, "preferences": 90 * DAY,
                                  "view": 90 * DAY, "feedback": 90 * DAY}
ISSUED_AT = "_at"  # read_token adds the token's signing time (Unix seconds) to the payload under this key


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


def make_token(purpose: str, subscriber_id: int, email: str, settings: Settings, extra: dict | None = None,
               issued_at: int | None = None) -> str:
    """A token for `purpose`, signed now, or at `issued_at` (Unix seconds: the time of the token a page was opened
    with, so the links it hands out expire no later than that one)."""
    payload = {"s": subscriber_id, "e": _fingerprint(email), **(extra or {})}
    serializer = _serializer(purpose, settings)
    if issued_at is None:
        return serializer.dumps(payload)
    signer = cast(TimestampSigner, serializer.make_signer())
    signer.get_timestamp = lambda: issued_at  # type: ignore[method-assign]
    return signer.sign(want_bytes(serializer.dump_payload(payload))).decode("ascii")


def read_token(purpose: str, token: str, settings: Settings, max_age: int | None = None) -> dict:
    """The payload of a valid token for `purpose`, with its signing time under ISSUED_AT. Raises BadToken when
    tampered or for another purpose, ExpiredToken when older than the purpose's lifetime (or `max_age`)."""
    serializer = _serializer(purpose, settings)
    try:
        payload, signed = serializer.loads(token, max_age=max_age or MAX_AGE.get(purpose), return_timestamp=True)
    except SignatureExpired as error:
        expired = serializer.load_payload(error.payload) if error.payload is not None else None
        if not isinstance(expired, dict) or not _well_formed(expired):
            raise BadToken("this link has expired") from None
        raise ExpiredToken("this link has expired", purpose, token, expired) from None
    except BadSignature:
        raise BadToken("this link is not valid (it may have been cut short or altered)") from None
    if not _well_formed(payload):
        raise BadToken("this link is not valid")
    return {**payload, ISSUED_AT: int(signed.timestamp())}


def _well_formed(payload) -> bool:
    return (isinstance(payload, dict) and type(payload.get("s")) is int and isinstance(payload.get("e"), str)
            and ISSUED_AT not in payload)


def still_valid(purpose: str, issued_at: int, now: float) -> bool:
    """Whether a link of `purpose` signed at `issued_at` still works at `now`."""
    lifetime = MAX_AGE.get(purpose)
    return lifetime is None or now - issued_at <= lifetime


def token_matches(payload: dict, email: str) -> bool:
    return payload.get("e") == _fingerprint(email)
