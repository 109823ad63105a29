"""What every route reads from its application: the settings it was created with (`create_app(settings)`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from newsletter import db
from newsletter.config import Settings


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


AppSettings = Annotated[Settings, Depends(settings_of)]


@contextmanager
def database(settings: Settings, write: bool = False) -> Iterator[Session]:
    """A session on the app's database that commits on success (newsletter.db.session_scope). Routes that change
    something say `write=True`: on SQLite the transaction then takes the write lock first, so concurrent requests
    queue for it instead of failing with "database is locked"."""
    with db.session_scope(settings.sqlalchemy_url, write=write) as session:
        yield session
