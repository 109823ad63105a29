"""`newsletter subscribers import FILE` and `newsletter subscribers export`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from newsletter import db
from newsletter.cli_support import console, err_console, expected_errors
from newsletter.errors import NewsletterError


@expected_errors
def subscribers_import(
    file: Path = typer.Argument(..., help="CSV with a header row, or JSON lines (one object per line)."),
    confirmed: bool = typer.Option(False, "--confirmed", help="I assert these people consented: import them as "
                                   "active (consent recorded as operator-asserted) instead of pending."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and report; store nothing."),
    format: Optional[str] = typer.Option(None, "--format", help="csv or json (default: from the file)."),
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
    from subscribers.transfer import import_subscribers

    with db.session_scope() as session:
        report = import_subscribers(session, file, confirmed=confirmed, dry_run=dry_run, format=format,
                                    update=update)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
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
    updated = f" ({len(report.updated)} profiles {'to update' if report.dry_run else 'updated'})" if report.updated else ""
    console.print(f"{report.rows} rows: {verb} {by_status}; {len(report.already_present)} already present{updated}; "
                  f"{len(report.rejected)} rejected" + (" (dry run: nothing stored)" if report.dry_run else ""),
                  highlight=False)


@expected_errors
def subscribers_export(
    format: str = typer.Option("csv", "--format", help="csv (with a header) or json (JSON lines)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write to FILE instead of standard output."),
    status: Optional[str] = typer.Option(None, "--status", help="Only subscribers with this status."),
) -> None:
    """Export every subscriber with every field `subscribers import` needs to recreate them."""
    from subscribers.transfer import FORMATS, export_rows, write_rows

    if format not in FORMATS:
        raise NewsletterError(f"--format must be one of {', '.join(FORMATS)}, not {format!r}")
    with db.session_scope() as session:
        rows = export_rows(session, status)
    if out is None:
        write_rows(rows, sys.stdout, format)
        return
    with out.open("w", encoding="utf-8", newline="") as stream:
        write_rows(rows, stream, format)
    err_console.print(f"exported {len(rows)} subscribers to {out}", highlight=False)
