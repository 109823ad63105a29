"""The beat schedule. Run exactly one `celery beat`: two would enqueue every job twice (harmless, but wasteful)."""

from __future__ import annotations

from celery.schedules import crontab

from newsletter.config import Settings


def beat_schedule(settings: Settings) -> dict:
    return {
        "ingest-and-send-daily": {"task": "tasks.tasks.daily", "schedule": crontab(minute=0, hour=6)},
    }
