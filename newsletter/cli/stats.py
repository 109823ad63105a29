"""`newsletter stats`: what happened, all time or on one day."""

from __future__ import annotations

import typer
from rich.table import Table

from newsletter import db
from newsletter.cli.support import console, echo_json, expected_errors, parse_day, settings
from newsletter.stats import gather_stats


@expected_errors
def stats(day: str | None = typer.Option(None, "--date", help="Only this day (its edition, events and "
                                                                 "ingests), YYYY-MM-DD; default all time."),
          as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Subscribers by status, deliveries by status, bounces, complaints, unsubscribes, papers, most-sent papers."""
    with db.session_scope(settings().sqlalchemy_url) as session:
        figures = gather_stats(session, parse_day(day) if day else None)
    if as_json:
        echo_json(figures)
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
