"""More / less like this. The GET shows a button and records nothing (link scanners follow GETs); the POST records."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData

from newsletter.config import Settings
from newsletter.errors import BadToken, NotFound
from newsletter.links import signed_path
from newsletter.models import Paper
from newsletter.ranking.feedback import KINDS, record_feedback
from newsletter.web.csrf import verified_form
from newsletter.web.pages import page
from newsletter.web.state import AppSettings, database
from subscribers.consent import subscriber_for_token
from subscribers.profiles import MAX_ID
from subscribers.tokens import ISSUED_AT

router = APIRouter()
LABELS = {"more": "More like this", "less": "Less like this"}


def feedback_target(session, token: str, settings: Settings):
    subscriber, payload = subscriber_for_token(session, "feedback", token, settings)
    paper_id = payload.get("p")
    if payload.get("k") not in KINDS or type(paper_id) is not int or not 0 < paper_id <= MAX_ID:
        raise BadToken("this link is not valid")
    paper = session.get(Paper, paper_id)
    if paper is None:
        raise NotFound("that paper is no longer in our records")
    return subscriber, paper, payload["k"], payload


@router.get("/feedback/{token}")
def ask_feedback(token: str, request: Request, settings: AppSettings):
    with database(settings) as session:
        _, paper, kind, _ = feedback_target(session, token, settings)
        return page("feedback.html", request=request, paper=paper, kind=kind, label=LABELS[kind], done=False)


@router.post("/feedback/{token}")
def give_feedback(token: str, request: Request, settings: AppSettings, form: FormData = Depends(verified_form)):
    with database(settings, write=True) as session:
        subscriber, paper, kind, payload = feedback_target(session, token, settings)
        record_feedback(session, subscriber, paper.id, kind)
        # signed as of the feedback link's own time: it never outlives the link it came from
        preferences = signed_path("preferences", subscriber, settings, issued_at=payload[ISSUED_AT])
        return page("feedback.html", paper=paper, kind=kind, label=LABELS[kind], done=True,
                    preferences_url=preferences)
