"""Thin Celery wrappers over newsletter.jobs: plain ids, dates and ISO times in, JSON-ready dicts out.

Every task may run twice (redelivery after a lost worker, a retry, a second beat): the delivery ledger decides
what is sent, so a second run sends nothing already sent. Names and signatures (other code enqueues them by name):

- `tasks.tasks.send_tick(now=None)`: the periodic tick (beat, every `NEWSLETTER_SEND_TICK_SECONDS`). Finds the
  subscribers whose local send hour has come (`newsletter.dispatch`), fans out `plan_batch` per chunk of
  `NEWSLETTER_SEND_BATCH_SIZE` subscribers, releases rows whose sender died, and re-queues pending rows no task
  holds. `now` (ISO 8601, naive = UTC) replaces the clock, for tests and replays.
- `tasks.tasks.plan_batch(day, subscriber_ids)`: rank these subscribers for `day`'s edition (ISO date), then
  enqueue `send_batch` for their new deliveries.
- `tasks.tasks.send_batch(edition_id, delivery_ids=None)`: send those pending deliveries (all of the edition's
  when None).
- `tasks.tasks.enqueue_edition(day=None)`: plan everyone for `day` (default: today, UTC) and fan out the sending,
  ignoring send hours (an operator's "send this edition now").
- `tasks.tasks.ingest_sources(day=None)`: ingest `NEWSLETTER_SOURCES` for `day`'s edition (shortcuts such as
  `hf:daily` read that date; default today, UTC), each source in its own transaction: a failed source is logged
  and reported (`ok: false`, `reason`) and the others are stored (beat: `NEWSLETTER_INGEST_SCHEDULE`).
- `tasks.tasks.process_bounces()`: read `NEWSLETTER_BOUNCE_MAILBOX` (bounces, complaints, mailto: unsubscribes);
  beat runs it every `NEWSLETTER_BOUNCE_CHECK_SECONDS` when the mailbox is set. Safe to run again.
- `tasks.tasks.prune(day=None)`: the retention prune (`newsletter.retention.prune`): the deliveries and picks of
  editions older than `NEWSLETTER_RETENTION_DAYS` go, their figures stay as tallies (beat:
  `NEWSLETTER_PRUNE_SCHEDULE`, when the retention is not 0). `day` (ISO date) stands for today. Safe to run
  again, and while sending.
- `tasks.tasks.plan(day=None)`, `tasks.tasks.daily(day=None)`: plan everyone / ingest + plan + send in one task.

`send_tick`, `plan_batch` and `send_batch` return `{"stopped": "database unreachable: ..."}` (one log line, no
traceback) when the database goes away under them; their work stays due in the database for the next tick.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import asdict
from datetime import date
from pathlib import Path

from newsletter import db, jobs, retention
from newsletter.batching import chunked
from newsletter.clock import today, utc
from newsletter.config import Settings, get_settings
from newsletter.db import session_scope
from newsletter.delivery import ledger
from newsletter.delivery.send import send_edition
from newsletter.errors import EditionClosed
from newsletter.ingest import split_sources
from newsletter.log import event
from tasks.celery_app import app

log = logging.getLogger("newsletter.tasks")


def _settings() -> Settings:
    """The workers' settings: read from the environment once per process (the edge of the system)."""
    return get_settings()


def _day(value: str | None) -> date:
    return date.fromisoformat(value) if value else today()


def _one_line_when_the_database_is_down(task):
    """The database unreachable (restarting, network gone): the task logs one line and returns `{"stopped":
    reason}` instead of a traceback per task. Nothing is lost: its work is still due in the database and the next
    tick hands it out again (unplanned subscribers are still due; pending rows come back after the lease)."""

    @functools.wraps(task)
    def run(*args, **kwargs):
        try:
            return task(*args, **kwargs)
        except Exception as error:
            reason = db.unreachable(error)
            if reason is None:
                raise
            event(log, "task stopped", logging.ERROR, task=task.__name__, error=reason)
            return {"stopped": reason}

    return run


