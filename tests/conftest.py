"""Shared fixtures: each test gets its own migrated SQLite file, settings, and (when asked) a real SMTP sink."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlmodel import Session

from newsletter import db
from newsletter.config import Settings, get_settings
from newsletter.sink import SmtpSink

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory) -> Path:
    """One SQLite file migrated to head; each test copies it (cheaper than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    db.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def settings(tmp_path, migrated_template, monkeypatch) -> Settings:
    database = tmp_path / "newsletter.db"
    shutil.copy(migrated_template, database)
    env = {
        "NEWSLETTER_DATA_DIR": str(tmp_path / "var"),
        "NEWSLETTER_DATABASE_URL": f"sqlite:///{database}",
        "NEWSLETTER_SECRET_KEY": "test-secret-key",
        "NEWSLETTER_BASE_URL": "https://digest.example.org",
        "NEWSLETTER_ADMIN_TOKEN": "test-admin-token",
        "NEWSLETTER_FROM": "Paper Digest <digest@example.org>",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
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
