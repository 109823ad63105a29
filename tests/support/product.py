"""The few product calls the real-MTA tests and benchmarks/real_mta.py make, in one place and written to hold
while the product code is rearranged (CLI modules in a package, settings passed explicitly rather than read from
the process environment): they use only the `newsletter` CLI, the Settings model, `ingest`, `add_subscriber` and
the models, and adapt to `ingest` taking the settings or not.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from datetime import date, datetime, timezone
from enum import Enum
from pathlib import Path

from sqlmodel import select

from newsletter.config import Settings
from newsletter.ingest import ingest, sample_sources
from newsletter.models import Delivery, Subscriber, SubscriberStatus
from subscribers.profiles import add_subscriber

ROOT = Path(__file__).resolve().parents[2]
_INGEST_TAKES_SETTINGS = "settings" in inspect.signature(ingest).parameters


def today_utc() -> date:
    return datetime.now(timezone.utc).date()


def lexical(settings: Settings) -> Settings:
    """The same settings with semantic ranking off: the tests are about mail, not the embedding model."""
    return settings.model_copy(update={"semantic": "off"})


def ingest_source(session, source: str, settings: Settings) -> None:
    if _INGEST_TAKES_SETTINGS:
        ingest(session, source, settings)
    else:
        ingest(session, source)
    session.commit()


def ingest_sample_corpus(session, settings: Settings) -> None:
    for source in sample_sources():
        ingest_source(session, source, settings)


def add_active(session, email: str, interests: str = "language models") -> Subscriber:
    subscriber = add_subscriber(session, email, status=SubscriberStatus.active, interests=interests)
    session.commit()
    return subscriber


def deliveries_by_email(session) -> dict[str, Delivery]:
    """Every delivery row, freshly read, by its subscriber's address (one edition)."""
    session.expire_all()
    return {email: delivery for delivery, email in session.exec(select(Delivery, Subscriber.email).join(Subscriber))}


def status_of(session, email: str) -> str:
    session.expire_all()
    return session.exec(select(Subscriber.status).where(Subscriber.email == email)).one()


def settings_environment(settings: Settings) -> dict[str, str]:
    """`settings` as the NEWSLETTER_* variables that reproduce them in another process."""
    variables = {}
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        key = field.validation_alias if isinstance(field.validation_alias, str) else f"NEWSLETTER_{name.upper()}"
        if isinstance(value, Enum):
            value = value.value
        elif isinstance(value, bool):
            value = "true" if value else "false"
        if value is not None:
            variables[key] = str(value)
    return variables


def run_cli(settings: Settings, cwd: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """`newsletter ARGS...` in a subprocess configured only by `settings` (as NEWSLETTER_* variables; those of the
    shell running the tests are dropped, and `cwd` holds no .env file)."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env = {**inherited, **settings_environment(settings),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "newsletter", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)
