"""Shared fixtures: each test gets its own empty migrated database, its own `Settings` object (semantic ranking
on, the default), and when asked a real SMTP sink, a real web server, a real browser or its own Redis database.

The database is SQLite (a copy of one migrated file per test) unless NEWSLETTER_TEST_POSTGRES_URL names a
PostgreSQL server: then the session migrates one fresh database there once, every test starts from truncated
tables, and the database is dropped at the end. Tests that need Redis get the database of
NEWSLETTER_TEST_REDIS_URL (default db 6 of the local server), emptied before and after, through the `redis_url`
fixture only. A service that cannot be reached skips those tests, or fails them when CI is set (any of CI=true,
CI=1, CI=yes): under CI nothing is skipped.

Tests never edit the process environment to configure the code: they build Settings objects (`test_settings`)
and hand them to the core, to the CLI (`cli` fixture: Click's context object) and to the web app
(`create_app(settings)`); processes they start get the same settings as NEWSLETTER_* variables
(`environment_of`).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, SQLModel

from newsletter import db
from newsletter.config import Settings
from newsletter.sink import SmtpSink
from tests.support.postgres import scratch_postgres_database

FIXTURES = Path(__file__).parent / "fixtures"
TEST_POSTGRES_URL = os.environ.get("NEWSLETTER_TEST_POSTGRES_URL", "")
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TEST_REDIS_URL = os.environ.get("NEWSLETTER_TEST_REDIS_URL", "redis://127.0.0.1:6379/6")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Settings every test starts from: real-looking production values, semantic ranking on (the default).
TEST_SETTINGS = {
    "secret_key": "test-secret-key",
    "base_url": "https://digest.example.org",
    "admin_token": "test-admin-token",
    "from_address": "Paper Digest <digest@example.org>",
    "redis_url": TEST_REDIS_URL,
    "semantic": "auto",
}


def make_settings(**values) -> Settings:
    """Settings from TEST_SETTINGS and `values` only: no .env file, and the NEWSLETTER_* variables of the shell
    that runs the tests are ignored."""
    saved = {name: os.environ.pop(name) for name in list(os.environ) if name.startswith("NEWSLETTER_")}
    try:
        return Settings(_env_file=None, **{**TEST_SETTINGS, **values})
    finally:
        os.environ.update(saved)


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
            url = stack.enter_context(scratch_postgres_database(server_url, prefix))
        except OperationalError as error:
            service_unavailable(f"PostgreSQL at {make_url(server_url).render_as_string()} is not reachable: "
                                f"{error.__class__.__name__}: {str(error).splitlines()[0]}")
        yield url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
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


@pytest.fixture(scope="session")
def semantic_model() -> None:
    """The sentence-embedding model, loaded once per test session. Missing, it skips (fails under CI)."""
    from newsletter.ranking import embeddings

    probe = make_settings()
    if not embeddings.semantic_available(probe):
        service_unavailable(embeddings.semantic_status(probe) or "semantic ranking is unavailable")


@pytest.fixture
def settings(tmp_path, database_url, semantic_model) -> Settings:
    """This test's settings: its own data folder and database, semantic ranking on (the default). Fixtures
    that start a server (sink, live_server) point these same settings at it."""
    return make_settings(data_dir=tmp_path / "var", database_url=database_url)


@pytest.fixture
def lexical_settings(settings) -> Settings:
    """The same settings with semantic ranking off (NEWSLETTER_SEMANTIC=off), for tests of the lexical ranker."""
    return settings.model_copy(update={"semantic": "off"})


@pytest.fixture(autouse=True)
def quick_notice_retries(monkeypatch):
    """Transactional emails retry after 0.01 s in tests, not after the 2 + 10 + 30 s of a site."""
    monkeypatch.setattr("newsletter.notices.RETRY_DELAYS", (0.01, 0.01))


@pytest.fixture
def cli(settings):
    """Run `newsletter ARGS...` in-process with this test's settings: cli("send", "--json")."""
    from typer.testing import CliRunner

    from newsletter.cli import app

    runner = CliRunner()

    def invoke(*args, settings_override: Settings | None = None, **kwargs):
        return runner.invoke(app, [str(a) for a in args], obj=settings_override or settings, **kwargs)

    return invoke


@pytest.fixture
def session(settings):
    with Session(db.get_engine(settings.sqlalchemy_url), expire_on_commit=False) as session:
        yield session


@pytest.fixture
def sink(tmp_path, settings):
    """A real SMTP server on loopback; this test's settings point at it."""
    with SmtpSink(tmp_path / "outbox") as smtp:
        settings.smtp_host, settings.smtp_port = smtp.host, smtp.port
        yield smtp


@pytest.fixture
def smtp_settings(sink, settings) -> Settings:
    """This test's settings, pointing at the `sink`."""
    return settings


@pytest.fixture
def web(settings):
    """An HTTP client for the web app (in-process; same routes and middleware as under uvicorn)."""
    from fastapi.testclient import TestClient

    from newsletter.web.app import create_app

    with TestClient(create_app(settings)) as client:
        yield client


CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium driven by Playwright (never a downloaded browser).

    Skipped with a reason where Chromium is missing, except in CI (CI=true), where a missing browser fails.
    """
    if not CHROMIUM.exists():
        service_unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
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
def live_server(settings):
    """A real uvicorn server; this test's base URL points at it, so links in emails open on it."""
    from newsletter.web.app import create_app

    server = LiveServer(create_app(settings))
    settings.base_url = server.url
    with server:
        yield server


@pytest.fixture
def scripted_smtp(tmp_path):
    """A real SMTP server on loopback that can be told to refuse, defer, drop or stall (tests/scripted_smtp.py)."""
    from tests.scripted_smtp import ScriptedSmtp

    with ScriptedSmtp(tmp_path / "scripted", stall_seconds=1.0) as server:
        yield server


@pytest.fixture
def redis_url(settings) -> Iterator[str]:
    """The test Redis, with a key prefix of this test's own (NEWSLETTER_REDIS_KEY_PREFIX): every key the test
    makes (Celery queues and results, rate limits) carries it and is deleted afterwards, so tests and test runs
    sharing the server never see each other's keys. This fixture is the one way a test reaches Redis."""
    import redis

    client = redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        service_unavailable(f"Redis at {TEST_REDIS_URL} is not reachable: {error}")
    settings.redis_url = TEST_REDIS_URL
    settings.redis_key_prefix = f"test-{uuid.uuid4().hex[:12]}:"
    yield TEST_REDIS_URL
    for key in client.scan_iter(match=f"{settings.redis_key_prefix}*", count=1000):
        client.delete(key)
    client.close()
