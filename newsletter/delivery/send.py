"""Sending an edition: claim each pending row, re-check the subscriber, compose, sign, pace, send, record.

Rows are claimed a batch at a time (`ledger.claim_batch`; 1, 2, 4, ... up to CLAIM_BATCH rows, so two senders
starting together share even a small edition), each message composed in this thread and handed to one of
NEWSLETTER_SMTP_CONNECTIONS connections (`SmtpPool`, a thread each), and each accepted message marked sent (one
commit); at most one message per connection is handed over and not yet recorded, all a crash can resend. The
edition's status is read between messages (every STATUS_SECONDS, and after each call of the caller's progress
hook, which is where an operator's pause can come from within the process), and by each claim: a pause or cancel
acts after the messages in flight. Claimed rows not handed over when the run stops go back to pending at once
(`ledger.release`).

Failures: a temporary one (4xx, timeout, dropped connection) puts the row back to `pending` with a
`next_attempt_at` (exponential backoff with jitter) until `max_attempts`, then it fails (a server that cannot be
reached at all counts no attempt: an outage of any length fails no row); a permanent one (5xx)
fails the row and suppresses the address (unless it only says the message is too large); a refused login or
envelope sender stops the run and blames no one. An email that cannot be built for one reader fails that row
alone, with the reason; a database that goes away ends the run with `stopped` set (see _stopped_by_lost_database).
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Connection, Engine, Row, text, update
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, select

from newsletter import db
from newsletter.clock import utcnow
from newsletter.compose import picks_of_deliveries, render_for
from newsletter.config import Settings
from newsletter.delivery import ledger
from newsletter.delivery.dkim_sign import dkim_signer
from newsletter.delivery.envelope import envelope_sender
from newsletter.delivery.message import delivery_message_id, message_bytes
from newsletter.delivery.rate import RateLimit, rate_limit_for
from newsletter.delivery.smtp import PermanentFailure, ServerUnreachable, SmtpPool, TemporaryFailure
from newsletter.delivery.suppression import record_hard_bounce, reset_soft_bounces, send_blocker
from newsletter.errors import InvalidInput
from newsletter.log import event
from newsletter.models import Delivery, DeliveryStatus, Edition, EditionStatus, Subscriber
from newsletter.ranking import trending_papers

log = logging.getLogger("newsletter.delivery")
MAX_CONSECUTIVE_DEFERRALS = 5  # then the server is likely down: stop and leave the rest pending
CLAIM_BATCH = 64  # rows claimed in one statement at most; a run's first claims take 1, 2, 4, ... rows
STATUS_SECONDS = 0.1  # the edition's status is read this often between messages, and after each progress hook

# compose(delivery_id, subscriber_id, message_id) -> the message bytes (without DKIM; send signs them)
Composer = Callable[[int, int, str], bytes]


@dataclass
class _Outgoing:
    delivery_id: int
    recipient: Row  # from ledger.claim_batch: id, subscriber_id, attempts, message_key, email, status, paused,
    #                 soft_bounces
    message_id: str
    data: bytes
    envelope_from: str


@dataclass
class SendReport:
    edition_id: int
    sent: int = 0
    failed: int = 0  # permanent refusals, and temporary failures out of attempts
    deferred: int = 0  # rows waiting for a retry (temporary failure) when the run ended
    skipped: int = 0  # suppressed at send time, or taken by another sender
    retries: int = 0  # temporary failures met (each deferred with backoff)
    errors: list[str] = field(default_factory=list)
    stopped: str = ""  # why the run ended before the last row: "interrupted", "edition paused", ...

    @property
    def handled(self) -> int:
        return self.sent + self.failed + self.deferred + self.skipped


def retry_delay(attempts: int, settings: Settings, rng: random.Random | None = None) -> float:
    """Seconds to wait after the `attempts`-th failed attempt: doubling from the base, capped, half of it jittered
    so senders that failed together do not retry together."""
    delay = min(settings.retry_max_delay, settings.retry_base_delay * 2 ** max(0, attempts - 1))
    return delay / 2 + (rng or random).uniform(0, delay / 2)


def send_edition(session: Session, edition_id: int, settings: Settings, *, limit: int | None = None,
                 delivery_ids: list[int] | None = None,
                 on_progress: Callable[[SendReport], None] | None = None,
                 should_stop: Callable[[], bool] | None = None,
                 compose: Composer | None = None, wait_for_retries: float = 0.0) -> SendReport:
    """Send the pending deliveries of an edition (all, or only those in `delivery_ids`) once.

    Safe to run again and beside other senders: each row is claimed before it is sent. The claim also checks
    the edition's status, so a pause or cancel from elsewhere takes effect after the message in flight;
    `should_stop` (e.g. set by Ctrl-C) ends the run the same way. Unsent rows stay pending for the next run.
    With `wait_for_retries` (seconds) the run also retries the rows it deferred whose retry time comes within
    that time; otherwise a later run does. `compose` replaces per-recipient rendering (benchmarks pass
    pre-rendered messages).
    """
    edition = session.get(Edition, edition_id)
    report = SendReport(edition_id=edition_id)
    if edition is None or edition.status in (EditionStatus.paused, EditionStatus.cancelled):
        return report
    ledger.release_stale(session, edition_id, settings.delivery_lease)
    compose = compose or _Renderer(session, edition, settings)
    sign = dkim_signer(settings)  # reads the key now: a bad key fails before anything is claimed
    rate_limit = rate_limit_for(settings)
    deadline = time.monotonic() + wait_for_retries
    try:
        with SmtpPool(settings) as pool, _ledger_connection(session) as ledger_db:
            run = _Run(session, edition, settings, report, compose, sign, rate_limit, pool, ledger_db,
                       on_progress, should_stop)
            ids = ledger.pending_ids(session, edition_id, limit=limit) if delivery_ids is None else delivery_ids
            while run.send_all(ids) and run.waiting:
                retry_at = ledger.next_retry_at(session, edition_id, sorted(run.waiting))
                pause = (retry_at - utcnow()).total_seconds() if retry_at else None
                if pause is None or time.monotonic() + pause > deadline:
                    break
                time.sleep(max(0.0, pause))
                ids = ledger.pending_ids(session, edition_id, among=sorted(run.waiting))
            report.deferred = len(run.waiting)
    except Exception as error:
        if not _stopped_by_lost_database(error, report, session):
            raise
        return report
    finally:
        rate_limit.close()
    _update_edition_status(session, edition)
    return report


class _Renderer:
    """Composes each row's message. The picks and subscribers of the next rows to send are loaded a window at a
    time (`prefetch`), and the papers once per run, so an email costs no query of its own."""

    def __init__(self, session: Session, edition: Edition, settings: Settings):
        self.session, self.edition, self.settings = session, edition, settings
        self.trending_pool = trending_papers(session, edition.date, settings)
        self.papers = {paper.id: paper for paper in self.trending_pool}
        self.picks: dict[int, list] = {}
        self.subscribers: dict[int, Subscriber] = {}

    def prefetch(self, delivery_ids: list[int]) -> None:
        self.picks = {delivery_id: [] for delivery_id in delivery_ids}
        self.picks.update(picks_of_deliveries(self.session, delivery_ids, self.papers))
        self.subscribers = {subscriber.id: subscriber for subscriber in self.session.exec(
            select(Subscriber).join(Delivery, col(Delivery.subscriber_id) == Subscriber.id)
            .where(col(Delivery.id).in_(delivery_ids)))}

    def __call__(self, delivery_id: int, subscriber_id: int, message_id: str) -> bytes:
        picks = self.picks.pop(delivery_id, None)
        if picks is None:  # not prefetched (a retry of a deferred row)
            picks = picks_of_deliveries(self.session, [delivery_id], self.papers).get(delivery_id, [])
        subscriber = self.subscribers.get(subscriber_id) or self.session.get_one(Subscriber, subscriber_id)
        rendered = render_for(subscriber, self.edition.date, picks, self.trending_pool, self.settings)
        return message_bytes(rendered, subscriber, message_id, self.settings)


def _stopped_by_lost_database(error: Exception, report: SendReport, session: Session) -> bool:
    """The database went away mid-run (restarted, unreachable): end the run with the reason in one line, no
    traceback. Nothing is lost: unsent rows stay pending, and the claimed rows whose outcome could not be
    recorded stay `sending` until the lease puts them back (the next run or tick sends them; a message the server
    had accepted arrives twice, with the same Message-ID)."""
    reason = db.unreachable(error)
    if reason is None:
        return False
    report.stopped = reason
    session.invalidate()  # its dead connection is dropped, not rolled back (that would fail again, loudly)
    event(log, "sending stopped", logging.ERROR, edition=report.edition_id, error=reason)
    return True


@contextmanager
def _ledger_connection(session: Session) -> Iterator[Connection]:
    """A connection of its own for the per-message ledger statements (no ORM overhead). The session commits its
    own writes before any ledger write, so the two never wait on each other.

    PostgreSQL: its commits do not wait for the WAL flush (`synchronous_commit = off`, this connection only): a
    commit is visible and survives a crash of the sender at once (which is what the lease rule needs), and only a
    crash of the database server can lose its last fraction of a second (wal_writer_delay), as SQLite's
    synchronous=NORMAL can after an OS crash. Without it each message waits for an fsync. Lost with the database,
    the connection is dropped rather than rolled back (which would fail again, loudly)."""
    bind = session.get_bind()
    with (bind if isinstance(bind, Engine) else bind.engine).connect() as connection:
        postgresql = connection.dialect.name == "postgresql"
        if postgresql:
            connection.execute(text("SET synchronous_commit TO off"))
            connection.commit()
        try:
            yield connection
        except Exception as error:
            if db.unreachable(error):
                connection.invalidate()
            raise
        finally:
            if postgresql and not connection.closed and not connection.invalidated:
                connection.rollback()
                connection.execute(text("RESET synchronous_commit"))  # the connection goes back to the pool
                connection.commit()


class _Run:
    """One send_edition call: the SMTP connections, the pacing, the signer, the messages in flight, the claimed
    rows not yet handed over and the rows it deferred."""

    def __init__(self, session: Session, edition: Edition, settings: Settings, report: SendReport,
                 compose: Composer, sign: Callable[[bytes], bytes] | None, rate_limit: RateLimit,
                 pool: SmtpPool, ledger_db: Connection, on_progress, should_stop):
        self.session, self.edition, self.settings, self.report = session, edition, settings, report
        self.compose, self.sign, self.rate_limit = compose, sign, rate_limit
        self.pool, self.ledger_db = pool, ledger_db
        self.on_progress, self.should_stop = on_progress, should_stop
        self.waiting: set[int] = set()  # rows this run deferred and may retry
        self.stopped = False
        self.in_flight: deque[tuple[_Outgoing, Future]] = deque()
        self.held: dict[int, None] = {}  # claimed, not yet handed to the server (in claim order)
        self.status_read_at = 0.0  # when the edition's status was last read (monotonic); 0: read before the next

    def send_all(self, ids: list[int]) -> bool:
        """Try each row once. False when the run must stop (interrupted, edition paused, server down, ...).
        Returns with nothing in flight (every answer recorded) and no claimed row held."""
        self.consecutive_deferrals = 0
        try:
            return self._send_all(ids) and not self._must_stop()
        finally:
            while self.in_flight:
                self._settle_next()
            if self.held:
                ledger.release(self.ledger_db, list(self.held),
                               cancelled=self.report.stopped == f"edition {EditionStatus.cancelled}")
                self.held.clear()

    def _send_all(self, ids: list[int]) -> bool:
        prefetch = getattr(self.compose, "prefetch", None)
        position, size = 0, 1
        while position < len(ids):
            chunk = ids[position:position + size]
            position, size = position + len(chunk), min(2 * size, CLAIM_BATCH)
            if self._stop_requested():
                return False
            claimed = ledger.claim_batch(self.ledger_db, chunk)
            self.held.update(dict.fromkeys(delivery_id for delivery_id in chunk if delivery_id in claimed))
            if len(claimed) < len(chunk) and self._not_claimed([i for i in chunk if i not in claimed]):
                return False
            if prefetch and claimed:
                prefetch(list(self.held))
            for delivery_id in chunk:
                if delivery_id not in claimed:
                    continue
                outgoing = self._prepare(delivery_id, claimed[delivery_id])
                if outgoing is None:
                    continue
                self._wait_for_a_connection()
                if self._must_stop() or self._stop_requested():
                    return False
                self.rate_limit.wait()
                del self.held[delivery_id]
                self.in_flight.append((outgoing, self.pool.send(outgoing.recipient.email, outgoing.data,
                                                                outgoing.envelope_from)))
        return True

    def _not_claimed(self, delivery_ids: list[int]) -> bool:
        """Rows the claim did not take: another sender's, or the edition closed. True when the run must stop."""
        if self._edition_closed():
            return True
        for delivery_id in delivery_ids:
            if delivery_id in self.waiting:
                self.waiting.discard(delivery_id)  # another sender retried it first
            else:
                self._settled("skipped")
        return False

    def _prepare(self, delivery_id: int, recipient: Row) -> _Outgoing | None:
        """Check the claimed row's subscriber and build its message; None when suppressed or unbuildable (the row is
        settled)."""
        self.waiting.discard(delivery_id)
        blocker = send_blocker(recipient.status, recipient.paused)
        if blocker:  # unsubscribes and bounces are honoured at send time, not only at planning time
            del self.held[delivery_id]
            ledger.finish(self.session, delivery_id, DeliveryStatus.skipped, error=blocker)
            self._settled("skipped")
            return None
        message_id = delivery_message_id(self.edition.id, delivery_id, recipient.message_key, self.settings)
        data = self._build(delivery_id, recipient, message_id)
        return None if data is None else _Outgoing(delivery_id, recipient, message_id, data,
                                                   envelope_sender(delivery_id, self.settings))

    def _build(self, delivery_id: int, recipient: Row, message_id: str) -> bytes | None:
        """The signed message; None when this reader's email cannot be built (data written around validation, or
        a bug): that row alone fails, with the reason, and the run goes on. A database error is not the reader's:
        it propagates (see send_edition)."""
        try:
            data = self.compose(delivery_id, recipient.subscriber_id, message_id)
            return self.sign(data) if self.sign else data
        except Exception as error:
            if isinstance(error, DBAPIError) or db.unreachable(error):
                raise
            reason = f"cannot build the email: {error if isinstance(error, InvalidInput) else repr(error)}"
            self.session.rollback()
            del self.held[delivery_id]
            ledger.finish(self.session, delivery_id, DeliveryStatus.failed, error=reason)
            self._settled("failed")
            self.report.errors.append(f"{recipient.email}: {reason}")
            if isinstance(error, InvalidInput):
                event(log, "delivery failed", logging.WARNING, delivery=delivery_id, to=recipient.email, error=reason)
            else:  # a bug: its traceback, once, for this row
                log.exception("delivery failed: delivery=%s to=%s error=%s", delivery_id, recipient.email, reason)
            return None

    def _stop_requested(self) -> bool:
        """Interrupted, or the edition paused or cancelled (read now: it acts after the messages in flight)."""
        if self.should_stop and self.should_stop():
            self.report.stopped = "interrupted"
            self.stopped = True
        elif time.monotonic() - self.status_read_at >= STATUS_SECONDS:
            return self._edition_closed()
        return self.stopped

    def _edition_closed(self) -> bool:
        """Was the edition paused or cancelled meanwhile? (Read after a refused claim, and every STATUS_SECONDS.)"""
        status = ledger.edition_status(self.ledger_db, self.edition.id)
        self.status_read_at = time.monotonic()
        if status in (EditionStatus.paused, EditionStatus.cancelled):
            self.report.stopped = f"edition {status}"
            self.stopped = True
        return self.stopped

    def _wait_for_a_connection(self) -> None:
        """Settle the messages whose answer came; wait for the oldest while every connection is busy."""
        while self.in_flight and (len(self.in_flight) >= self.pool.size or self.in_flight[0][1].done()):
            self._settle_next()

    def _settle_next(self) -> None:
        outgoing, answer = self.in_flight.popleft()
        error = answer.result()
        if error is None:
            self._accepted(outgoing)
        else:
            self._failure(outgoing, error)

    def _accepted(self, outgoing: _Outgoing) -> None:
        ledger.mark_sent(self.ledger_db, outgoing.delivery_id, outgoing.message_id)
        if outgoing.recipient.soft_bounces:
            reset_soft_bounces(self.session, outgoing.recipient.subscriber_id)
            self.session.commit()
        self._settled("sent")
        event(log, "delivery sent", delivery=outgoing.delivery_id, to=outgoing.recipient.email,
              message_id=outgoing.message_id)

    def _failure(self, outgoing: _Outgoing, error: Exception) -> None:
        if isinstance(error, PermanentFailure):
            self._failed(outgoing.delivery_id, outgoing.recipient, error)
        elif isinstance(error, TemporaryFailure):
            self._deferred(outgoing.delivery_id, outgoing.recipient, error)
        else:  # SenderRejected: not this recipient's fault
            ledger.defer(self.session, outgoing.delivery_id, str(error), count_attempt=False)
            self.report.stopped = str(error)
            self.stopped = True
            event(log, "sending stopped", logging.ERROR, delivery=outgoing.delivery_id, error=str(error))

    def _settled(self, outcome: str) -> None:
        """Count one row's outcome: sent, failed, deferred or skipped."""
        if outcome != "deferred":
            setattr(self.report, outcome, getattr(self.report, outcome) + 1)
        self.consecutive_deferrals = self.consecutive_deferrals + 1 if outcome == "deferred" else 0
        if self.on_progress:
            self.report.deferred = len(self.waiting)
            self.on_progress(self.report)
            self.status_read_at = 0.0  # the hook may have changed anything: read the status again

    def _must_stop(self) -> bool:
        if self.consecutive_deferrals >= MAX_CONSECUTIVE_DEFERRALS and not self.stopped:
            self.report.stopped = f"{self.consecutive_deferrals} temporary failures in a row"
            self.stopped = True
        return self.stopped

    def _failed(self, delivery_id: int, recipient, error: PermanentFailure) -> None:
        ledger.finish(self.session, delivery_id, DeliveryStatus.failed, error=str(error))
        if error.blames_recipient:  # a refused address is suppressed; a message over the size limit is not
            subscriber = self.session.get_one(Subscriber, recipient.subscriber_id)
            self.session.refresh(subscriber)
            record_hard_bounce(self.session, subscriber, {"delivery_id": delivery_id, "source": "smtp",
                                                          "code": error.code, "reason": str(error)})
            self.session.commit()
        self._settled("failed")
        self.report.errors.append(f"{recipient.email}: {error}")
        event(log, "delivery failed", logging.WARNING, delivery=delivery_id, to=recipient.email, error=str(error))

    def _deferred(self, delivery_id: int, recipient, error: TemporaryFailure) -> None:
        self.report.retries += 1
        counted = not isinstance(error, ServerUnreachable)  # nothing reached the server: not this row's attempt
        if counted and recipient.attempts >= self.settings.max_attempts:
            reason = f"gave up after {recipient.attempts} attempts: {error}"
            ledger.finish(self.session, delivery_id, DeliveryStatus.failed, error=reason)
            self._settled("failed")
            self.report.errors.append(f"{recipient.email}: {reason}")
            event(log, "delivery failed", logging.WARNING, delivery=delivery_id, to=recipient.email, error=reason)
            return
        retry_at = utcnow() + timedelta(seconds=retry_delay(recipient.attempts - (not counted), self.settings))
        ledger.defer(self.session, delivery_id, str(error), retry_at, count_attempt=counted)
        self.waiting.add(delivery_id)
        self._settled("deferred")
        self.report.errors.append(f"{recipient.email}: {error}")
        event(log, "delivery deferred", logging.WARNING, delivery=delivery_id, to=recipient.email, error=str(error),
              retry_at=retry_at.isoformat())


def _update_edition_status(session: Session, edition: Edition) -> None:
    """`sending` while rows are pending, else `done`; a pause or cancel made meanwhile always wins."""
    still_open = bool(ledger.pending_ids(session, edition.id, limit=1, due_only=False))
    session.exec(
        update(Edition)
        .where(col(Edition.id) == edition.id,
               col(Edition.status).not_in((EditionStatus.paused, EditionStatus.cancelled)))
        .values(status=(EditionStatus.sending if still_open else EditionStatus.done).value)
    )
    session.commit()
    session.refresh(edition)
