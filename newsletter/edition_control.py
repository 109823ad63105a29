"""Operators' control of an edition: find it, count its deliveries, pause, resume or cancel it.

Pausing only changes the edition's status; senders read it before each claim (see `send_edition`), so the run
stops after the message in flight and every unsent row stays `pending`. Resuming reopens the edition and the
next send picks up exactly those rows: nobody is sent twice (the ledger) and nobody is skipped (rows stay pending).
Cancelling is final: the rows still pending are marked `skipped` with the reason, the rows already sent stay sent.

An edition's deliveries by status are its rows plus, once the retention prune (newsletter.retention) removed some,
their tally (`EditionTally`): the figures stay whole however much detail was pruned.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from newsletter.errors import InvalidInput, NotFound
from newsletter.models import Delivery, DeliveryStatus, Edition, EditionStatus, EditionTally

OPEN = (EditionStatus.planned, EditionStatus.sending)


def find_edition(session: Session, key: str | int) -> Edition:
    """An edition by id (`3`) or by date (`2026-11-25`). Raises NotFound."""
    text = str(key).strip()
    if text.isdigit():
        edition = session.get(Edition, int(text))
    else:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise InvalidInput(f"an edition is named by its id or its date (YYYY-MM-DD), not {text!r}") from None
        edition = session.exec(select(Edition).where(col(Edition.date) == day)).first()
    if edition is None:
        raise NotFound(f"no edition {text}")
    return edition


def delivery_counts(session: Session, edition_id: int | None = None) -> dict[str, int]:
    """Deliveries by status (every status present, zero when none), for one edition or all; pruned ones included."""
    query = select(Delivery.status, func.count()).group_by(col(Delivery.status))
    pruned = select(EditionTally.status, func.sum(EditionTally.deliveries)).group_by(col(EditionTally.status))
    if edition_id is not None:
        query = query.where(col(Delivery.edition_id) == edition_id)
        pruned = pruned.where(col(EditionTally.edition_id) == edition_id)
    counts = _zero_counts()
    for rows in (session.exec(query), session.exec(pruned)):
        for status, count in rows:
            counts[str(status)] += int(count)
    return counts


def delivery_counts_of(session: Session, edition_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Deliveries by status for each of these editions (pruned ones included), in two queries."""
    counts = {edition_id: _zero_counts() for edition_id in edition_ids}
    if counts:
        rows = session.exec(select(Delivery.edition_id, Delivery.status, func.count())
                            .where(col(Delivery.edition_id).in_(edition_ids))
                            .group_by(col(Delivery.edition_id), col(Delivery.status)))
        pruned = session.exec(select(EditionTally.edition_id, EditionTally.status, EditionTally.deliveries)
                              .where(col(EditionTally.edition_id).in_(edition_ids)))
        for edition_id, status, count in [*rows, *pruned]:
            counts[edition_id][str(status)] += count
    return counts


def _zero_counts() -> dict[str, int]:
    return {status.value: 0 for status in DeliveryStatus}


def pause_edition(session: Session, edition: Edition) -> bool:
    """Stop sending after the messages in flight. False when it was already paused."""
    if edition.status == EditionStatus.paused:
        return False
    _require(edition, OPEN, "pause")
    return _set_status(session, edition, EditionStatus.paused)


def resume_edition(session: Session, edition: Edition) -> bool:
    """Reopen a paused edition; a send then continues with the rows still pending. False when not paused."""
    if edition.status in OPEN:
        return False
    _require(edition, (EditionStatus.paused,), "resume")
    return _set_status(session, edition, EditionStatus.sending)


def cancel_edition(session: Session, edition: Edition) -> int:
    """Send nothing more of this edition. Returns how many pending rows were marked skipped."""
    _require(edition, (*OPEN, EditionStatus.paused), "cancel")
    _set_status(session, edition, EditionStatus.cancelled)
    result = session.exec(
        update(Delivery)
        .where(col(Delivery.edition_id) == edition.id, col(Delivery.status) == DeliveryStatus.pending)
        .values(status=DeliveryStatus.skipped.value, error="edition cancelled")
    )
    session.flush()
    return result.rowcount


def _require(edition: Edition, allowed: tuple[EditionStatus, ...], action: str) -> None:
    if edition.status not in allowed:
        raise InvalidInput(f"cannot {action} edition {edition.id} ({edition.date}): it is {edition.status}")


def _set_status(session: Session, edition: Edition, status: EditionStatus) -> bool:
    """Change the status only if nobody changed it meanwhile (compare-and-set on the row)."""
    result = session.exec(
        update(Edition).where(col(Edition.id) == edition.id, col(Edition.status) == edition.status)
        .values(status=status.value)
    )
    if result.rowcount != 1:
        session.refresh(edition)
        raise InvalidInput(f"edition {edition.id} changed meanwhile (now {edition.status}); try again")
    session.flush()
    session.refresh(edition)
    return True
