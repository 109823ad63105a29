"""`newsletter ingest`: read papers from files or URLs (or the bundled sample) into the database."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from newsletter import jobs
from newsletter.cli.support import console, err_console, expected_errors, settings
from newsletter.errors import NewsletterError


@expected_errors
def ingest(
    sources: list[str] = typer.Argument(None, help="Paths or http(s) URLs."),
    format: Optional[str] = typer.Option(None, "--format", "-f", help="hf-json, arxiv-atom or listing (default: detect)."),
    sample: bool = typer.Option(False, "--sample", help="Ingest the bundled sample corpus."),
) -> None:
    """Ingest papers from each SOURCE (Hugging Face daily-papers JSON, arXiv Atom, or listing text).

    Each source is stored in its own transaction: one that fails stores nothing and the others go on; the exit
    code is then 1.
    """
    chosen = list(sources or []) + (jobs.expand_sources(["sample"]) if sample else [])
    if not chosen:
        raise NewsletterError("give at least one SOURCE, or --sample")
    outcomes = jobs.ingest_sources(settings(), chosen, format)
    table = Table("source", "entries", "new", "updated", "duplicates", "embedded")
    for outcome in outcomes:
        name = Path(outcome.source).name if "://" not in outcome.source else outcome.source
        if outcome.result is None:
            table.add_row(name, "failed", "-", "-", "-", "-")
            continue
        r = outcome.result
        table.add_row(name, str(r.seen), str(r.new), str(r.updated), str(r.duplicates), str(r.embedded))
    console.print(table)
    failed = [o for o in outcomes if not o.ok]
    for outcome in failed:
        err_console.print(f"[red]error:[/red] {outcome.source}: {outcome.error}", highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(1)