@app.task
def ingest_sources(day: str | None = None) -> list[dict]:
    """Each source in its own transaction; a failed one is logged and reported, and the next one goes on."""
    settings = _settings()
    reports = jobs.ingest_sources(settings, split_sources(settings.sources), day=_day(day))
    return [report.as_dict() for report in reports]


@app.task
@_one_line_when_the_database_is_down
def send_tick(now: str | None = None) -> dict:
    settings = _settings()
    moment = utc(now)
    found = jobs.tick(settings, moment)
    plans = [plan_batch.delay(day.isoformat(), batch).id
             for day, ids in found.due.items() for batch in chunked(ids, settings.send_batch_size)]
    sends = _fan_out(found.lost, settings.send_batch_size)
    report = {"now": moment.isoformat(), "due": sum(map(len, found.due.values())), "released": found.released,
              "requeued": sum(map(len, found.lost.values())), "plan_batches": plans, "send_batches": sends}
    event(log, "send tick", now=report["now"], due=report["due"], released=found.released,
          requeued=report["requeued"])
    return report


@app.task
@_one_line_when_the_database_is_down
def plan_batch(day: str, subscriber_ids: list[int]) -> dict:
    settings = _settings()
    try:
        planned, ids = jobs.plan_batch(settings, _day(day), subscriber_ids)
    except EditionClosed as closed:  # paused or cancelled by an operator: nothing is planned into it
        event(log, "edition closed: nothing planned", edition=closed.edition_id, reason=str(closed))
        return {"edition_id": closed.edition_id, "closed": str(closed), "send_batches": []}
    return {**asdict(planned), "send_batches": _fan_out({planned.edition_id: ids}, settings.send_batch_size)}


@app.task
@_one_line_when_the_database_is_down
def send_batch(edition_id: int, delivery_ids: list[int] | None = None) -> dict:
    settings = _settings()
    with session_scope(settings.sqlalchemy_url) as session:
        if delivery_ids is not None:  # a batch run again (redelivered, re-queued) is mostly sent: skip those at once
            still_pending = ledger.pending_ids(session, edition_id, among=delivery_ids, due_only=False)
            if not still_pending:
                return {"edition_id": edition_id, "sent": 0, "skipped": len(delivery_ids)}
        return asdict(send_edition(session, edition_id, settings, delivery_ids=delivery_ids))


@app.task
def enqueue_edition(day: str | None = None) -> dict:
    settings = _settings()
    with session_scope(settings.sqlalchemy_url) as session:
        planned = jobs.plan(session, _day(day), settings)
    lost = jobs.take_pending(settings, utc(None))  # this edition's new rows, and any lost
    return {**asdict(planned), "send_batches": _fan_out(lost, settings.send_batch_size)}


@app.task
def process_bounces() -> dict:
    from newsletter.delivery.bounces import process_mailbox

    settings = _settings()
    with session_scope(settings.sqlalchemy_url) as session:
        return asdict(process_mailbox(session, Path(settings.bounce_mailbox), settings))


@app.task
def prune(day: str | None = None) -> dict:
    return retention.prune(_settings(), today=_day(day)).as_dict()


@app.task
def plan(day: str | None = None) -> dict:
    settings = _settings()
    with session_scope(settings.sqlalchemy_url) as session:
        return asdict(jobs.plan(session, _day(day), settings))


@app.task
def daily(day: str | None = None) -> dict:
    ingest_sources(day)
    planned = plan(day)
    return send_batch(planned["edition_id"])


def _fan_out(rows: dict[int, list[int]], size: int) -> list[str]:
    """One send_batch task per chunk of delivery ids; returns the task ids."""
    return [send_batch.delay(edition_id, batch).id for edition_id, ids in rows.items() for batch in chunked(ids, size)]
