"""`newsletter db ...`: the database schema (Alembic migrations) and the retention prune."""

from __future__ import annotations

import typer
from rich.table import Table

from newsletter import db, retention
from newsletter.cli.support import console, echo_json, expected_errors, settings

app = typer.Typer(help="Database schema (Alembic migrations) and retention.", no_args_is_help=True)


@app.command("upgrade")
@expected_errors
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations up to REVISION (creates the SQLite file if needed)."""
    url = settings().sqlalchemy_url
    db.upgrade(url, revision=revision)
    console.print(f"database at revision {db.current_revision(url)}")


@app.command("prune")
@expected_errors
def db_prune(dry_run: bool = typer.Option(False, "--dry-run", help="Count what would go; change nothing."),
             as_json: bool = typer.Option(False, "--json", help="Print the report as JSON.")) -> None:
    """Remove the deliveries and picks of editions older than NEWSLETTER_RETENTION_DAYS (their figures, and
    suppressions, feedback and consent, are kept). Safe while sending: open editions are left alone."""
    report = retention.prune(settings(), dry_run=dry_run)
    if as_json:
        echo_json(report.as_dict())
        return
    if report.cutoff is None:
        console.print("retention is off (NEWSLETTER_RETENTION_DAYS=0): nothing pruned", highlight=False)
        return
    verb = "would remove" if dry_run else "removed"
    span = f" ({report.editions[0]} to {report.editions[-1]})" if report.editions else ""
    console.print(f"retention {report.retention_days} days: editions before {report.cutoff.isoformat()}; "
                  f"{verb} rows of {len(report.editions)} editions{span} in {report.seconds:.2f} s", highlight=False)
    table = Table("table", f"rows {verb}")
    for name, count in report.removed.items():
        table.add_row(name, str(count))
    console.print(table)
    if report.kept_deliveries:
        console.print(f"kept {report.kept_deliveries} sent deliveries whose papers were ingested or published since "
                      f"{report.protected_since:%Y-%m-%d} (still candidates of a kept edition)", highlight=False)
    if report.kept_open:
        console.print(f"left {len(report.kept_open)} editions that are still open (planned, sending or paused): "
                      f"{', '.join(report.kept_open)}", highlight=False)
