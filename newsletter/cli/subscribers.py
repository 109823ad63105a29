"""`newsletter subscribers ...`: add, update, list, remove, import and export subscribers."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.table import Table

from newsletter import db
from newsletter.cli.support import console, echo_json, err_console, expected_errors, settings
from newsletter.errors import NewsletterError

SEED_HELP = ('Papers you wrote or liked, to start the profile from: arXiv ids (any version) or titles of stored '
             'papers, comma-separated, e.g. "2401.12345, Attention Is All You Need". Any that names no stored paper '
             'is listed back and nothing is saved.')

app = typer.Typer(help="Add, update, list, remove, import and export subscribers.", no_args_is_help=True)


@app.command("add")
@expected_errors
def subscribers_add(
    email: str,
    interests: str = typer.Option("", help="Free text: what you work on and want to read about."),
    keywords: str = typer.Option("", help='Comma-separated, e.g. "KV cache, MoE".'),
    authors: str = typer.Option("", "--authors", help="Comma-separated authors to follow."),
    exclude: str = typer.Option("", "--exclude", help="Comma-separated keywords that remove a paper."),
    timezone_name: str = typer.Option("UTC", "--timezone", help="IANA time zone, e.g. Europe/Paris."),
    send_hour: int = typer.Option(7, "--send-hour", help="Local hour (0-23) to receive the email."),
    frequency: str = typer.Option("daily", help="daily or weekly."),
    pending: bool = typer.Option(False, "--pending", help="Add as pending (awaiting confirmation) instead of active."),
    seed_papers: str = typer.Option("", "--seed-papers", help=SEED_HELP),
) -> None:
    """Add a subscriber (active: the operator asserts consent, unless --pending). One subscriber per mailbox:
    an address already present in any capitalisation is refused."""
    from newsletter.delivery.smtp import offers_smtputf8
    from newsletter.models import SubscriberStatus
    from newsletter.ranking.seeds import seed_paper_ids
    from subscribers.profiles import add_subscriber, normalize_email

    current = settings()
    address = normalize_email(email, lambda: offers_smtputf8(current))
    with db.session_scope(current.sqlalchemy_url) as session:
        subscriber = add_subscriber(
            session, address, status=SubscriberStatus.pending if pending else SubscriberStatus.active,
            interests=interests, keywords=keywords, followed_authors=authors, excluded_keywords=exclude,
            timezone=timezone_name, send_hour=send_hour, frequency=frequency,
            seed_paper_ids=seed_paper_ids(session, seed_papers))
        console.print(f"added {subscriber.email} ({subscriber.status}){_seeds_said(session, subscriber)}",
                      highlight=False)


@app.command("update")
@expected_errors
def subscribers_update(
    email: str,
    interests: str | None = typer.Option(None, help="Replace the free-text interests."),
    keywords: str | None = typer.Option(None, help='Replace the keywords, comma-separated ("" clears them).'),
    authors: str | None = typer.Option(None, "--authors", help="Replace the followed authors, comma-separated."),
    exclude: str | None = typer.Option(None, "--exclude", help="Replace the excluded keywords, comma-separated."),
    seed_papers: str | None = typer.Option(None, "--seed-papers", help=SEED_HELP + ' Replaces the seed papers '
                                           '("" clears them).'),
) -> None:
    """Change a subscriber's interest profile; options not given stay as they are."""
    from newsletter.ranking.seeds import seed_paper_ids
    from subscribers.profiles import get_subscriber, update_profile

    changes: dict = {"interests": interests, "keywords": keywords, "followed_authors": authors,
                     "excluded_keywords": exclude}
    if all(value is None for value in changes.values()) and seed_papers is None:
        raise NewsletterError("nothing to change: give --interests, --keywords, --authors, --exclude or "
                              "--seed-papers")
    with db.session_scope(settings().sqlalchemy_url) as session:
        if seed_papers is not None:
            changes["seed_paper_ids"] = seed_paper_ids(session, seed_papers)
        subscriber = update_profile(session, get_subscriber(session, email), **changes)
        console.print(f"updated {subscriber.email}: interests {subscriber.interests!r}; "
                      f"keywords {', '.join(subscriber.keywords) or '-'}; "
                      f"authors {', '.join(subscriber.followed_authors) or '-'}; "
                      f"excluded {', '.join(subscriber.excluded_keywords) or '-'}"
                      f"{_seeds_said(session, subscriber)}", highlight=False)


def _seeds_said(session, subscriber) -> str:
    """'; seed papers: "A"; "B"' (empty without seeds): the reader sees what each reference resolved to."""
    from newsletter.ranking.seeds import seed_papers

    papers = seed_papers(session, subscriber.seed_paper_ids)
    return "; seed papers: " + "; ".join(f"\u201c{p.title}\u201d" for p in papers) if papers else ""


