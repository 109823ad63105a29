"""The daily flow and its rules, in one place: ingest the sources, plan an edition, send it, resume it.

The CLI, the Celery tasks, the demo and the web admin all run the flow through these functions, so a rule holds
whoever runs it: an edition an operator paused or cancelled is neither planned into nor sent (EditionClosed); a
source that fails never stops the others; a send tick's work is whatever the database says is due (see
newsletter.dispatch), so any step may run twice. Celery-specific work (fanning batches out to tasks) stays in
tasks/; everything here runs in-process too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from newsletter import db, dispatch
from newsletter.clock import today, utcnow
from newsletter.config import Settings
from newsletter.delivery import ledger
from newsletter.delivery.send import SendReport, send_edition
from newsletter.edition_control import resume_edition
from newsletter.editions import PlanReport, get_or_create_edition, plan_edition, require_open
from newsletter.errors import FeedError
from newsletter.ingest import SourceReport, expand, ingest
from newsletter.log import event
from newsletter.models import Edition
from newsletter.ranking.embeddings import embed_missing

log = logging.getLogger("newsletter.jobs")
# A concurrent planner of the same rows makes an attempt fail on the unique key; re-planning skips them.
PLAN_ATTEMPTS = 3


@dataclass
class DailyReport:
    plan: PlanReport
    send: SendReport


@dataclass
class TickReport:
    """What one send tick found: subscribers due (by edition date), rows released from dead senders, and pending
    rows no sender holds (by edition), now stamped as queued."""

    due: dict[date, list[int]] = field(default_factory=dict)
    released: int = 0
    lost: dict[int, list[int]] = field(default_factory=dict)


def ingest_sources(settings: Settings, sources: list[str], *, day: date | None = None,
                   format: str | None = None) -> list[SourceReport]:
    """Ingest each source (the sample corpus: each file) in its own transaction and embed its new papers (once
    per paper). A source that fails, whatever the reason, is reported and logged and stores nothing; the next
    one is ingested all the same. `day`: the edition date that shortcuts such as hf:daily expand for."""
    day = day or today()
    return [_ingest_one(settings, source, location, day, format)
            for source in sources for location in expand(source)]


def _ingest_one(settings: Settings, source: str, location: str, day: date, format: str | None) -> SourceReport:
    for attempt in (1, 2):
        try:
            with db.session_scope(settings.sqlalchemy_url) as session:
                result = ingest(session, location, settings, day=day, format=format)
                result.embedded = embed_missing(session, settings)
            return SourceReport(source, location, ok=True, result=result)
        except FeedError as error:
            reason = error.problem if error.source == location else str(error)
            event(log, "source failed", logging.WARNING, source=location, reason=reason)
            return SourceReport(source, location, ok=False, reason=reason)
        except IntegrityError:
            if attempt == 1:  # another ingest stored one of these papers meanwhile: the second pass finds it
                continue
            log.exception("source failed: %s", location)
            return SourceReport(source, location, ok=False, reason="database conflict (stored concurrently)")
        except Exception as error:  # a bug or a database problem: reported, logged with its traceback, next source
            log.exception("source failed: %s", location)
            return SourceReport(source, location, ok=False,
                                reason=f"unexpected error ({error.__class__.__name__}: {error})")
    raise AssertionError("unreachable")


def open_edition(session: Session, day: date) -> Edition:
    """`day`'s edition (created if needed). Raises EditionClosed when an operator paused or cancelled it."""
    edition = get_or_create_edition(session, day)
    require_open(edition)
    return edition


def plan(session: Session, day: date, settings: Settings, only: list[int] | None = None) -> PlanReport:
    """Plan `day`'s edition for every active subscriber (or `only` these ids) and commit."""
    report = plan_edition(session, day, settings, only=only)
    session.commit()
    return report


def plan_batch(settings: Settings, day: date, subscriber_ids: list[int]) -> tuple[PlanReport, list[int]]:
    """Plan these subscribers into `day`'s edition and take their new rows for sending (stamped queued).

    Another planner of the same subscribers (a second tick, a re-delivered task) can make an attempt fail on the
    unique delivery key; the next attempt plans only what is still missing.
    """
    for attempt in range(1, PLAN_ATTEMPTS + 1):
        try:
            with db.session_scope(settings.sqlalchemy_url) as session:
                report = plan_edition(session, day, settings, only=subscriber_ids)
            break
        except IntegrityError:
            if attempt == PLAN_ATTEMPTS:
                raise
    with db.session_scope(settings.sqlalchemy_url) as session:
        ids = dispatch.take_unqueued(session, report.edition_id, subscriber_ids, utcnow())
    return report, ids


def send(session: Session, edition: Edition, settings: Settings, **options) -> SendReport:
    """Send the edition's pending rows in-process (see send_edition for the options). Raises EditionClosed."""
    require_open(edition)
    assert edition.id is not None
    return send_edition(session, edition.id, settings, **options)


def run_daily(session: Session, day: date, settings: Settings, **send_options) -> DailyReport:
    """Plan `day`'s edition, then send it, in-process."""
    planned = plan(session, day, settings)
    edition = session.get(Edition, planned.edition_id)
    assert edition is not None
    return DailyReport(plan=planned, send=send(session, edition, settings, **send_options))


def resume(session: Session, edition: Edition) -> bool:
    """Reopen a paused edition: the next send (or tick) continues with exactly the rows still pending."""
    return resume_edition(session, edition)


def tick(settings: Settings, moment: datetime) -> TickReport:
    """The periodic send tick's work: who is due at `moment`, which rows dead senders left, which rows to
    hand out again. Closed editions are left alone (dispatch.take_lost); planning refuses them."""
    report = TickReport()
    with db.session_scope(settings.sqlalchemy_url) as session:
        report.due = dispatch.due_subscribers(session, moment, settings)
    with db.session_scope(settings.sqlalchemy_url) as session:
        report.released = ledger.release_stale(session, None, settings.delivery_lease)
        report.lost = dispatch.take_lost(session, moment, settings)
    return report


def take_pending(settings: Settings, moment: datetime) -> dict[int, list[int]]:
    """Pending rows no sender holds, by edition, stamped queued (after planning a whole edition at once)."""
    with db.session_scope(settings.sqlalchemy_url) as session:
        return dispatch.take_lost(session, moment, settings)


