"""Time in one place: every stored time and every edition date is UTC; local time only where a subscriber's
zone decides something (newsletter.dispatch)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from newsletter.errors import InvalidInput

EARLIEST_EDITION = date(2000, 1, 1)
LATEST_AHEAD = timedelta(days=366)


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


def edition_day(day: date) -> date:
    """`day` when it can be an edition date: from 2000-01-01 to a year ahead. Anything else (0001-01-01,
    9999-12-31, where the candidate window's arithmetic would overflow) is an InvalidInput."""
    latest = today() + LATEST_AHEAD
    if not EARLIEST_EDITION <= day <= latest:
        raise InvalidInput(f"{day.isoformat()} is not a possible edition date (from {EARLIEST_EDITION.isoformat()} "
                           f"to {latest.isoformat()})")
    return day
