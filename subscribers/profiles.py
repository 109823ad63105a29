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
from newsletter.models import Subscriber, SubscriberStatus, address_key

FREQUENCIES = ("daily", "weekly")
_CONTROL_CHARS = {chr(c) for c in range(32)} | {"\x7f"}
# Bounds on what a profile may hold: a sign-up cannot store more than a person would type.
MAX_TERMS = 50  # keywords, followed authors, excluded keywords: each list
MAX_TERM_CHARS = 100
MAX_INTERESTS_CHARS = 2000
MAX_NAME_CHARS = 200
MAX_ID = 2**31 - 1  # ids are 32-bit integer columns (PostgreSQL `integer`)


def reject_control_chars(value: str, field: str) -> str:
    """CR, LF and other control characters never belong in a profile field (they could forge headers)."""
    bad = sorted({repr(ch) for ch in value if ch in _CONTROL_CHARS and ch != "\t"})
    if bad:
        raise InvalidInput(f"{field} contains control characters ({', '.join(bad)}); remove line breaks")
    return value


def normalize_email(address: str, smtputf8: bool | Callable[[], bool] = True) -> str:
    """Validate syntax (no DNS lookup) and return the address with its domain lower-cased (as typed otherwise).

    An address with non-ASCII characters before the @ can only be mailed through a server that offers SMTPUTF8:
    `smtputf8` says whether ours does (a callable is asked only when such an address shows up); when it does not,
    the address is refused here, at sign-up or import, not at send time. A non-ASCII domain is fine: it goes out
    in its ASCII (IDNA) form (newsletter.delivery.mime.wire_address).
    """
    reject_control_chars(address, "email address")
    if "\ufffd" in address:  # what undecodable bytes become: never part of a real address
        raise InvalidInput(f"invalid email address {address!r}: it contains characters that could not be read")
    try:
        result = validate_email(address.strip(), check_deliverability=False)
    except EmailNotValidError as error:
        raise InvalidInput(f"invalid email address {address!r}: {error}") from None
    local, _, domain = result.normalized.rpartition("@")
    if not local.isascii() and not (smtputf8() if callable(smtputf8) else smtputf8):
        raise InvalidInput(f"{result.normalized} cannot be used: our mail server cannot deliver to an address with "
                           "non-ASCII characters before the @ (it does not offer SMTPUTF8)")
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
        if len(term) > MAX_TERM_CHARS:
            raise InvalidInput(f"{field}: {term[:30]!r}... is too long (at most {MAX_TERM_CHARS} characters each)")
        if term and term.lower() not in seen:
            seen.add(term.lower())
            terms.append(term)
    if len(terms) > MAX_TERMS:
        raise InvalidInput(f"{field}: at most {MAX_TERMS}, not {len(terms)}")
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


def bounded(value: str, field: str, limit: int) -> str:
    if len(value) > limit:
        raise InvalidInput(f"{field} is too long (at most {limit} characters)")
    return value


def validated_profile(**fields) -> dict:
    """Check every profile field given; returns the cleaned values. Raises InvalidInput on the first bad one."""
    cleaners: dict[str, Callable[[Any], Any]] = {
        "name": lambda v: " ".join(reject_control_chars(bounded(v, "name", MAX_NAME_CHARS), "name").split()),
        "interests": lambda v: reject_control_chars(bounded(v, "interests", MAX_INTERESTS_CHARS), "interests").strip(),
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
    existing = find_subscriber(session, address)
    if existing is not None:
        raise InvalidInput(f"{address} is already subscribed" + (f", as {existing.email}"
                                                                  if existing.email != address else ""))
    subscriber = Subscriber(email=address, email_key=address_key(address), status=SubscriberStatus(status),
                            **cleaned)
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
    """The subscriber of this mailbox, however its address is capitalised."""
    return session.exec(select(Subscriber).where(col(Subscriber.email_key) == address_key(email))).first()


def subscriber_by_id(session: Session, subscriber_id: object) -> Subscriber | None:
    """The subscriber with this id; None for anything that cannot be one (not an int, out of the column's range)."""
    if type(subscriber_id) is not int or not 0 < subscriber_id <= MAX_ID:
        return None
    return session.get(Subscriber, subscriber_id)


def get_subscriber(session: Session, email_or_id: str | int) -> Subscriber:
    """By id, or by address (normalized first). Raises NotFound."""
    text = str(email_or_id)
    if isinstance(email_or_id, int) or (text.isascii() and text.isdigit()):
        subscriber = subscriber_by_id(session, int(email_or_id))
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
