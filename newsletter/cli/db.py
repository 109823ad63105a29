"""`newsletter db ...`: the database schema (Alembic migrations)."""

from __future__ import annotations

import typer

from newsletter import db
from newsletter.cli.support import console, expected_errors, settings

app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)


@app.command("upgrade")
@expected_errors
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations up to REVISION (creates the SQLite file if needed)."""
    url = settings().sqlalchemy_url
    db.upgrade(url, revision=revision)
    console.print(f"database at revision {db.current_revision(url)}")
