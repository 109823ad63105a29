"""The daily flow and its rules, in one place: ingest the sources, plan an edition, send it, resume it.

The CLI, the Celery tasks, the demo and the web admin all run the flow through these functions, so a rule holds
whoever runs it: an edition an operator paused or cancelled is neither planned into nor sent (EditionClosed); a
source that fails never stops the others; a send tick's work is whatever the database says is due (see
newsletter.dispatch), so any step may run twice. Celery-specific work (fanning batches out to tasks) stays in
tasks/; everything here runs in-process too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from newsletter import db, dispatch
from newsletter.clock import utcnow
from newsletter.config import Settings
from newsletter.delivery import ledger
from newsletter.delivery.send import SendReport, send_edition
from newsletter.edition_control import resume_edition
from newsletter.editions import PlanReport, get_or_create_edition, plan_edition, require_open
from newsletter.errors import FeedError
from newsletter.ingest import ingest, sample_sources
from newsletter.ingest.store import IngestResult
from newsletter.log import event
from newsletter.models import Edition
from newsletter.ranking.embeddings import embed_missing

log = logging.getLogger("newsletter.jobs")
PLAN_ATTEMPTS = 3  # a concurrent planner of the same rows makes an attempt fail on the unique key; re-planning skips them


@dataclass
class SourceOutcome:
    """One source of an ingest run: what it stored, or why it failed (and stored nothing)."""

    source: str
    result: IngestResult | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


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


def expand_sources(names: list[str]) -> list[str]:
    """Configured source names as paths or URLs: "sample" stands for the bundled corpus."""
    return [source for name in names for source in (sample_sources() if name == "sample" else [name])]


def ingest_sources(settings: Settings, sources: list[str], format: str | None = None) -> list[SourceOutcome]:
    """Ingest each source in its own transaction, embedding its new papers (once per paper): a source that
    fails is reported and stores nothing, the others are stored all the same."""
    outcomes = []
    for source in sources:
        try:
            with db.session_scope(settings.sqlalchemy_url) as session:
                result = ingest(session, source, format)
                result.embedded = embed_missing(session, settings)
                outcomes.append(SourceOutcome(source, result))
        except FeedError as error:
            event(log, "source failed", logging.ERROR, source=source, error=error.problem)
            outcomes.append(SourceOutcome(source, error=error.problem))
    return outcomes


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


