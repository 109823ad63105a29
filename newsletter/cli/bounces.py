"""`newsletter bounces ...`: returned mail (bounces, complaints and mailto: unsubscribes)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from newsletter import db
from newsletter.cli.support import console, err_console, expected_errors, settings

app = typer.Typer(help="Returned mail: bounces, complaints and mailto: unsubscribes.", no_args_is_help=True)


@app.command("process")
@expected_errors
def bounces_process(
    path: Path = typer.Argument(..., help="A Maildir folder or an mbox file of returned mail."),
) -> None:
    """Read DSN bounces, ARF complaints and mailto: unsubscribes from PATH; suppress addresses accordingly.

    Safe to run again on the same mailbox: messages already handled are recognised and skipped.
    """
    from newsletter.delivery.bounces import process_mailbox

    current = settings()
    with db.session_scope(current.sqlalchemy_url) as session:
        report = process_mailbox(session, path, current)
    table = Table("returned mail", "count")
    for label, value in (("messages read", report.messages), ("hard bounces", report.hard_bounces),
                         ("soft bounces", report.soft_bounces), ("complaints", report.complaints),
                         ("unsubscribes", report.unsubscribes), ("addresses newly suppressed", report.suppressed),
                         ("ignored (warnings, other mail)", report.ignored), ("unmatched", report.unmatched),
                         ("already processed", report.already_processed)):
        table.add_row(label, str(value))
    console.print(table)
    for line in report.problems[:20]:
        err_console.print(f"  {line}", highlight=False)
