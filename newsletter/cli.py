"""The `newsletter` command: a thin layer over the core. Expected errors end with one line and exit code 1."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from newsletter import cli_editions, cli_send, cli_transfer
from newsletter import db
from newsletter.cli_support import console, err_console, expected_errors, parse_day, today  # noqa: F401
from newsletter.config import get_settings
from newsletter.errors import InvalidInput, NewsletterError
from newsletter.log import configure as configure_logging

app = typer.Typer(help="Paper Digest: a personalized research-paper newsletter.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
subscribers_app = typer.Typer(help="Add, update, list, remove, import and export subscribers.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(subscribers_app, name="subscribers")
bounces_app = typer.Typer(help="Returned mail: bounces, complaints and mailto: unsubscribes.", no_args_is_help=True)
app.add_typer(bounces_app, name="bounces")

# Operations commands live in their own modules (send, test-send, editions, stats, subscribers import/export).
app.command("send")(cli_send.send)
app.command("test-send")(cli_send.test_send)
app.add_typer(cli_editions.editions_app, name="editions")
app.command("stats")(cli_editions.stats)
subscribers_app.command("import")(cli_transfer.subscribers_import)
subscribers_app.command("export")(cli_transfer.subscribers_export)


@app.callback()
def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)


@db_app.command("upgrade")
@expected_errors
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations up to REVISION (creates the SQLite file if needed)."""
    db.upgrade(revision=revision)
    console.print(f"database at revision {db.current_revision()}")


@app.command()
@expected_errors
def ingest(
    sources: list[str] = typer.Argument(None, help="Paths, http(s) URLs, or shortcuts: hf:daily, "
                                                   "arxiv:cs.LG,cs.CL (that day's submissions), sample."),
    format: Optional[str] = typer.Option(None, "--format", "-f", help="hf-json, arxiv-atom or listing (default: detect)."),
    sample: bool = typer.Option(False, "--sample", help="Ingest the bundled sample corpus."),
    day: Optional[str] = typer.Option(None, "--date", help="Edition date the shortcuts read, YYYY-MM-DD (default today)."),
) -> None:
    """Ingest papers from each SOURCE (Hugging Face daily-papers JSON, arXiv Atom, or listing text), each in its
    own transaction: a source that fails is reported and the others are stored. Exit code 1 if any failed."""
    from rich.markup import escape

    from newsletter.ingest import ingest_all, is_shortcut

    chosen = list(sources or []) + (["sample"] if sample else [])
    if not chosen:
        raise NewsletterError("give at least one SOURCE, or --sample")
    reports = ingest_all(None, chosen, get_settings(), day=parse_day(day), format=format)
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


@app.command()
@expected_errors
def recommend(
    email: str,
    limit: int = typer.Option(10, "--limit", "-n", min=1, help="How many papers to list."),
    day: Optional[str] = typer.Option(None, "--date", help="Edition date, YYYY-MM-DD (default today)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON: [{id, title, score, reasons}]."),
) -> None:
    """Rank the candidate papers for the subscriber EMAIL, best first, with the reasons."""
    from newsletter.compose import live_picks
    from newsletter.ranking.embeddings import semantic_status
    from subscribers.profiles import get_subscriber

    with db.session_scope() as session:
        picks = live_picks(session, get_subscriber(session, email), parse_day(day), get_settings(), limit)
    if as_json:
        rows = [{"id": r.paper.external_id, "paper_id": r.paper.id, "title": r.paper.title, "score": r.score,
                 "reasons": r.reasons, "url": r.paper.url} for r in picks]
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if semantic_status():  # the operator sees why; --json output stays a clean list
        err_console.print(f"note: {semantic_status()}", highlight=False)
    table = Table("#", "score", "title", "why")
    for rank, r in enumerate(picks, start=1):
        table.add_row(str(rank), f"{r.score:.3f}", r.paper.title, "; ".join(r.reasons))
    console.print(table)


@app.command()
@expected_errors
def preview(
    email: str,
    day: Optional[str] = typer.Option(None, "--date", help="Edition date, YYYY-MM-DD (default today)."),
    text: bool = typer.Option(False, "--text", help="Write the plain-text part instead of the HTML."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write to FILE (.eml writes the whole message)."),
) -> None:
    """Write the exact email the subscriber EMAIL gets for --date: its HTML part, its plain-text part (--text),
    or with --out FILE.eml the whole message as it would be sent."""
    from newsletter.compose import preview_email
    from subscribers.profiles import get_subscriber

    with db.session_scope() as session:
        rendered, message = preview_email(session, get_subscriber(session, email), parse_day(day), get_settings())
    part = rendered.text if text else rendered.html
    if out and out.suffix == ".eml":
        out.write_bytes(message)
    elif out:
        out.write_bytes(part.encode("utf-8"))  # byte for byte the part as sent (CRLF line endings)
    else:
        typer.echo(part.replace("\r\n", "\n"), nl=False)


@app.command()
def serve(host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
          port: int = typer.Option(8000, help="Port to listen on.")) -> None:
    """Run the web app (subscribe, preferences, unsubscribe, archive, admin) with uvicorn."""
    import uvicorn

    uvicorn.run("newsletter.web.app:app", host=host, port=port, proxy_headers=True)


@app.command()
@expected_errors
def demo(day: Optional[str] = typer.Option(None, "--date", help="Edition date, YYYY-MM-DD (default today).")) -> None:
    """Run the whole daily pipeline on the embedded default: sample papers, sample subscribers, local SMTP sink."""
    from newsletter.demo import run_demo
    from newsletter.models import Subscriber
    from newsletter.compose import delivery_picks
    from newsletter.models import Delivery

    started = time.perf_counter()
    settings = get_settings()
    report = run_demo(settings, parse_day(day))
    ingested = sum(r.new for r in report.ingested)
    entries = sum(r.seen for r in report.ingested)
    console.print(f"ingested {entries} entries from {len(report.ingested)} sample files: {ingested} new papers")
    table = Table("subscriber", "status", "top paper today", title=f"edition {report.daily.plan.edition_id}")
    with db.session_scope() as session:
        for subscriber in session.query(Subscriber).order_by(Subscriber.id):
            delivery = session.query(Delivery).filter_by(edition_id=report.daily.plan.edition_id,
                                                         subscriber_id=subscriber.id).first()
            picks = delivery_picks(session, delivery.id) if delivery else []
            table.add_row(subscriber.email, delivery.status if delivery else subscriber.status,
                          picks[0].paper.title if picks else "-")
    console.print(table)
    s = report.daily.send
    console.print(f"emails sent: {s.sent} (failed {s.failed}, deferred {s.deferred}, skipped {s.skipped}); "
                  f"saved in {report.outbox.resolve()}")
    console.print(f"done in {time.perf_counter() - started:.1f} s")


@subscribers_app.command("add")
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
) -> None:
    """Add a subscriber (active: the operator asserts consent, unless --pending)."""
    from newsletter.models import SubscriberStatus
    from subscribers.profiles import add_subscriber

    with db.session_scope() as session:
        subscriber = add_subscriber(
            session, email, status=SubscriberStatus.pending if pending else SubscriberStatus.active,
            interests=interests, keywords=keywords, followed_authors=authors, excluded_keywords=exclude,
            timezone=timezone_name, send_hour=send_hour, frequency=frequency)
        console.print(f"added {subscriber.email} ({subscriber.status})", highlight=False)


