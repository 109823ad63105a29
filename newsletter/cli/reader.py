"""Commands that show or act as one reader: `recommend`, `preview` and `feedback`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from newsletter import db
from newsletter.cli.support import console, echo_json, err_console, expected_errors, parse_day, settings
from newsletter.errors import InvalidInput


@expected_errors
def recommend(
    email: str,
    limit: int = typer.Option(10, "--limit", "-n", min=1, help="How many papers to list."),
    day: str | None = typer.Option(None, "--date", help="Edition date, YYYY-MM-DD (default today)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON: [{id, paper_id, title, score, reasons, url}]."),
) -> None:
    """Rank the candidate papers for the subscriber EMAIL, best first, with the reasons."""
    from newsletter.ranking import recommend as rank_for
    from newsletter.ranking.embeddings import semantic_status
    from subscribers.profiles import get_subscriber

    current = settings()
    with db.session_scope(current.sqlalchemy_url) as session:
        picks = rank_for(session, get_subscriber(session, email), parse_day(day), current, limit)
    if as_json:
        echo_json([{"id": r.paper.external_id, "paper_id": r.paper.id, "title": r.paper.title, "score": r.score,
                    "reasons": r.reasons, "url": r.paper.url} for r in picks])
        return
    status = semantic_status(current)
    if status:  # the operator sees why; --json output stays a clean list
        err_console.print(f"note: {status}", highlight=False)
    table = Table("#", "score", "title", "why")
    for rank, r in enumerate(picks, start=1):
        table.add_row(str(rank), f"{r.score:.3f}", r.paper.title, "; ".join(r.reasons))
    console.print(table)


@expected_errors
def preview(
    email: str,
    day: str | None = typer.Option(None, "--date", help="Edition date, YYYY-MM-DD (default today)."),
    text: bool = typer.Option(False, "--text", help="Write the plain-text part instead of the HTML."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write to FILE (.eml writes the whole message)."),
) -> None:
    """Write the exact email the subscriber EMAIL gets for --date: its HTML part, its plain-text part (--text),
    or with --out FILE.eml the whole message as it would be sent."""
    from newsletter.delivery.preview import preview_email
    from subscribers.profiles import get_subscriber

    current = settings()
    with db.session_scope(current.sqlalchemy_url) as session:
        rendered, message = preview_email(session, get_subscriber(session, email), parse_day(day), current)
    part = rendered.text if text else rendered.html
    if out and out.suffix == ".eml":
        out.write_bytes(message)
    elif out:
        out.write_bytes(part.encode("utf-8"))  # byte for byte the part as sent (CRLF line endings)
    else:
        typer.echo(part.replace("\r\n", "\n"), nl=False)


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
    with db.session_scope(settings().sqlalchemy_url) as session:
        subscriber = get_subscriber(session, email)
        found = find_paper(session, paper)
        assert found.id is not None
        if kind == "forget":
            undone = forget_feedback(session, subscriber, found.id)
            console.print(f"{subscriber.email}: {'forgot' if undone else 'had not judged'} {found.title!r}",
                          highlight=False)
            return
        record_feedback(session, subscriber, found.id, kind)
        console.print(f"{subscriber.email}: {kind} like {found.title!r}", highlight=False)
