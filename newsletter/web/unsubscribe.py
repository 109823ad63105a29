"""GET shows a one-button page (a GET never unsubscribes: link scanners follow GETs); POST unsubscribes.

The POST also serves RFC 8058 one-click requests from mail providers: body `List-Unsubscribe=One-Click`, no
cookies, no CSRF token, answered 200 without a redirect.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from newsletter.web.pages import message_page, page
from newsletter.web.state import AppSettings, database
from subscribers.consent import subscriber_for_token, unsubscribe

router = APIRouter()


@router.get("/unsubscribe/{token}")
def confirm_unsubscribe(token: str, request: Request, settings: AppSettings):
    with database(settings) as session:
        subscriber, _ = subscriber_for_token(session, "unsubscribe", token, settings)
        return page("unsubscribe.html", email=subscriber.email, action=str(request.url.path))


@router.post("/unsubscribe/{token}")
def do_unsubscribe(token: str, settings: AppSettings):
    with database(settings, write=True) as session:
        subscriber, _ = subscriber_for_token(session, "unsubscribe", token, settings)
        unsubscribe(session, subscriber)
        email = subscriber.email
    return message_page("You are unsubscribed", f"{email} will receive no more emails from Paper Digest.",
                        link_url="/", link_label="Changed your mind? Subscribe again")
