"""The preferences page, reached from the signed link in every email: profile, pause, unsubscribe, past editions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from fastapi import APIRouter, Depends, Request
from sqlmodel import Session, func, select
from starlette.datastructures import FormData

from newsletter.compose import signed_path, view_path
from newsletter.config import Settings, get_settings
from newsletter.db import session_scope
from newsletter.errors import InvalidInput
from newsletter.models import Delivery, DeliveryStatus, Edition, Pick, Subscriber
from newsletter.web import forms
from newsletter.web.csrf import verified_form
from newsletter.web.pages import page
from subscribers.consent import record, subscriber_for_token
from subscribers.profiles import update_profile

router = APIRouter()
EDITIONS_SHOWN = 10


@dataclass
class ReceivedEdition:
    day: date
    papers: int
    view_url: str


def received_editions(session: Session, subscriber: Subscriber, settings: Settings) -> list[ReceivedEdition]:
    """The subscriber's last sent editions, newest first, each with its signed "view in browser" link."""
    rows = session.exec(
        select(Edition.date, func.count(Pick.id))
        .join(Delivery, Delivery.edition_id == Edition.id)
        .join(Pick, Pick.delivery_id == Delivery.id, isouter=True)
        .where(Delivery.subscriber_id == subscriber.id, Delivery.status == DeliveryStatus.sent)
        .group_by(Edition.date).order_by(Edition.date.desc()).limit(EDITIONS_SHOWN)
    ).all()
    return [ReceivedEdition(day, count, view_path(subscriber, day, settings)) for day, count in rows]


def profile_values(subscriber: Subscriber) -> dict:
    return {
        "interests": subscriber.interests,
        "keywords": ", ".join(subscriber.keywords),
        "followed_authors": ", ".join(subscriber.followed_authors),
        "excluded_keywords": ", ".join(subscriber.excluded_keywords),
        "frequency": subscriber.frequency,
        "send_hour": str(subscriber.send_hour),
        "timezone": subscriber.timezone,
        "paused": "1" if subscriber.paused else "",
    }


def preferences_page(request: Request, session: Session, subscriber: Subscriber, values: dict | None = None,
                     error: str = "", saved: bool = False, status_code: int = 200):
    settings = get_settings()
    return page("preferences.html", status_code=status_code, request=request, email=subscriber.email,
                status=subscriber.status, values=values or profile_values(subscriber), error=error, saved=saved,
                timezones=forms.timezone_groups(), editions=received_editions(session, subscriber, settings),
                unsubscribe_action=signed_path("unsubscribe", subscriber, settings), scripts=["/static/timezone.js"])


@router.get("/preferences/{token}")
def show_preferences(token: str, request: Request):
    with session_scope() as session:
        subscriber, _ = subscriber_for_token(session, "preferences", token)
        return preferences_page(request, session, subscriber)


@router.post("/preferences/{token}")
def save_preferences(token: str, request: Request, form: FormData = Depends(verified_form)):
    with session_scope() as session:
        subscriber, _ = subscriber_for_token(session, "preferences", token)
        try:
            update_profile(session, subscriber, **forms.profile_fields(form))
        except InvalidInput as error:
            values = {**forms.echo(form), "paused": form.get("paused", "")}
            return preferences_page(request, session, subscriber, values, str(error), status_code=422)
        subscriber.paused = form.get("paused") == "1"
        session.add(subscriber)
        record(session, subscriber, "preferences_update", paused=subscriber.paused)
        return preferences_page(request, session, subscriber, saved=True)
