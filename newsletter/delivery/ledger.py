"""The delivery ledger: claim a row before sending, finish it right after the server answers.

Row life: `pending` → (claim) → `sending` → `sent` | `failed` | `skipped`, or back to `pending` with a
`next_attempt_at` after a temporary failure (`defer`).

Claim (`claim_batch`; `claim` is the one-row case): one conditional UPDATE (`WHERE id IN (...) AND status =
'pending' AND due AND the edition is neither paused nor cancelled`), committed at once; it returns, for each row it
moved pending → sending, the subscriber's current state for the send-time suppression check. The database
serialises writers to a row (SQLite: the write lock; PostgreSQL: the row lock, after which READ COMMITTED
re-checks the WHERE; the claim's `FOR UPDATE SKIP LOCKED` sub-select makes a sender skip a row another one is
claiming instead of waiting for its lock), so of two senders racing for a row exactly one gets it back. Rows a
batch claimed that the run never hands to the server (it stopped first) are given back at once (`release`).

Recording: `mark_sent` commits each accepted message, and a sender never has more messages handed over and not
yet recorded than it has SMTP connections: that is all a crash can resend.

Crash rule: a row left in `sending` for longer than the lease (NEWSLETTER_DELIVERY_LEASE_SECONDS) is put back to
`pending` by `release_stale` and sent again. Only messages in flight at the crash (claimed, possibly accepted by the
server, not yet marked sent) can be sent twice, and each copy carries the same Message-ID, so a duplicate is
recognisable.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, bindparam, func, or_, update
from sqlmodel import Session, col, select

from newsletter.clock import utcnow
from newsletter.models import Delivery, DeliveryStatus, Edition, EditionStatus, Subscriber

DEFAULT_LEASE = timedelta(minutes=15)

_TABLE: Table = Delivery.__table__  # type: ignore[attr-defined]  # SQLModel sets it on table models
_row = _TABLE.c


def _subscriber_field(column):
    return (select(column).where(col(Subscriber.id) == _row.subscriber_id)
            .correlate(_TABLE).scalar_subquery().label(column.key))


_EDITION_OPEN = (select(Edition.id).where(col(Edition.id) == _row.edition_id,  # two != rather than NOT IN: no
                                          col(Edition.status) != EditionStatus.paused.value,  # per-call expansion
                                          col(Edition.status) != EditionStatus.cancelled.value)
                 .correlate(_TABLE).exists())
_DUE_AND_OPEN = (_row.status == DeliveryStatus.pending.value,
                 or_(_row.next_attempt_at.is_(None), _row.next_attempt_at <= bindparam("now")), _EDITION_OPEN)
_CLAIM_RETURNS = (_row.subscriber_id, _row.attempts, _row.message_key, *map(_subscriber_field, (
    Subscriber.email, Subscriber.status, Subscriber.paused, Subscriber.soft_bounces)))
# The rows among `ids` that are claimable now, each moved pending -> sending by this one statement.
_IN_BATCH = _row.id.in_(bindparam("ids", expanding=True))
_CLAIM_BATCH = (update(_TABLE).where(_IN_BATCH, *_DUE_AND_OPEN)
                .values(status=DeliveryStatus.sending.value, claimed_at=bindparam("now"), attempts=_row.attempts + 1)
                .returning(_row.id, *_CLAIM_RETURNS))
# PostgreSQL: a row another sender has locked (it is claiming it right now) is skipped, not waited for.
_CLAIM_BATCH_SKIP_LOCKED = (update(_TABLE)
                            .where(_row.id.in_(select(_row.id).where(_IN_BATCH, *_DUE_AND_OPEN)
                                               .with_for_update(skip_locked=True)), *_DUE_AND_OPEN)
                            .values(status=DeliveryStatus.sending.value, claimed_at=bindparam("now"),
                                    attempts=_row.attempts + 1)
                            .returning(_row.id, *_CLAIM_RETURNS))
_MARK_SENT = (update(_TABLE)
              .where(_row.id == bindparam("delivery_id"), _row.status == DeliveryStatus.sending.value)
              .values(status=DeliveryStatus.sent.value, message_id=bindparam("message_id"),
                      sent_at=bindparam("now"), error=None, next_attempt_at=None))


class _HotStatement:
    """A per-message statement (mark sent, the edition's status), compiled once per dialect and run on the DBAPI
    connection.

    For these one-row statements SQLAlchemy's execution path costs more than the database does (measured on
    SQLite: about 0.8 ms of Python per message through `Connection.execute`, 0.45 ms this way), and it is the
    whole difference between the engine and a bare smtplib loop (benchmarks/delivery.py). The SQL text, the
    parameter processing (the column types' bind processors) and the transaction are still SQLAlchemy's and the
    driver's; each call commits.
    """

    def __init__(self, statement):
        self.statement = statement
        self._compiled: dict[str, tuple] = {}
        self._row_type: Any = None  # a namedtuple class made from the first result's column names

    def run(self, db: Session | Connection, **values) -> list:
        connection = db.connection() if isinstance(db, Session) else db
        compiled, processors = self._for(connection.dialect)
        params = {name: processors[name](value) if processors.get(name) else value
                  for name, value in compiled.construct_params(values).items()}
        driver = connection.connection.driver_connection
        assert driver is not None, "a live DBAPI connection"
        cursor = driver.cursor()
        try:
            cursor.execute(compiled.string,
                           tuple(params[name] for name in compiled.positiontup) if compiled.positional else params)
            rows = self._rows(cursor) if cursor.description else []
        finally:
            cursor.close()
        driver.commit()
        if isinstance(db, Session):
            db.commit()  # the session's transaction ended with the driver's commit: keep its state in step
        return rows

    def _for(self, dialect):
        if dialect.name not in self._compiled:
            compiled = self.statement.compile(dialect=dialect)
            processors = {name: bind.type.bind_processor(dialect) for name, bind in compiled.binds.items()}
            self._compiled[dialect.name] = (compiled, processors)
        return self._compiled[dialect.name]

    def _rows(self, cursor) -> list:
        names = tuple(column[0] for column in cursor.description)
        if self._row_type is None or self._row_type._fields != names:
            self._row_type = namedtuple("Row", names)  # type: ignore[misc]  # made at run time from the columns
        return [self._row_type(*row) for row in cursor.fetchall()]


def _due(now: datetime):
    return or_(col(Delivery.next_attempt_at).is_(None), col(Delivery.next_attempt_at) <= now)


def pending_ids(session: Session, edition_id: int, after_id: int = 0, limit: int | None = None,
                subscriber_ids: list[int] | None = None, due_only: bool = True,
                among: list[int] | None = None) -> list[int]:
    """Pending rows of an edition (of `subscriber_ids`, or among the ids `among`) in id order; by default only
    those whose retry time has come."""
    query = (select(Delivery.id)
             .where(col(Delivery.edition_id) == edition_id, col(Delivery.status) == DeliveryStatus.pending,
                    col(Delivery.id) > after_id)
             .order_by(col(Delivery.id)))
    if subscriber_ids is not None:
        query = query.where(col(Delivery.subscriber_id).in_(subscriber_ids))
    if among is not None:
        query = query.where(col(Delivery.id).in_(among))
    if due_only:
        query = query.where(_due(utcnow()))
    if limit:
        query = query.limit(limit)
    return list(session.exec(query))


def next_retry_at(session: Session, edition_id: int, ids: list[int] | None = None) -> datetime | None:
    """The earliest retry time among the edition's deferred rows (within `ids` when given)."""
    query = select(func.min(Delivery.next_attempt_at)).where(
        col(Delivery.edition_id) == edition_id, col(Delivery.status) == DeliveryStatus.pending)
    if ids is not None:
        query = query.where(col(Delivery.id).in_(ids))
    return session.exec(query).one()


_MARK_SENT_ROW = _HotStatement(_MARK_SENT)


def claim(db: Session | Connection, delivery_id: int):
    """Atomically move one due row pending -> sending (`claim_batch` of one row): the claimed row, or None when
    the row is not ours to send."""
    return claim_batch(db, [delivery_id]).get(delivery_id)


def mark_sent(db: Session | Connection, delivery_id: int, message_id: str) -> None:
    """Record that the server accepted the message, committed at once."""
    _MARK_SENT_ROW.run(db, delivery_id=delivery_id, message_id=message_id, now=utcnow())


def claim_batch(db: Session | Connection, delivery_ids: Sequence[int]) -> dict[int, Any]:
    """Claim these rows in one statement and one commit (see the module's rule): delivery id -> claimed row (id,
    subscriber_id, attempts, message_key (the Message-ID's random part), and the subscriber's email, status,
    paused, soft_bounces as they are at the claim, for the send-time check) for each row of `delivery_ids` that
    this statement moved pending -> sending. Rows another sender holds or took, rows not due and rows of a paused
    or cancelled edition are absent."""
    if not delivery_ids:
        return {}
    dialect = db.get_bind().dialect if isinstance(db, Session) else db.dialect
    statement = _CLAIM_BATCH_SKIP_LOCKED if dialect.name == "postgresql" else _CLAIM_BATCH
    rows = db.execute(statement, {"ids": list(delivery_ids), "now": utcnow()}).all()
    db.commit()
    return {row.id: row for row in rows}


def release(db: Connection, delivery_ids: Sequence[int], *, cancelled: bool = False) -> None:
    """Give back rows this sender claimed and never handed to the server (the run stopped first): `pending`
    again with the claim's attempt taken back, or `skipped` when the edition was cancelled meanwhile (cancel
    only skips the rows that were pending)."""
    if not delivery_ids:
        return
    values: dict[str, Any] = ({"status": DeliveryStatus.skipped.value, "error": "edition cancelled"} if cancelled
                              else {"status": DeliveryStatus.pending.value, "attempts": _row.attempts - 1})
    db.execute(update(_TABLE).where(_row.id.in_(list(delivery_ids)), _row.status == DeliveryStatus.sending.value)
               .values(**values))
    db.commit()


_EDITION_STATUS = _HotStatement(select(Edition.status).where(col(Edition.id) == bindparam("edition_id")))


def edition_status(db: Session | Connection, edition_id: int) -> str:
    """The edition's status as committed now (a sender reads it before each message: pause and cancel act
    after the messages in flight)."""
    return _EDITION_STATUS.run(db, edition_id=edition_id)[0][0]


def finish(session: Session, delivery_id: int, status: DeliveryStatus, *, error: str | None = None) -> None:
    """Settle a claimed row that was not sent: `failed` or `skipped`, with the reason (mark_sent records a send)."""
    session.exec(update(Delivery)
                 .where(col(Delivery.id) == delivery_id, col(Delivery.status) == DeliveryStatus.sending)
                 .values(status=status, error=error, next_attempt_at=None))
    session.commit()


def defer(session: Session, delivery_id: int, error: str, retry_at: datetime | None = None,
          count_attempt: bool = True) -> None:
    """Give a claimed row back after a temporary failure; it is not claimed again before `retry_at`.

    `count_attempt=False` takes back the attempt the claim counted (the failure was not this message's).
    """
    attempts = col(Delivery.attempts) - (0 if count_attempt else 1)
    session.exec(update(Delivery)
                 .where(col(Delivery.id) == delivery_id, col(Delivery.status) == DeliveryStatus.sending)
                 .values(status=DeliveryStatus.pending, error=error, next_attempt_at=retry_at, attempts=attempts))
    session.commit()


def release_stale(session: Session, edition_id: int | None = None, lease: timedelta = DEFAULT_LEASE) -> int:
    """Put rows stuck in `sending` for longer than `lease` back to `pending` (see the module's rule).

    Only `edition_id`'s rows, or every edition's when it is None (the send tick).
    """
    stale: list[ColumnElement[bool]] = [col(Delivery.status) == DeliveryStatus.sending,
                                        col(Delivery.claimed_at) < utcnow() - lease]
    if edition_id is not None:
        stale.append(col(Delivery.edition_id) == edition_id)
    result = session.exec(update(Delivery).where(*stale).values(status=DeliveryStatus.pending.value)
                          .execution_options(synchronize_session=False))
    session.commit()
    return result.rowcount
