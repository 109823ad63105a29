"""What every `newsletter` command shares: the settings of this run, the consoles, the expected-error decorator,
date parsing and JSON output.

The settings are read once per command line, at the entry (`newsletter.cli.main`, from the context object a
caller handed in, else from the environment) and reach every command through `settings()`; tests hand a
`Settings` object in as `obj` instead of editing the environment.
"""

from __future__ import annotations

import functools
import json
from contextvars import ContextVar
from datetime import date
from typing import Any, NoReturn

import typer
from rich.console import Console
from sqlalchemy.exc import OperationalError, ProgrammingError

from newsletter import clock, db
from newsletter.config import Settings
from newsletter.errors import NewsletterError

console = Console()
err_console = Console(stderr=True)


_settings: ContextVar[Settings] = ContextVar("newsletter_cli_settings")


def use_settings(given: object) -> Settings:
    """At the entry: the settings this command line runs with (`given`, or read from the environment)."""
    current = given if isinstance(given, Settings) else Settings()
    _settings.set(current)
    return current


def settings() -> Settings:
    """The settings of the running command line."""
    return _settings.get()


def expected_errors(command):
    """Report NewsletterError as one line on stderr with exit code 1, never as a traceback; so is a database
    that was not migrated (or not to this code's revision): the line says to run `newsletter db upgrade`."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except NewsletterError as error:
            fail(str(error))
        except (OperationalError, ProgrammingError):
            problem = db.schema_problem(settings().sqlalchemy_url)
            if problem is None:
                raise
            fail(problem)

    return wrapper


def fail(message: str) -> NoReturn:
    err_console.print(f"[red]error:[/red] {message}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(1) from None


def parse_day(value: str | None) -> date:
    if not value:
        return clock.today()
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise NewsletterError(f"--date must be YYYY-MM-DD, not {value!r}") from None
    return clock.edition_day(day)


def echo_json(data: Any) -> None:
    """Machine-readable output: JSON on stdout, nothing else there."""
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
