"""`newsletter ingest`: read papers from files, URLs or shortcuts (hf:daily, arxiv:..., sample) into the database."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from newsletter import jobs
from newsletter.cli.support import console, err_console, expected_errors, parse_day, settings
from newsletter.errors import NewsletterError
from newsletter.ingest import is_shortcut


@expected_errors
def ingest(
    sources: list[str] = typer.Argument(None, help="Paths, http(s) URLs, or shortcuts: hf:daily, "
                                                   "arxiv:cs.LG,cs.CL (that day's submissions), sample."),
    format: str | None = typer.Option(None, "--format", "-f", help="hf-json, arxiv-atom or listing (default: detect)."),
    sample: bool = typer.Option(False, "--sample", help="Ingest the bundled sample corpus."),
    day: str | None = typer.Option(None, "--date", help="Edition date, YYYY-MM-DD (default today); shortcuts "
                                      "read the lists of the day before."),
) -> None:
    """Ingest papers from each SOURCE (Hugging Face daily-papers JSON, arXiv Atom, or listing text), each in its
    own transaction: a source that fails is reported and the others are stored. Exit code 1 if any failed."""
    chosen = list(sources or []) + (["sample"] if sample else [])
    if not chosen:
        raise NewsletterError("give at least one SOURCE, or --sample")
    reports = jobs.ingest_sources(settings(), chosen, day=parse_day(day), format=format)
    table = Table("source", "status", "entries", "new", "updated", "duplicates", "embedded")
    for report in reports:
        counts = report.as_dict()
        name = report.source if is_shortcut(report.source) or "://" in report.source else Path(report.location).name
        table.add_row(escape(name), "ok" if report.ok else "[red]failed[/red]",
                      *(str(counts[k]) for k in ("entries", "new", "updated", "duplicates", "embedded")))
    console.print(table)
    failed = [r for r in reports if not r.ok]
    for report in failed:  # one line each, never wrapped into the table
        err_console.print(f"[red]error:[/red] {escape(f'{report.location}: {report.reason}')}", highlight=False,
                          soft_wrap=True)
    if failed:
        raise typer.Exit(1)
