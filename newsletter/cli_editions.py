"""`newsletter editions ...` (list, show, pause, resume, cancel) and `newsletter stats`."""

from __future__ import annotations

import json
from typing import Optional

import typer
from rich.table import Table
from sqlmodel import select

from newsletter import db
from newsletter.cli_support import console, expected_errors, parse_day
from newsletter.config import get_settings
from newsletter.models import Delivery, DeliveryStatus, Edition, Subscriber

editions_app = typer.Typer(help="List editions, see one, and pause, resume or cancel its sending.",
                           no_args_is_help=True)
FAILURES_SHOWN = 20
EDITION_KEY_HELP = "Edition id, or its date (YYYY-MM-DD)."


def _edition_row(session, edition: Edition) -> dict:
    from newsletter.edition_control import delivery_counts

    return {"id": edition.id, "date": edition.date.isoformat(), "status": edition.status,
            "created_at": edition.created_at.isoformat(), "deliveries": delivery_counts(session, edition.id)}


def _echo_json(data) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


@editions_app.command("list")
@expected_errors
def editions_list(as_json: bool = typer.Option(False, "--json", help="Print JSON."),
                  limit: int = typer.Option(30, "--limit", "-n", min=1, help="The N most recent editions.")) -> None:
    """List the most recent editions with their status and deliveries by status."""
    with db.session_scope() as session:
        editions = session.exec(select(Edition).order_by(Edition.date.desc()).limit(limit)).all()
        rows = [_edition_row(session, edition) for edition in editions]
    if as_json:
        _echo_json(rows)
        return
    statuses = [s.value for s in DeliveryStatus]
    table = Table("id", "date", "status", *statuses)
    for row in rows:
        table.add_row(str(row["id"]), row["date"], row["status"], *(str(row["deliveries"][s]) for s in statuses))
    console.print(table)


@editions_app.command("show")
@expected_errors
def editions_show(edition_key: str = typer.Argument(..., metavar="ID", help=EDITION_KEY_HELP),
                  as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show one edition: status, deliveries by status, and the latest failures with their reasons."""
    from newsletter.edition_control import find_edition

    with db.session_scope() as session:
        edition = find_edition(session, edition_key)
        row = _edition_row(session, edition)
        failures = session.exec(
            select(Subscriber.email, Delivery.error).join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Delivery.edition_id == edition.id, Delivery.status == DeliveryStatus.failed)
            .order_by(Delivery.id.desc()).limit(FAILURES_SHOWN)).all()
    row["failures"] = [{"email": email, "error": error} for email, error in failures]
    if as_json:
        _echo_json(row)
        return
    console.print(f"edition {row['id']} of {row['date']}: {row['status']} (created {row['created_at']})",
                  highlight=False)
    table = Table("delivery status", "count")
    for status, count in row["deliveries"].items():
        table.add_row(status, str(count))
    console.print(table)
    if failures:
        failed = Table("failed address", "reason", title=f"latest {len(failures)} failures")
        for email, error in failures:
            failed.add_row(email, error or "")
        console.print(failed)


@editions_app.command("pause")
@expected_errors
def editions_pause(edition_key: str = typer.Argument(..., metavar="ID", help=EDITION_KEY_HELP)) -> None:
    """Pause sending: running senders stop after the message in flight; unsent rows stay pending."""
    from newsletter.edition_control import find_edition, pause_edition

    with db.session_scope() as session:
        edition = find_edition(session, edition_key)
        changed = pause_edition(session, edition)
    console.print(f"edition {edition.id} {'paused' if changed else 'was already paused'}", highlight=False)


@editions_app.command("resume")
@expected_errors
def editions_resume(
    edition_key: str = typer.Argument(..., metavar="ID", help=EDITION_KEY_HELP),
    no_send: bool = typer.Option(False, "--no-send", help="Only reopen it; the next `send` or worker sends."),
    via_celery: bool = typer.Option(False, "--via-celery", help="Enqueue the rest for the Celery workers."),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
) -> None:
    """Reopen a paused edition and send the rows still pending (each exactly once), with a progress bar."""
    from newsletter.cli_send import deliver
    from newsletter.edition_control import find_edition, resume_edition

    with db.session_scope() as session:
        edition = find_edition(session, edition_key)
        changed = resume_edition(session, edition)
        session.commit()
        if not as_json:
            console.print(f"edition {edition.id} {'resumed' if changed else 'was not paused'}", highlight=False)
        if not no_send:
            deliver(session, edition, get_settings(), limit=None, only_ids=None, via_celery=via_celery,
                    as_json=as_json)


@editions_app.command("cancel")
@expected_errors
def editions_cancel(edition_key: str = typer.Argument(..., metavar="ID", help=EDITION_KEY_HELP)) -> None:
    """Cancel an edition for good: nothing more is sent; its pending rows become skipped."""
    from newsletter.edition_control import cancel_edition, find_edition

    with db.session_scope() as session:
        edition = find_edition(session, edition_key)
        skipped = cancel_edition(session, edition)
    console.print(f"edition {edition.id} cancelled; {skipped} unsent deliveries skipped", highlight=False)


@expected_errors
def stats(day: Optional[str] = typer.Option(None, "--date", help="Only this day (its edition, events and "
                                                                 "ingests), YYYY-MM-DD; default all time."),
          as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Subscribers by status, deliveries by status, bounces, complaints, unsubscribes, papers, most-sent papers."""
    from newsletter.stats import gather_stats

    with db.session_scope() as session:
        figures = gather_stats(session, parse_day(day) if day else None)
    if as_json:
        _echo_json(figures)
        return
    scope = f"on {figures['date']}" if figures["date"] else "all time"
    console.print(_counts_table("subscribers (now)", figures["subscribers"]))
    console.print(_counts_table(f"deliveries ({scope})", figures["deliveries"]))
    console.print(_counts_table(f"events ({scope})", {**figures["events"],
                                                      "papers ingested": figures["papers_ingested"]}))
    most = Table("sent", "paper", "title", title=f"most-sent papers ({scope})")
    for paper in figures["most_sent_papers"]:
        most.add_row(str(paper["sent"]), paper["external_id"], paper["title"])
    console.print(most)


def _counts_table(title: str, counts: dict[str, int]) -> Table:
    table = Table("", "count", title=title)
    for name, count in counts.items():
        table.add_row(name.replace("_", " "), str(count))
    return table