@subscribers_app.command("list")
@expected_errors
def subscribers_list(status: Optional[str] = typer.Option(None, help="Only this status."),
                     as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List subscribers."""
    from subscribers.profiles import list_subscribers

    with db.session_scope() as session:
        rows = list_subscribers(session, status)
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in rows], ensure_ascii=False, indent=2))
        return
    table = Table("id", "email", "status", "keywords", "time zone", "hour")
    for r in rows:
        table.add_row(str(r.id), r.email, r.status, ", ".join(r.keywords), r.timezone, str(r.send_hour))
    console.print(table)


@subscribers_app.command("remove")
@expected_errors
def subscribers_remove(email: str) -> None:
    """Delete a subscriber and their delivery history."""
    from subscribers.profiles import remove_subscriber

    with db.session_scope() as session:
        remove_subscriber(session, email)
    console.print(f"removed {email}", highlight=False)


@bounces_app.command("process")
@expected_errors
def bounces_process(path: Path = typer.Argument(..., help="A Maildir folder or an mbox file of returned mail.")) -> None:
    """Read DSN bounces, ARF complaints and mailto: unsubscribes from PATH; suppress addresses accordingly.

    Safe to run again on the same mailbox: messages already handled are recognised and skipped.
    """
    from newsletter.delivery.bounces import process_mailbox

    with db.session_scope() as session:
        report = process_mailbox(session, path, get_settings())
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


@subscribers_app.command("update")
@expected_errors
def subscribers_update(
    email: str,
    interests: Optional[str] = typer.Option(None, help="Replace the free-text interests."),
    keywords: Optional[str] = typer.Option(None, help='Replace the keywords, comma-separated ("" clears them).'),
    authors: Optional[str] = typer.Option(None, "--authors", help="Replace the followed authors, comma-separated."),
    exclude: Optional[str] = typer.Option(None, "--exclude", help="Replace the excluded keywords, comma-separated."),
) -> None:
    """Change a subscriber's interest profile; options not given stay as they are."""
    from subscribers.profiles import get_subscriber, update_profile

    changes = {"interests": interests, "keywords": keywords, "followed_authors": authors,
               "excluded_keywords": exclude}
    if all(value is None for value in changes.values()):
        raise NewsletterError("nothing to change: give --interests, --keywords, --authors or --exclude")
    with db.session_scope() as session:
        subscriber = update_profile(session, get_subscriber(session, email), **changes)
        console.print(f"updated {subscriber.email}: interests {subscriber.interests!r}; keywords "
                      f"{', '.join(subscriber.keywords) or '-'}; authors {', '.join(subscriber.followed_authors) or '-'};"
                      f" excluded {', '.join(subscriber.excluded_keywords) or '-'}", highlight=False)


@app.command()
@expected_errors
def feedback(
    email: str,
    paper: str = typer.Argument(..., help="Paper: its number (paper_id in `recommend --json`) or its id (arXiv id)."),
    kind: str = typer.Argument(..., help='"more" (save: more like this), "less" (less like this), or "forget" '
                                        "(undo the judgement, as the preferences page does)."),
) -> None:
    """Record a subscriber's judgement of a paper, as the links in the email do; the next ranking learns from it."""
    from newsletter.ranking.feedback import KINDS, find_paper, forget_feedback, record_feedback
    from subscribers.profiles import get_subscriber

    if kind not in (*KINDS, "forget"):
        raise InvalidInput(f"feedback must be one of {', '.join(KINDS)}, forget, not {kind!r}")
    with db.session_scope() as session:
        subscriber = get_subscriber(session, email)
        found = find_paper(session, paper)
        if kind == "forget":
            undone = forget_feedback(session, subscriber, found.id)
            console.print(f"{subscriber.email}: {'forgot' if undone else 'had not judged'} {found.title!r}",
                          highlight=False)
            return
        record_feedback(session, subscriber, found.id, kind)
        console.print(f"{subscriber.email}: {kind} like {found.title!r}", highlight=False)