@app.command("list")
@expected_errors
def subscribers_list(status: str | None = typer.Option(None, help="Only this status."),
                     as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List subscribers."""
    from subscribers.profiles import list_subscribers
    from subscribers.transfer import listing_row

    with db.session_scope(settings().sqlalchemy_url) as session:
        rows = list_subscribers(session, status)
    if as_json:
        echo_json([listing_row(r) for r in rows])
        return
    table = Table("id", "email", "status", "keywords", "time zone", "hour")
    for r in rows:
        table.add_row(str(r.id), r.email, r.status, ", ".join(r.keywords), r.timezone, str(r.send_hour))
    console.print(table)


@app.command("remove")
@expected_errors
def subscribers_remove(email: str) -> None:
    """Delete a subscriber and their delivery history."""
    from subscribers.profiles import remove_subscriber

    with db.session_scope(settings().sqlalchemy_url) as session:
        remove_subscriber(session, email)
    console.print(f"removed {email}", highlight=False)


@app.command("import")
@expected_errors
def subscribers_import(
    file: Path = typer.Argument(..., help="CSV with a header row, or JSON lines (one object per line)."),
    confirmed: bool = typer.Option(False, "--confirmed", help="I assert these people consented: import them as "
                                   "active (consent recorded as operator-asserted) instead of pending."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and report; store nothing."),
    format: str | None = typer.Option(None, "--format", help="csv or json (default: from the file)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    update: bool = typer.Option(False, "--update", help="Also set the profile fields the file gives (name, "
                                "interests, keywords, authors, exclusions, time zone, send hour, frequency) for "
                                "addresses already present; never their status or consent."),
) -> None:
    """Import subscribers from FILE, validating every row; the valid new ones are stored in one transaction.

    Columns (only email is required): email, name, status, interests, keywords, followed_authors,
    excluded_keywords, timezone, send_hour, frequency, paused, consent, created_at, confirmed_at, unsubscribed_at.
    That is what `subscribers export` writes. Addresses already present are left unchanged (importing again is
    safe) unless --update.
    New subscribers are pending (they must confirm) unless --confirmed.
    A status of pending, unsubscribed, bounced or complained in the file is always kept.
    Each rejected row is listed with its line number and reason, and the exit code is then 1.
    """
    from newsletter.delivery.smtp import offers_smtputf8
    from subscribers.transfer import import_subscribers

    current = settings()
    with db.session_scope(current.sqlalchemy_url) as session:
        report = import_subscribers(session, file, confirmed=confirmed, dry_run=dry_run, format=format,
                                    update=update, smtputf8=lambda: offers_smtputf8(current))
    if not dry_run and (report.imported_total or report.updated):
        from newsletter.ranking import prepare_profiles

        with db.session_scope(current.sqlalchemy_url) as session:  # the one-off encoding, never at planning time
            prepare_profiles(session, current)
    if as_json:
        echo_json(report.as_dict())
    else:
        _print_import(report)
    if report.rejected:
        raise NewsletterError(f"{len(report.rejected)} of {report.rows} rows rejected (listed above); "
                              f"the {report.imported_total} valid new rows were "
                              f"{'checked' if dry_run else 'imported'}")


def _print_import(report) -> None:
    if report.rejected:
        table = Table("line", "email", "reason", title="rejected rows")
        for row in report.rejected:
            table.add_row(str(row.line), row.email, row.reason)
        console.print(table)
    by_status = ", ".join(f"{n} {status}" for status, n in sorted(report.imported.items())) or "0"
    verb = "would import" if report.dry_run else "imported"
    updated = ""
    if report.updated:
        updated = f" ({len(report.updated)} profiles {'to update' if report.dry_run else 'updated'})"
    console.print(f"{report.rows} rows: {verb} {by_status}; {len(report.already_present)} already present{updated}; "
                  f"{len(report.rejected)} rejected" + (" (dry run: nothing stored)" if report.dry_run else ""),
                  highlight=False)


@app.command("export")
@expected_errors
def subscribers_export(
    format: str = typer.Option("csv", "--format", help="csv (with a header) or json (JSON lines)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write to FILE instead of standard output."),
    status: str | None = typer.Option(None, "--status", help="Only subscribers with this status."),
) -> None:
    """Export every subscriber with every field `subscribers import` needs to recreate them."""
    from subscribers.transfer import FORMATS, export_rows, write_rows

    if format not in FORMATS:
        raise NewsletterError(f"--format must be one of {', '.join(FORMATS)}, not {format!r}")
    with db.session_scope(settings().sqlalchemy_url) as session:
        rows = export_rows(session, status)
    if out is None:
        write_rows(rows, sys.stdout, format)
        return
    with out.open("w", encoding="utf-8", newline="") as stream:
        write_rows(rows, stream, format)
    err_console.print(f"exported {len(rows)} subscribers to {out}", highlight=False)
