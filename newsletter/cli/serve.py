"""`newsletter serve` (the web app under uvicorn) and `newsletter demo` (the daily pipeline on the embedded
default, no servers needed)."""

from __future__ import annotations

import time

import typer
from rich.table import Table

from newsletter.cli.support import console, expected_errors, parse_day, settings


def serve(host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
          port: int = typer.Option(8000, help="Port to listen on.")) -> None:
    """Run the web app (subscribe, preferences, unsubscribe, archive, admin) with uvicorn.

    Forwarded headers (X-Forwarded-For, X-Forwarded-Proto) are believed only from NEWSLETTER_TRUSTED_PROXIES
    (the app applies them itself); uvicorn's own default, trusting them from 127.0.0.1, is off, so a client on
    loopback cannot choose the address its per-IP limits count against."""
    import uvicorn

    uvicorn.run("newsletter.web.app:create_app", factory=True, host=host, port=port, proxy_headers=False)


@expected_errors
def demo(day: str | None = typer.Option(None, "--date", help="Edition date, YYYY-MM-DD (default today).")) -> None:
    """Run the whole daily pipeline on the embedded default: sample papers, sample subscribers, local SMTP sink."""
    from newsletter.demo import run_demo, summary_rows

    started = time.perf_counter()
    current = settings()
    report = run_demo(current, parse_day(day))
    stored = sum(r.result.new for r in report.ingested if r.result)
    entries = sum(r.result.seen for r in report.ingested if r.result)
    console.print(f"ingested {entries} entries from {len(report.ingested)} sample files: {stored} new papers")
    table = Table("subscriber", "status", "top paper today", title=f"edition {report.daily.plan.edition_id}")
    for row in summary_rows(current, report.daily.plan.edition_id):
        table.add_row(*row)
    console.print(table)
    s = report.daily.send
    console.print(f"emails sent: {s.sent} (failed {s.failed}, deferred {s.deferred}, skipped {s.skipped}); "
                  f"saved in {report.outbox.resolve()}")
    console.print(f"done in {time.perf_counter() - started:.1f} s")
