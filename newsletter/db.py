"""Engine, sessions and the migrations entry point. Every function takes the database URL (settings.sqlalchemy_url)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import event, make_url
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, create_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def unreachable(error: BaseException) -> str | None:
    """One line when `error` says the database connection was refused, lost or shut down (PostgreSQL restarted,
    the network gone), whether SQLAlchemy wrapped it or the driver raised it itself; None for any other error.
    Callers stop cleanly on it: the work is still in the database and the next run (or tick) takes it up."""
    import psycopg

    cause = error.orig if isinstance(error, DBAPIError) else error
    lost = isinstance(error, DBAPIError) and error.connection_invalidated
    if not lost and not isinstance(cause, psycopg.OperationalError | psycopg.InterfaceError):
        return None
    return "database unreachable: " + (str(cause).strip().splitlines() or [cause.__class__.__name__])[0]


def get_engine(url: str) -> Engine:
    """The shared engine for `url` (one per URL and process)."""
    return _engine_for(url)


@lru_cache(maxsize=8)
def _engine_for(url: str) -> Engine:
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _ensure_sqlite_dir(url: str) -> None:
    path = url.split("///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets the web app read while a sender writes; foreign keys are off by default in SQLite.
    # synchronous=NORMAL (SQLite's advice for WAL): a commit survives a crash of the process at once, and an
    # OS crash or power loss once the WAL is synced at the next checkpoint; a commit costs no fsync, which
    # matters for the delivery ledger's two commits per message (see newsletter/delivery/ledger.py).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


@contextmanager
def session_scope(url: str, write: bool = False) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error.

    `write=True` for a short transaction that will write (a web request's change): on SQLite it takes the write
    lock up front (BEGIN IMMEDIATE), waiting up to busy_timeout for it. A transaction that reads first and writes
    later cannot wait: once another writer has committed since its read, SQLite refuses its write at once
    ("database is locked"), whatever the timeout. PostgreSQL needs nothing of the kind.
    """
    with Session(get_engine(url), expire_on_commit=False) as session:
        try:
            if write and url.startswith("sqlite"):
                session.connection().exec_driver_sql("BEGIN IMMEDIATE")
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database schema up to `revision` (creating the SQLite file if needed)."""
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
    command.upgrade(alembic_config(url), revision)


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def schema_problem(url: str) -> str | None:
    """Why the database at `url` cannot serve this code (not migrated, or migrated to an older revision), in one
    line naming the command that fixes it; None when it is at the head revision."""
    try:
        current = current_revision(url)
    except Exception as error:  # unreachable, or not a database: the caller's own error says more
        return f"the database cannot be read ({error.__class__.__name__})" if url.startswith("sqlite") else None
    if current == head_revision():
        return None
    shown = make_url(url).render_as_string(hide_password=True)
    state = "was never migrated" if current is None else f"is at revision {current}, not {head_revision()}"
    return f"the database at {shown} {state}: run `newsletter db upgrade`"


def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with get_engine(url).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def throwaway_session(url: str) -> Iterator[Session]:
    """A session whose every write, savepoints included, is rolled back at the end (for dry runs)."""
    engine = get_engine(url)
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            # pysqlite begins no transaction before a SAVEPOINT, so releasing one would commit it: hold one open.
            connection.exec_driver_sql("BEGIN")
        with Session(bind=connection, expire_on_commit=False) as session:
            try:
                yield session
            finally:
                session.rollback()
                connection.rollback()
