"""Shared fixtures: each test gets its own empty migrated database, settings, and (when asked) a real SMTP sink.

The database is SQLite (a copy of one migrated file per test) unless NEWSLETTER_TEST_POSTGRES_URL names a
PostgreSQL server: then the session migrates one fresh database there once, every test starts from truncated
tables, and the database is dropped at the end. Tests that need Redis use NEWSLETTER_TEST_REDIS_URL (default
db 6 of the local server). A service that cannot be reached skips those tests, or fails them when CI is set.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from newsletter import db
from newsletter.config import Settings, get_settings
from newsletter.sink import SmtpSink

FIXTURES = Path(__file__).parent / "fixtures"
TEST_POSTGRES_URL = os.environ.get("NEWSLETTER_TEST_POSTGRES_URL", "")
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TEST_REDIS_URL = os.environ.get("NEWSLETTER_TEST_REDIS_URL", "redis://127.0.0.1:6379/6")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Anything that reaches Redis from the test process (the Celery app is built at import) uses the test database.
os.environ["NEWSLETTER_REDIS_URL"] = TEST_REDIS_URL


def service_unavailable(reason: str):
    """Skip with `reason`, or fail with it under CI, where every service must be there."""
    if IN_CI:
        pytest.fail(f"{reason} (CI is set, so this service is required)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory) -> Path:
    """One SQLite file migrated to head; each test copies it (cheaper than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    db.upgrade(f"sqlite:///{path}")
    return path


@contextmanager
def scratch_postgres(prefix: str, server_url: str = "") -> Iterator[str]:
    """A throwaway migrated PostgreSQL database; an unreachable server fails under CI and skips elsewhere."""
    server_url = server_url or DEFAULT_POSTGRES_URL
    with ExitStack() as stack:
        try:
            url = stack.enter_context(db.scratch_postgres_database(server_url, prefix))
        except OperationalError as error:
            service_unavailable(f"PostgreSQL at {make_url(server_url).render_as_string()} is not reachable: "
                                f"{error.__class__.__name__}: {str(error).splitlines()[0]}")
        yield url


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A fresh, migrated PostgreSQL database for this session (dropped at the end)."""
    with scratch_postgres("newsletter_test", TEST_POSTGRES_URL) as url:
        yield url


@pytest.fixture
def database_url(request, tmp_path, migrated_template) -> str:
    """An empty migrated database for one test: a copied SQLite file, or the session's truncated PostgreSQL."""
    if TEST_POSTGRES_URL:
        url = request.getfixturevalue("postgres_url")
        truncate_all(db.get_engine(url))
        return url
    database = tmp_path / "newsletter.db"
    shutil.copy(migrated_template, database)
    return f"sqlite:///{database}"


def truncate_all(engine: Engine) -> None:
    tables = ", ".join(f'"{table.name}"' for table in SQLModel.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text("SET LOCAL lock_timeout = '20s'"))  # a leaked transaction fails loudly, not hangs
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def settings(tmp_path, database_url, monkeypatch) -> Settings:
    env = {
        "NEWSLETTER_DATA_DIR": str(tmp_path / "var"),
        "NEWSLETTER_DATABASE_URL": database_url,
        "NEWSLETTER_SECRET_KEY": "test-secret-key",
        "NEWSLETTER_BASE_URL": "https://digest.example.org",
        "NEWSLETTER_ADMIN_TOKEN": "test-admin-token",
        "NEWSLETTER_FROM": "Paper Digest <digest@example.org>",
        "NEWSLETTER_SEMANTIC": "off",  # lexical-only unless a test asks for the `semantic` fixture (model load ~10 s)
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("newsletter.notices.RETRY_DELAYS", (0.01, 0.01))  # seconds, not the 2 + 10 + 30 of a site
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def session(settings):
    with Session(db.get_engine(settings.sqlalchemy_url), expire_on_commit=False) as session:
        yield session


@pytest.fixture
def sink(tmp_path, settings, monkeypatch):
    """A real SMTP server on loopback; settings point at it."""
    with SmtpSink(tmp_path / "outbox") as smtp:
        monkeypatch.setenv("NEWSLETTER_SMTP_HOST", smtp.host)
        monkeypatch.setenv("NEWSLETTER_SMTP_PORT", str(smtp.port))
        get_settings.cache_clear()
        yield smtp


@pytest.fixture
def smtp_settings(sink) -> Settings:
    return get_settings()


@pytest.fixture
def web(settings):
    """An HTTP client for the web app (in-process; same routes and middleware as under uvicorn)."""
    from fastapi.testclient import TestClient

    from newsletter.web.app import create_app

    with TestClient(create_app()) as client:
        yield client


CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium driven by Playwright (never a downloaded browser).

    Skipped with a reason where Chromium is missing, except in CI (CI=true), where a missing browser fails.
    """
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"],
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests leave files for people to look at (screenshots); gitignored."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


class LiveServer:
    """The web app under a real uvicorn server on a free loopback port, in a thread."""

    def __init__(self, app):
        import uvicorn

        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()


@pytest.fixture
def live_server(settings, monkeypatch):
    """A real uvicorn server; NEWSLETTER_BASE_URL points at it, so links in emails open on it."""
    from newsletter.web.app import create_app

    server = LiveServer(create_app())
    monkeypatch.setenv("NEWSLETTER_BASE_URL", server.url)
    get_settings.cache_clear()
    with server:
        yield server


@pytest.fixture
def scripted_smtp(tmp_path):
    """A real SMTP server on loopback that can be told to refuse, defer, drop or stall (tests/scripted_smtp.py)."""
    from tests.scripted_smtp import ScriptedSmtp

    with ScriptedSmtp(tmp_path / "scripted", stall_seconds=1.0) as server:
        yield server


@pytest.fixture
def semantic(settings, monkeypatch) -> Settings:
    """Settings with semantic ranking on; the model is loaded once per test session and shared."""
    from newsletter.ranking import embeddings

    monkeypatch.setenv("NEWSLETTER_SEMANTIC", "auto")
    get_settings.cache_clear()
    if embeddings.load_encoder() is None:
        pytest.skip(embeddings.semantic_status())
    return get_settings()


@pytest.fixture
def redis_url() -> str:
    """The test Redis database, emptied before and after the test."""
    import redis

    client = redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        service_unavailable(f"Redis at {TEST_REDIS_URL} is not reachable: {error}")
    client.flushdb()
    yield TEST_REDIS_URL
    client.flushdb()
    client.close()
