"""DKIM signing (dkimpy) as the last step over final message bytes: sign, then prepend the DKIM-Signature.

Working on bytes keeps it independent of how the message was built. Besides the headers RFC 6376 recommends,
the signature covers the bulk-mail headers Gmail and Yahoo look at (List-Unsubscribe, List-Unsubscribe-Post);
From, Subject and the List-Unsubscribe pair are "oversigned" (listed once more than they occur), so a header
of that name added in transit breaks the signature instead of riding on it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from newsletter.config import Settings
from newsletter.errors import DeliveryError
from newsletter.render.mime import address_domain

SIGNED_HEADERS = (b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type",
                  b"list-id", b"list-unsubscribe", b"list-unsubscribe-post", b"precedence")
OVERSIGNED = (b"from", b"subject", b"list-unsubscribe", b"list-unsubscribe-post")


def dkim_enabled(settings: Settings) -> bool:
    return bool(settings.dkim_key_path and settings.dkim_selector)


def dkim_signer(settings: Settings):
    """A function bytes -> signed bytes when DKIM is configured, else None. Reads the key once, fails early."""
    if not dkim_enabled(settings):
        return None
    key = _private_key(Path(settings.dkim_key_path))
    selector = settings.dkim_selector.encode()
    domain = (settings.dkim_domain or address_domain(settings.from_address)).encode()

    def sign(message: bytes) -> bytes:
        import dkim

        header = dkim.sign(message, selector, domain, key, canonicalize=(b"relaxed", b"relaxed"),
                           include_headers=list(SIGNED_HEADERS + OVERSIGNED))
        return header + message

    return sign


@lru_cache(maxsize=4)
def _private_key(path: Path) -> bytes:
    try:
        import dkim  # noqa: F401  (checked here so a missing package fails before any message is claimed)
    except ImportError:
        raise DeliveryError("DKIM signing is configured but dkimpy is not installed (pip install dkimpy)") from None
    try:
        key = path.read_bytes()
    except OSError as error:
        raise DeliveryError(f"cannot read the DKIM key {path}: {error.strerror}") from None
    if b"PRIVATE KEY" not in key:
        raise DeliveryError(f"{path} is not a PEM private key")
    return key
