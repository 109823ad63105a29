"""The beat schedule, from settings. Run exactly ONE `celery beat`: a second would enqueue every job twice
(nothing would be sent twice, the ledger sees to that, but the work would be done twice)."""

from __future__ import annotations

from celery.schedules import crontab

from newsletter.config import Settings
from newsletter.errors import InvalidInput


def beat_schedule(settings: Settings) -> dict:
    schedule = {
        "ingest": {"task": "tasks.tasks.ingest_sources", "schedule": cron(settings.ingest_schedule)},
        "send-tick": {"task": "tasks.tasks.send_tick", "schedule": settings.send_tick_seconds,
                      # a tick that waited longer than its period is stale: the next one does the same work
                      "options": {"expires": settings.send_tick_seconds}},
    }
    if settings.retention_days:  # 0 keeps everything: no prune
        schedule["prune"] = {"task": "tasks.tasks.prune",
                             "schedule": cron(settings.prune_schedule, "NEWSLETTER_PRUNE_SCHEDULE")}
    if settings.bounce_mailbox:
        schedule["process-bounces"] = {"task": "tasks.tasks.process_bounces",
                                       "schedule": settings.bounce_check_seconds,
                                       "options": {"expires": settings.bounce_check_seconds}}
    return schedule


def cron(expression: str, name: str = "NEWSLETTER_INGEST_SCHEDULE") -> crontab:
    """A crontab from "minute hour day-of-month month day-of-week" (UTC), e.g. "30 5 * * *"; `name` is the
    setting it came from, for the error message."""
    fields = expression.split()
    if len(fields) != 5:
        raise InvalidInput(f"{name} must have 5 cron fields, not {expression!r}")
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    try:
        return crontab(minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year,
                       day_of_week=day_of_week)
    except ValueError as error:
        raise InvalidInput(f"{name} {expression!r} is not valid cron: {error}") from None
