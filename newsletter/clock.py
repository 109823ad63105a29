"""Time in one place: every stored time and every edition date is UTC; local time only where a subscriber's
zone decides something (newsletter.dispatch)."""

from __future__ import annotations

from datetime import UTC, date, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def today() -> date:
    """Today's date in UTC: the default edition date."""
    return utcnow().date()


def utc(moment: datetime | str | None) -> datetime:
    """An aware UTC datetime from an ISO string (naive = UTC), a datetime, or None (now)."""
    if moment is None:
        return utcnow()
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
