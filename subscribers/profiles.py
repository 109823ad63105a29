"""Subscriber profiles: validation of what people type, and add / update / list / remove."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from email_validator import EmailNotValidError, validate_email
from sqlmodel import Session, col, select

from newsletter.clock import utcnow
from newsletter.errors import InvalidInput, NotFound
from newsletter.models import Subscriber, SubscriberStatus

FREQUENCIES = ("daily", "weekly")
_CONTROL_CHARS = {chr(c) for c in range(32)} | {"\x7f"}


def reject_control_chars(value: str, field: str) -> str:
    """CR, LF and other control characters never belong in a profile field (they could forge headers)."""
    bad = sorted({repr(ch) for ch in value if ch in _CONTROL_CHARS and ch != "\t"})
    if bad:
        raise InvalidInput(f"{field} contains control characters ({', '.join(bad)}); remove line breaks")
    return value


def normalize_email(address: str) -> str:
    """Validate syntax (no DNS lookup) and return the address with its domain lower-cased."""
    reject_control_chars(address, "email address")
    try:
        result = validate_email(address.strip(), check_deliverability=False)
    except EmailNotValidError as error:
        raise InvalidInput(f"invalid email address {address!r}: {error}") from None
    local, _, domain = result.normalized.rpartition("@")
    return f"{local}@{domain.lower()}"


def split_terms(text: str | Iterable[str] | None, field: str = "keywords") -> list[str]:
    """'a, b;c' or ['a', 'b'] -> ['a', 'b', 'c'], stripped, de-duplicated case-insensitively, order kept."""
    if text is None:
        return []
    parts = text.replace(";", ",").split(",") if isinstance(text, str) else list(text)
    terms: list[str] = []
    seen: set[str] = set()
    for part in parts:
        term = " ".join(reject_control_chars(part, field).split())
        if term and term.lower() not in seen:
            seen.add(term.lower())
            terms.append(term)
    return terms


@lru_cache(maxsize=1)
def known_timezones() -> frozenset[str]:
    """The IANA names on this system, read once (scanning the zone files takes ~50 ms; imports check every row)."""
    return frozenset(available_timezones())


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {name!r} (use an IANA name such as Europe/Paris)") from None
    if name not in known_timezones() and name != "UTC":
        raise InvalidInput(f"unknown time zone {name!r} (use an IANA name such as Europe/Paris)")
    return name


def check_send_hour(hour: int) -> int:
    if not 0 <= hour <= 23:
        raise InvalidInput(f"send hour must be between 0 and 23, not {hour}")
    return hour


def check_frequency(frequency: str) -> str:
    if frequency not in FREQUENCIES:
        raise InvalidInput(f"frequency must be one of {', '.join(FREQUENCIES)}, not {frequency!r}")
    return frequency


MAX_SEED_PAPERS = 20


def check_seed_paper_ids(ids: Iterable[int]) -> list[int]:
    """Seed papers as stored: ids of stored papers (resolved from what the reader typed by
    newsletter.ranking.seeds), each once, in order, at most MAX_SEED_PAPERS."""
    cleaned: list[int] = []
    for value in ids:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInput(f"seed papers must be stored paper ids, not {value!r}")
        if value not in cleaned:
            cleaned.append(value)
    if len(cleaned) > MAX_SEED_PAPERS:
        raise InvalidInput(f"at most {MAX_SEED_PAPERS} seed papers, not {len(cleaned)}")
    return cleaned


def validated_profile(**fields) -> dict:
    """Check every profile field given; returns the cleaned values. Raises InvalidInput on the first bad one."""
    cleaners: dict[str, Callable[[Any], Any]] = {
        "name": lambda v: " ".join(reject_control_chars(v, "name").split()),
        "interests": lambda v: reject_control_chars(v, "interests").strip(),
        "keywords": lambda v: split_terms(v, "keywords"),
        "followed_authors": lambda v: split_terms(v, "followed authors"),
        "excluded_keywords": lambda v: split_terms(v, "excluded keywords"),
        "seed_paper_ids": check_seed_paper_ids,
        "timezone": check_timezone,
        "send_hour": check_send_hour,
        "frequency": check_frequency,
    }
    unknown = set(fields) - set(cleaners)
    if unknown:
        raise InvalidInput(f"unknown profile fields: {', '.join(sorted(unknown))}")
    return {name: cleaners[name](value) for name, value in fields.items() if value is not None}


def add_subscriber(session: Session, email: str, *, status: str = SubscriberStatus.pending,
                   **profile) -> Subscriber:
    """Create a subscriber. An existing address is an error: use update_profile to change it."""
    address = normalize_email(email)
    cleaned = validated_profile(**profile)
    if find_subscriber(session, address) is not None:
        raise InvalidInput(f"{address} is already subscribed")
    subscriber = Subscriber(email=address, status=SubscriberStatus(status), **cleaned)
    if subscriber.status == SubscriberStatus.active:
        subscriber.confirmed_at = utcnow()
    session.add(subscriber)
    session.flush()
    return subscriber


def update_profile(session: Session, subscriber: Subscriber, **profile) -> Subscriber:
    for name, value in validated_profile(**profile).items():
        setattr(subscriber, name, value)
    session.add(subscriber)
    session.flush()
    return subscriber


def find_subscriber(session: Session, email: str) -> Subscriber | None:
    return session.exec(select(Subscriber).where(col(Subscriber.email) == email)).first()


def get_subscriber(session: Session, email_or_id: str | int) -> Subscriber:
    """By id, or by address (normalized first). Raises NotFound."""
    if isinstance(email_or_id, int) or str(email_or_id).isdigit():
        subscriber = session.get(Subscriber, int(email_or_id))
    else:
        subscriber = find_subscriber(session, normalize_email(str(email_or_id)))
    if subscriber is None:
        raise NotFound(f"no subscriber {email_or_id}")
    return subscriber


def list_subscribers(session: Session, status: str | None = None) -> list[Subscriber]:
    query = select(Subscriber).order_by(col(Subscriber.id))
    if status:
        query = query.where(col(Subscriber.status) == status)
    return list(session.exec(query))


def remove_subscriber(session: Session, email: str) -> None:
    """Forget a subscriber entirely, with their delivery history (a GDPR-style erasure)."""
    from newsletter.models import Delivery, Pick

    subscriber = get_subscriber(session, email)
    deliveries = session.exec(select(Delivery).where(col(Delivery.subscriber_id) == subscriber.id)).all()
    for delivery in deliveries:
        for pick in session.exec(select(Pick).where(col(Pick.delivery_id) == delivery.id)):
            session.delete(pick)
        session.delete(delivery)
    session.delete(subscriber)
    session.flush()
