"""The daily job in-process: plan today's edition, then send it. Celery tasks call the same two steps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlmodel import Session

from newsletter.config import Settings
from newsletter.delivery.send import SendReport, send_edition
from newsletter.editions import PlanReport, plan_edition


@dataclass
class DailyReport:
    plan: PlanReport
    send: SendReport


def run_daily(session: Session, day: date, settings: Settings, **send_options) -> DailyReport:
    plan = plan_edition(session, day, settings)
    session.commit()
    return DailyReport(plan=plan, send=send_edition(session, plan.edition_id, settings, **send_options))
