"""`newsletter doctor`: is this deployment ready for a real list? One line per finding, exit code 1 on any error."""

from __future__ import annotations

import typer

from newsletter.cli.support import echo_json, expected_errors, parse_day, settings
from newsletter.doctor import ERROR, WARNING, diagnose, has_errors


@expected_errors
def doctor(
    day: str | None = typer.Option(None, "--date", help="Check the sources for this edition date (default today)."),
    as_json: bool = typer.Option(False, "--json", help="Print the findings as a JSON list of {level, check, "
                                                        "message, fix}."),
) -> None:
    """Check this deployment: https base URL and the web app answering there, a real From domain, DKIM (and the
    DNS records to publish: DKIM, SPF, DMARC), the postal address, the secret key, SMTP with its TLS and login,
    Redis, the database and its migrations, the sources. One line each; exit code 1 when any is an error.

    With NEWSLETTER_ENV=production, `newsletter send`, the Celery workers and beat refuse to start while this
    reports an error.
    """
    findings = diagnose(settings(), parse_day(day))
    if as_json:
        echo_json([finding.as_dict() for finding in findings])
    else:
        for finding in findings:
            typer.echo(finding.line())
        errors = sum(f.level == ERROR for f in findings)
        warnings = sum(f.level == WARNING for f in findings)
        typer.echo(f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''}"
                   + ("" if errors else ": ready"))
    if has_errors(findings):
        raise typer.Exit(1)
