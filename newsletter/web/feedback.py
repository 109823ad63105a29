"""More / less like this, in one tap, and never by a link scanner.

GET /feedback/{token} records nothing (mail scanners fetch every link in an email). Its page carries the form with
a button, and a tiny same-origin script (static/feedback.js) that submits that form at once when a reader's browser
opens it: one tap in the email records the judgement. Without JavaScript the button does it. The POST records and
redirects back to the GET, which, now that the judgement is stored, shows "Thanks, noted" with an Undo (so a
reload never records twice). Undo forgets the judgement, as the preferences page does.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData

from newsletter.config import Settings
from newsletter.errors import BadToken, NotFound
from newsletter.links import signed_path
from newsletter.models import Paper
from newsletter.ranking.feedback import KINDS, feedback_of, forget_feedback, record_feedback
from newsletter.web.csrf import verified_form
from newsletter.web.pages import page
from newsletter.web.state import AppSettings, database
from subscribers.consent import subscriber_for_token
from subscribers.profiles import MAX_ID
from subscribers.tokens import ISSUED_AT

router = APIRouter()
LABELS = {"more": "More like this", "less": "Less like this"}
SCRIPT = "/static/feedback.js"


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
        subscriber, paper, kind, payload = feedback_target(session, token, settings)
        done = feedback_of(session, subscriber.id).get(paper.id) == kind
        # signed as of the feedback link's own time: it never outlives the link it came from
        preferences = signed_path("preferences", subscriber, settings, issued_at=payload[ISSUED_AT])
        return page("feedback.html", request=request, paper=paper, kind=kind, label=LABELS[kind], state=
                    "done" if done else "ask", scripts=[] if done else [SCRIPT], undo_url=f"/feedback/{token}/undo",
                    preferences_url=preferences)


@router.post("/feedback/{token}")
def give_feedback(token: str, settings: AppSettings, form: FormData = Depends(verified_form)):
    with database(settings, write=True) as session:
        subscriber, paper, kind, _ = feedback_target(session, token, settings)
        record_feedback(session, subscriber, paper.id, kind)
    return RedirectResponse(f"/feedback/{token}", status_code=303)  # the GET now shows "Thanks" and Undo


@router.post("/feedback/{token}/undo")
def undo_feedback(token: str, settings: AppSettings, form: FormData = Depends(verified_form)):
    with database(settings, write=True) as session:
        subscriber, paper, kind, payload = feedback_target(session, token, settings)
        forget_feedback(session, subscriber, paper.id)
        preferences = signed_path("preferences", subscriber, settings, issued_at=payload[ISSUED_AT])
        return page("feedback.html", paper=paper, kind=kind, label=LABELS[kind], state="undone",
                    scripts=[], preferences_url=preferences)
