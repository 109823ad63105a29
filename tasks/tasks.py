"""Thin Celery wrappers: each task opens a session and calls the core with plain ids and dates."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime, timezone

from newsletter.config import get_settings
from newsletter.db import session_scope
from newsletter.delivery.send import send_edition
from newsletter.editions import plan_edition
from newsletter.ingest import ingest, sample_sources
from tasks.celery_app import app


def _day(value: str | None) -> date:
    return date.fromisoformat(value) if value else datetime.now(timezone.utc).date()


@app.task
def ingest_sources() -> list[dict]:
    settings = get_settings()
    sources = [s for name in settings.source_list() for s in (sample_sources() if name == "sample" else [name])]
    results = []
    for source in sources:
        with session_scope() as session:
            results.append(asdict(ingest(session, source)))
    return results


@app.task
def plan(day: str | None = None) -> dict:
    with session_scope() as session:
        return asdict(plan_edition(session, _day(day), get_settings()))


@app.task
def send_batch(edition_id: int, delivery_ids: list[int] | None = None) -> dict:
    with session_scope() as session:
        return asdict(send_edition(session, edition_id, get_settings(), delivery_ids=delivery_ids))


@app.task
def daily(day: str | None = None) -> dict:
    ingest_sources()
    planned = plan(day)
    return send_batch(planned["edition_id"])
