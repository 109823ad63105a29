"""The preferences page, reached from the signed link in every email: profile, pause, the papers the reader
judged (each can be forgotten), past editions, unsubscribe."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from fastapi import APIRouter, Depends, Request
from sqlmodel import Session, col, func, select
from starlette.datastructures import FormData

from newsletter.config import Settings
from newsletter.links import signed_path, view_path
from newsletter.models import Delivery, DeliveryStatus, Edition, Pick, Subscriber
from newsletter.ranking.feedback import forget_feedback, judged_papers
from newsletter.ranking.seeds import seed_text
from newsletter.render.context import paper_url
from newsletter.web import forms
from newsletter.web.csrf import verified_form
from newsletter.web.pages import page
from newsletter.web.state import AppSettings, database
from subscribers.consent import record, subscriber_for_token
from subscribers.profiles import update_profile
from subscribers.tokens import ISSUED_AT

router = APIRouter()
EDITIONS_SHOWN = 10


@dataclass
class ReceivedEdition:
    day: date
    papers: int
    view_url: str


def received_editions(session: Session, subscriber: Subscriber, settings: Settings,
                      issued_at: int | None = None) -> list[ReceivedEdition]:
    """The subscriber's last sent editions, newest first, each with its signed "view in browser" link (signed as
    of `issued_at`: the preferences link's own time, so these expire with it)."""
    rows = session.exec(
        select(col(Edition.date), func.count(col(Pick.id)))
        .join(Delivery, col(Delivery.edition_id) == Edition.id)
        .join(Pick, col(Pick.delivery_id) == Delivery.id, isouter=True)
        .where(col(Delivery.subscriber_id) == subscriber.id, col(Delivery.status) == DeliveryStatus.sent)
        .group_by(col(Edition.date)).order_by(col(Edition.date).desc()).limit(EDITIONS_SHOWN)
    ).all()
    return [ReceivedEdition(day, count, view_path(subscriber, day, settings, issued_at)) for day, count in rows]


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


@dataclass
class JudgedPaper:
    paper_id: int
    title: str
    url: str
    kind: str  # "more" (saved) | "less"


def judged(session: Session, subscriber: Subscriber) -> list[JudgedPaper]:
    return [JudgedPaper(paper.id, paper.title, paper_url(paper), kind)
            for kind, paper in judged_papers(session, subscriber.id)]


def preferences_page(request: Request, session: Session, subscriber: Subscriber, token: str, settings: Settings,
                     payload: dict, values: dict | None = None, errors: dict[str, str] | None = None,
                     notice: str = "", status_code: int = 200):
    return page("preferences.html", status_code=status_code, request=request, email=subscriber.email,
                status=subscriber.status, errors=errors or {}, notice=notice,
                values=values or {**profile_values(subscriber),
                                  "seed_papers": seed_text(session, subscriber.seed_paper_ids)},
                timezones=forms.timezone_groups(),
                editions=received_editions(session, subscriber, settings, payload[ISSUED_AT]),
                judged=judged(session, subscriber), forget_action=f"/preferences/{token}/forget",
                unsubscribe_action=signed_path("unsubscribe", subscriber, settings), scripts=["/static/timezone.js"])


@router.get("/preferences/{token}")
def show_preferences(token: str, request: Request, settings: AppSettings):
    with database(settings) as session:
        subscriber, payload = subscriber_for_token(session, "preferences", token, settings)
        return preferences_page(request, session, subscriber, token, settings, payload)


@router.post("/preferences/{token}")
def save_preferences(token: str, request: Request, settings: AppSettings, form: FormData = Depends(verified_form)):
    with database(settings, write=True) as session:
        subscriber, payload = subscriber_for_token(session, "preferences", token, settings)
        try:
            profile = forms.profile_fields(form)
            seeds = forms.seed_references(form)
            if seeds is not None:
                profile["seed_paper_ids"] = forms.seed_paper_choice(session, seeds)  # unresolved ones: listed back
            update_profile(session, subscriber, **profile)
        except forms.FormErrors as error:
            values = {**forms.echo(form), "paused": form.get("paused", "")}
            return preferences_page(request, session, subscriber, token, settings, payload, values, error.errors,
                                    status_code=422)
        subscriber.paused = form.get("paused") == "1"
        session.add(subscriber)
        record(session, subscriber, "preferences_update", paused=subscriber.paused)
        return preferences_page(request, session, subscriber, token, settings, payload,
                                notice="Saved. The next edition uses these preferences.")


@router.post("/preferences/{token}/forget")
def forget_judgement(token: str, request: Request, settings: AppSettings, form: FormData = Depends(verified_form)):
    """Undo one "more / less like this": the paper no longer steers the ranking and may be picked again."""
    with database(settings, write=True) as session:
        subscriber, payload = subscriber_for_token(session, "preferences", token, settings)
        paper = forget_feedback(session, subscriber, forms.paper_id(form))
        notice = f"Forgotten: {paper.title}" if paper else "There was nothing to forget: already done."
        return preferences_page(request, session, subscriber, token, settings, payload, notice=notice)
