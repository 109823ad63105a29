"""`newsletter editions ...`: list, show, pause, resume and cancel editions."""

from __future__ import annotations

import typer
from rich.table import Table
from sqlmodel import Session, col, select

from newsletter import db, jobs
from newsletter.cli.support import console, echo_json, expected_errors, settings
from newsletter.doctor import require_ready
from newsletter.edition_control import cancel_edition, delivery_counts_of, find_edition, pause_edition
from newsletter.models import Delivery, DeliveryStatus, Edition, Subscriber

app = typer.Typer(help="List editions, see one, and pause, resume or cancel its sending.", no_args_is_help=True)
FAILURES_SHOWN = 20
EDITION_KEY_HELP = "Edition id, or its date (YYYY-MM-DD)."


def _edition_rows(session: Session, editions: list[Edition]) -> list[dict]:
    counts = delivery_counts_of(session, [e.id for e in editions if e.id is not None])
    return [{"id": e.id, "date": e.date.isoformat(), "status": e.status, "created_at": e.created_at.isoformat(),
             "pruned_at": e.pruned_at.isoformat() if e.pruned_at else None,  # details removed (`db prune`)
             "deliveries": counts[e.id]} for e in editions if e.id is not None]


@app.command("list")
@expected_errors
def editions_list(as_json: bool = typer.Option(False, "--json", help="Print JSON."),
                  limit: int = typer.Option(30, "--limit", "-n", min=1, help="The N most recent editions.")) -> None:
    """List the most recent editions with their status and deliveries by status."""
    with db.session_scope(settings().sqlalchemy_url) as session:
        editions = session.exec(select(Edition).order_by(col(Edition.date).desc()).limit(limit)).all()
        rows = _edition_rows(session, list(editions))
    if as_json:
        echo_json(rows)
        return
    statuses = [s.value for s in DeliveryStatus]
    table = Table("id", "date", "status", *statuses)
    for row in rows:
        table.add_row(str(row["id"]), row["date"], row["status"], *(str(row["deliveries"][s]) for s in statuses))
    console.print(table)


@app.command("show")
@expected_errors
def editions_show(edition_key: str = typer.Argument(..., metavar="ID", help=EDITION_KEY_HELP),
                  as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show one edition: status, deliveries by status, and the latest failures with their reasons."""
    with db.session_scope(settings().sqlalchemy_url) as session:
        edition = find_edition(session, edition_key)
        row = _edition_rows(session, [edition])[0]
        failures = session.exec(
            select(Subscriber.email, Delivery.error).join(Subscriber, col(Subscriber.id) == Delivery.subscriber_id)
            .where(col(Delivery.edition_id) == edition.id, col(Delivery.status) == DeliveryStatus.failed)
            .order_by(col(Delivery.id).desc()).limit(FAILURES_SHOWN)).all()
    row["failures"] = [{"email": email, "error": error} for email, error in failures]
    if as_json:
        echo_json(row)
        return
    console.print(f"edition {row['id']} of {row['date']}: {row['status']} (created {row['created_at']})",
                  highlight=False)
    if row["pruned_at"]:
        console.print(f"older than the retention: its deliveries were pruned on {row['pruned_at'][:10]} (the counts "
                      "below are kept; failure reasons are not)", highlight=False)
    table = Table("delivery status", "count")
    for status, count in row["deliveries"].items():
        table.add_row(status, str(count))
    console.print(table)
    if failures:
        failed = Table("failed address", "reason", title=f"latest {len(failures)} failures")
        for email, error in failures:
            failed.add_row(email, error or "")
        console.print(failed)


@app.command("pause")
@expected_errors
def editions_pause(edition_key: str = typer.Argument(..., metavar="ID", help=EDITION_KEY_HELP)) -> None:
    """Pause sending: running senders stop after the message in flight; unsent rows stay pending."""
    with db.session_scope(settings().sqlalchemy_url) as session:
        edition = find_edition(session, edition_key)
        changed = pause_edition(session, edition)
    console.print(f"edition {edition.id} {'paused' if changed else 'was already paused'}", highlight=False)


@app.command("resume")
@expected_errors
def editions_resume(
    edition_key: str = typer.Argument(..., metavar="ID", help=EDITION_KEY_HELP),
    no_send: bool = typer.Option(False, "--no-send", help="Only reopen it; the next `send` or worker sends."),
    via_celery: bool = typer.Option(False, "--via-celery", help="Enqueue the rest for the Celery workers."),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
) -> None:
    """Reopen a paused edition and send the rows still pending (each exactly once), with a progress bar."""
    from newsletter.cli.send import deliver

    current = settings()
    if not no_send:
        require_ready(current, "newsletter editions resume")  # NEWSLETTER_ENV=production, as `send`
    with db.session_scope(current.sqlalchemy_url) as session:
        edition = find_edition(session, edition_key)
        changed = jobs.resume(session, edition)
        session.commit()
        if not as_json:
            console.print(f"edition {edition.id} {'resumed' if changed else 'was not paused'}", highlight=False)
        if no_send:
            if as_json:
                echo_json({"edition_id": edition.id, "resumed": changed, "send": None})
            return
        deliver(session, edition, current, limit=None, only_ids=None, via_celery=via_celery, as_json=as_json,
                header={"edition_id": edition.id, "resumed": changed})


@app.command("cancel")
@expected_errors
def editions_cancel(edition_key: str = typer.Argument(..., metavar="ID", help=EDITION_KEY_HELP)) -> None:
    """Cancel an edition for good: nothing more is sent; its pending rows become skipped."""
    with db.session_scope(settings().sqlalchemy_url) as session:
        edition = find_edition(session, edition_key)
        skipped = cancel_edition(session, edition)
    console.print(f"edition {edition.id} cancelled; {skipped} unsent deliveries skipped", highlight=False)
