"""What every `newsletter` command shares: the consoles, the expected-error decorator and date parsing.

Kept apart from `newsletter/cli.py` so the command modules (`cli_send`, `cli_editions`, `cli_transfer`) can use
them without importing the application they are registered on.
"""

from __future__ import annotations

import functools
from datetime import date, datetime, timezone
from typing import Optional

import typer
from rich.console import Console

from newsletter.errors import NewsletterError

console = Console()
err_console = Console(stderr=True)


def expected_errors(command):
    """Report NewsletterError as one line on stderr with exit code 1, never as a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except NewsletterError as error:
            err_console.print(f"[red]error:[/red] {error}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


def today() -> date:
    return datetime.now(timezone.utc).date()


def parse_day(value: Optional[str]) -> date:
    if not value:
        return today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise NewsletterError(f"--date must be YYYY-MM-DD, not {value!r}") from None
