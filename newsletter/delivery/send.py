"""Sending an edition: claim each pending row, re-check the subscriber, compose, sign, pace, send, record.

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Connection, Engine, Row, update
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
from newsletter.delivery.smtp import PermanentFailure, SenderRejected, ServerUnreachable, SmtpSender, TemporaryFailure
from newsletter.delivery.suppression import record_hard_bounce, reset_soft_bounces, send_blocker
from newsletter.errors import InvalidInput
from newsletter.log import event
from newsletter.models import Delivery, DeliveryStatus, Edition, EditionStatus, Subscriber
from newsletter.ranking import trending_papers

log = logging.getLogger("newsletter.delivery")
MAX_CONSECUTIVE_DEFERRALS = 5  # then the server is likely down: stop and leave the rest pending
PREFETCH = 100  # rows whose picks and subscribers are loaded together before they are sent

# compose(delivery_id, subscriber_id, message_id) -> the message bytes (without DKIM; send signs them)
Composer = Callable[[int, int, str], bytes]


@dataclass
class _Outgoing:
    delivery_id: int
    recipient: Row  # from ledger.claim: subscriber_id, attempts, message_key, email, status, paused, soft_bounces
    message_id: str
    data: bytes


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
        with SmtpSender(settings) as sender, _ledger_connection(session) as ledger_db:
            run = _Run(session, edition, settings, report, compose, sign, rate_limit, sender, ledger_db,
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
    traceback. Nothing is lost: unsent rows stay pending, and the one claimed row whose outcome could not be
    recorded stays `sending` until the lease puts it back (the next run or tick sends it; if the server had
    accepted it, that one message arrives twice, with the same Message-ID)."""
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
    own writes before any ledger write, so the two never wait on each other. Lost with the database, it is
    dropped rather than rolled back (which would fail again, loudly)."""
    bind = session.get_bind()
    with (bind if isinstance(bind, Engine) else bind.engine).connect() as connection:
        try:
            yield connection
        except Exception as error:
            if db.unreachable(error):
                connection.invalidate()
            raise


class _Run:
    """One send_edition call: the open SMTP connection, the pacing, the signer and the rows it deferred."""

    def __init__(self, session: Session, edition: Edition, settings: Settings, report: SendReport,
                 compose: Composer, sign: Callable[[bytes], bytes] | None, rate_limit: RateLimit,
                 sender: SmtpSender, ledger_db: Connection, on_progress, should_stop):
        self.session, self.edition, self.settings, self.report = session, edition, settings, report
        self.compose, self.sign, self.rate_limit = compose, sign, rate_limit
        self.sender, self.ledger_db = sender, ledger_db
        self.on_progress, self.should_stop = on_progress, should_stop
        self.waiting: set[int] = set()  # rows this run deferred and may retry
        self.stopped = False

    def send_all(self, ids: list[int]) -> bool:
        """Try each row once. False when the run must stop (interrupted, edition paused, server down, ...)."""
        self.consecutive_deferrals = 0
        prefetch = getattr(self.compose, "prefetch", None)
        for position, delivery_id in enumerate(ids):
            if prefetch and position % PREFETCH == 0:
                prefetch(ids[position:position + PREFETCH])
            if self.should_stop and self.should_stop():
                self.report.stopped = "interrupted"
                return False
            outgoing = self._prepare(delivery_id)
            if outgoing is not None and self._submit(outgoing):
                self._collect(outgoing)
            if self._must_stop():
                return False
        return True

    def _prepare(self, delivery_id: int) -> _Outgoing | None:
        """Claim the row and build its message; None when there is nothing to send (taken, suppressed, paused)."""
        recipient = ledger.claim(self.ledger_db, delivery_id)
        if recipient is None:
            if self._edition_closed():
                return None
            if delivery_id in self.waiting:
                self.waiting.discard(delivery_id)  # another sender retried it first
            else:
                self._settled("skipped")
            return None
        self.waiting.discard(delivery_id)
        blocker = send_blocker(recipient.status, recipient.paused)
        if blocker:  # unsubscribes and bounces are honoured at send time, not only at planning time
            ledger.finish(self.session, delivery_id, DeliveryStatus.skipped, error=blocker)
            self._settled("skipped")
            return None
        message_id = delivery_message_id(self.edition.id, delivery_id, recipient.message_key, self.settings)
        data = self._build(delivery_id, recipient, message_id)
        return None if data is None else _Outgoing(delivery_id, recipient, message_id, data)

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
            ledger.finish(self.session, delivery_id, DeliveryStatus.failed, error=reason)
            self._settled("failed")
            self.report.errors.append(f"{recipient.email}: {reason}")
            if isinstance(error, InvalidInput):
                event(log, "delivery failed", logging.WARNING, delivery=delivery_id, to=recipient.email, error=reason)
            else:  # a bug: its traceback, once, for this row
                log.exception("delivery failed: delivery=%s to=%s error=%s", delivery_id, recipient.email, reason)
            return None

    def _edition_closed(self) -> bool:
        """After a refused claim: was it because the edition was paused or cancelled meanwhile?"""
        status = self.ledger_db.execute(select(Edition.status).where(col(Edition.id) == self.edition.id)).scalar_one()
        self.ledger_db.commit()
        if status in (EditionStatus.paused, EditionStatus.cancelled):
            self.report.stopped = f"edition {status}"
            self.stopped = True
        return self.stopped

    def _submit(self, outgoing: _Outgoing) -> bool:
        """Hand the message over (envelope and content). False when that already failed (and was recorded)."""
        self.rate_limit.wait()
        try:
            self.sender.submit(outgoing.recipient.email, outgoing.data,
                               envelope_sender(outgoing.delivery_id, self.settings))
        except (PermanentFailure, TemporaryFailure, SenderRejected) as error:
            self._failure(outgoing, error)
            return False
        return True

    def _collect(self, outgoing: _Outgoing) -> None:
        try:
            self.sender.collect()
        except (PermanentFailure, TemporaryFailure) as error:
            self._failure(outgoing, error)
            return
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
