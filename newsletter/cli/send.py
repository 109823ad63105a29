"""`newsletter send` and `newsletter test-send`: run an edition with a progress bar, or try one email out.

Ctrl-C during a send: the first one lets the message in flight finish and be recorded, then stops; every row not
sent stays `pending`, so running the same command again resumes without sending anyone twice. A second Ctrl-C
aborts at once: the row in flight stays `sending` and the ledger's lease rule (15 minutes) puts it back to
`pending` for a later run, which may then send it a second time with the same Message-ID if the server had
already accepted it.
"""

from __future__ import annotations

import signal
import threading
from dataclasses import asdict
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text
from sqlmodel import Session, col, select

from newsletter import db, jobs
from newsletter.cli.support import console, echo_json, err_console, expected_errors, parse_day, settings
from newsletter.clock import utcnow
from newsletter.config import Settings
from newsletter.delivery import ledger
from newsletter.delivery.send import SendReport
from newsletter.doctor import require_ready
from newsletter.errors import InvalidInput, NewsletterError
from newsletter.models import Delivery, DeliveryStatus, Edition, Subscriber, SubscriberStatus

EXIT_INTERRUPTED = 130  # the shell's convention for "stopped by SIGINT"
DRY_RUN_ROWS_SHOWN = 50


class StopOnCtrlC:
    """First Ctrl-C asks the send loop to stop after the message in flight; a second one aborts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None  # the SIGINT handler to put back

    def __enter__(self) -> StopOnCtrlC:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def is_set(self) -> bool:
        return self.requested


class RateColumn(ProgressColumn):
    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f}/s" if speed else "-/s", style="progress.data.speed")


def send_with_progress(session: Session, edition: Edition, settings: Settings, *, limit: int | None = None,
                       delivery_ids: list[int] | None = None) -> SendReport:
    """jobs.send with a Rich progress bar (sent / failed / skipped / deferred, rate, ETA) and Ctrl-C handling."""
    assert edition.id is not None
    total = len(delivery_ids) if delivery_ids is not None else len(ledger.pending_ids(session, edition.id, limit=limit))
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(bar_width=20), MofNCompleteColumn(),
        TextColumn("sent {task.fields[sent]} failed {task.fields[failed]} skipped {task.fields[skipped]}"
                   " deferred {task.fields[deferred]}"),
        RateColumn(), TimeRemainingColumn(), console=err_console)
    with StopOnCtrlC() as stop, progress:  # log lines are printed above the bar (see newsletter.log)
        task = progress.add_task(f"edition {edition.id}", total=total, sent=0, failed=0, skipped=0, deferred=0)

        def update(report: SendReport) -> None:
            progress.update(task, completed=report.handled, sent=report.sent, failed=report.failed,
                            skipped=report.skipped, deferred=report.deferred,
                            description="stopping after this message" if stop.is_set() else f"edition {edition.id}")

        return jobs.send(session, edition, settings, limit=limit, delivery_ids=delivery_ids, on_progress=update,
                         should_stop=stop.is_set)


def deliver(session: Session, edition: Edition, settings: Settings, *, limit: int | None, only_ids: list[int] | None,
            via_celery: bool, as_json: bool, header: dict | None = None) -> None:
    """Send (or enqueue) the edition's pending rows, print the outcome, and exit with the right code.

    `header`: what the caller did before (e.g. {"plan": ...}), printed first in the JSON outcome.
    """
    header = header or {}
    assert edition.id is not None
    delivery_ids = None  # None: the send picks every pending row itself, as it goes
    if only_ids is not None or via_celery:
        delivery_ids = ledger.pending_ids(session, edition.id, limit=limit, subscriber_ids=only_ids)
    if via_celery:
        from newsletter.dispatch import mark_queued
        from tasks.enqueue import enqueue_send

        assert delivery_ids is not None
        task_ids = enqueue_send(settings, edition.id, delivery_ids)
        mark_queued(session, delivery_ids, utcnow())  # so the send tick does not hand them out again
        session.commit()
        _print({**header, "edition_id": edition.id, "enqueued": len(delivery_ids), "tasks": task_ids}, as_json,
               f"edition {edition.id}: {len(delivery_ids)} deliveries enqueued in {len(task_ids)} send_batch tasks")
        return
    nothing_to_send = delivery_ids is not None and not delivery_ids
    report = None if nothing_to_send else send_with_progress(session, edition, settings, limit=limit,
                                                              delivery_ids=delivery_ids)
    _report_send(edition, report, header, as_json)


def _report_send(edition: Edition, report: SendReport | None, header: dict, as_json: bool) -> None:
    if report is None:
        _print({**header, "send": None}, as_json, f"edition {edition.id}: nothing to send")
        return
    plan = header.get("plan")
    planned = f"planned {plan['planned']} new, " if plan else ""
    _print({**header, "send": asdict(report)}, as_json,
           f"edition {edition.id}: {planned}sent {report.sent}, failed {report.failed}, deferred {report.deferred}, "
           f"skipped {report.skipped}")
    for line in report.errors[:20]:
        err_console.print(f"  {line}", highlight=False)
    if report.stopped == "interrupted":
        err_console.print(f"interrupted after {report.handled} messages: the rows not sent stay pending; "
                          "run the same command again to resume", highlight=False)
        raise typer.Exit(EXIT_INTERRUPTED)
    if report.stopped.startswith("edition "):
        err_console.print(f"stopped: {report.stopped} (newsletter editions resume {edition.id} continues it)",
                          highlight=False)
    elif report.stopped:
        raise NewsletterError(f"stopped after {report.stopped}; the rest stays pending for the next run")


def _print(data: dict, as_json: bool, line: str) -> None:
    if as_json:
        echo_json(data)
    else:
        console.print(line, highlight=False)


def _only_ids(session: Session, emails: list[str]) -> list[int] | None:
    from subscribers.profiles import get_subscriber

    if not emails:
        return None
    subscribers = [get_subscriber(session, email) for email in emails]
    for subscriber in subscribers:
        if subscriber.status != SubscriberStatus.active:
            raise InvalidInput(f"{subscriber.email} is {subscriber.status}: only active subscribers get editions")
        if subscriber.paused:
            raise InvalidInput(f"{subscriber.email} has paused their emails: paused subscribers get no edition")
    return [s.id for s in subscribers]


@expected_errors
def send(
    day: str | None = typer.Option(None, "--date", help="Edition date, YYYY-MM-DD (default today)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Plan and print who would get what; send and store nothing."),
    only: list[str] | None = typer.Option(None, "--only", help="Only this subscriber (repeatable)."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Send at most N messages this run."),
    via_celery: bool = typer.Option(False, "--via-celery", help="Plan here, then enqueue send_batch tasks for the "
                                                                "Celery workers instead of sending in-process."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan and the outcome as JSON."),
) -> None:
    """Plan the edition for --date and send it to every active subscriber not yet sent, with a progress bar.

    Ctrl-C stops after the message in flight; run the same command again to resume (nobody gets it twice).
    Exit code 130 after an interruption, 1 on an error.
    """
    current = settings()
    the_day = parse_day(day)
    if dry_run:
        with db.throwaway_session(current.sqlalchemy_url) as session:
            _dry_run(session, the_day, current, _only_ids(session, only or []), as_json)
        return
    require_ready(current, "newsletter send")  # NEWSLETTER_ENV=production: not while doctor reports an error
    with db.session_scope(current.sqlalchemy_url) as session:
        only_ids = _only_ids(session, only or [])
        edition = jobs.open_edition(session, the_day)
        plan = asdict(jobs.plan(session, the_day, current, only=only_ids))
        deliver(session, edition, current, limit=limit, only_ids=only_ids, via_celery=via_celery, as_json=as_json,
                header={"plan": plan})


def _dry_run(session: Session, the_day, settings: Settings, only_ids: list[int] | None, as_json: bool) -> None:
    """Plan in a throwaway session: the printout is exactly what a real run would plan, and nothing is kept."""
    from newsletter.compose import delivery_picks
    from newsletter.editions import plan_edition

    plan = plan_edition(session, the_day, settings, only=only_ids)  # a closed edition refuses, as a real send would
    edition = session.get_one(Edition, plan.edition_id)
    query = (select(Delivery, Subscriber).join(Subscriber, col(Subscriber.id) == Delivery.subscriber_id)
             .where(col(Delivery.edition_id) == plan.edition_id).order_by(col(Delivery.id)))
    if only_ids is not None:
        query = query.where(col(Delivery.subscriber_id).in_(only_ids))
    rows: list[dict[str, Any]] = []
    for delivery, subscriber in session.exec(query).all():
        picks = delivery_picks(session, delivery.id)
        rows.append({"email": subscriber.email, "status": delivery.status, "papers": len(picks),
                     "top_paper": picks[0].paper.title if picks else None, "note": delivery.error})
    status = edition.status
    would_send = sum(1 for row in rows if row["status"] == DeliveryStatus.pending)
    if as_json:
        echo_json({"date": the_day.isoformat(), "edition_status": status, "would_send": would_send, "rows": rows})
        return
    table = Table("subscriber", "delivery", "papers", "top paper", title=f"dry run: edition of {the_day}")
    for row in rows[:DRY_RUN_ROWS_SHOWN]:
        label = "would send" if row["status"] == DeliveryStatus.pending else row["status"]
        table.add_row(row["email"], label, str(row["papers"]), row["top_paper"] or (row["note"] or "-"))
    console.print(table)
    if len(rows) > DRY_RUN_ROWS_SHOWN:
        console.print(f"... and {len(rows) - DRY_RUN_ROWS_SHOWN} more (--json lists all)")
    console.print(f"dry run: would send {would_send} of {len(rows)}; nothing was sent or stored", highlight=False)


@expected_errors
def test_send(
    to: str = typer.Argument(..., help="The test address that receives the email."),
    as_email: str = typer.Option(..., "--as", help="The subscriber (address or id) whose email to send."),
    day: str | None = typer.Option(None, "--date", help="Edition date, YYYY-MM-DD (default today)."),
) -> None:
    """Send the exact email the subscriber --as gets for --date to the address TO, marked as a test.

    The subject starts with "[TEST] " and an X-Newsletter-Test header names the subscriber; no delivery is
    recorded, and the List-Unsubscribe headers are left out so the test copy cannot unsubscribe the subscriber.
    """
    from newsletter.delivery.preview import send_test_email
    from subscribers.profiles import get_subscriber

    current = settings()
    with db.throwaway_session(current.sqlalchemy_url) as session:  # a test send records nothing
        subscriber = get_subscriber(session, as_email)
        message_id = send_test_email(session, subscriber, parse_day(day), to, current)
        as_address = subscriber.email
    console.print(f"test email for {as_address} sent to {to} ({message_id})", highlight=False)
