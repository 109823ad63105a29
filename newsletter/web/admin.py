"""Operator pages. Each needs the admin token from settings: `Authorization: Bearer`, or a browser session.

A browser signs in by posting the token to /admin/login (the form on every 401 admin page) or by opening an
admin page once with `?token=` (swapped at once, by a redirect, for the session and dropped from the address).
A session is a random value in an HttpOnly, SameSite=Lax cookie; the server keeps only an HMAC of it keyed with
the admin token (table admin_session), so it is checked, and expires (after 12 hours), on the server: signing
out deletes it, and changing the token signs every browser out. Wrong tokens (form, `?token=`, Bearer) are
counted per client address: after NEWSLETTER_ADMIN_LOGIN_LIMIT_PER_IP of them in an hour, every attempt from
there is refused (429) before it is even compared.

`/admin` lists recent editions with their delivery counts; `/admin/preview` shows exactly the email a subscriber
gets for a day: headers, the HTML at desktop and mobile (375 px) width, and the text part.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import date, timedelta
from email import message_from_bytes
from email.policy import default
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from sqlmodel import Session, col, delete, select

from newsletter.clock import edition_day, today, utcnow
from newsletter.config import Settings
from newsletter.delivery.preview import preview_email
from newsletter.edition_control import delivery_counts_of
from newsletter.models import AdminSession, DeliveryStatus, Edition
from newsletter.web import forms, ratelimit
from newsletter.web.pages import page
from newsletter.web.state import AppSettings, database, settings_of
from subscribers.profiles import get_subscriber

RECENT_EDITIONS = 30
# The preview page frames the email HTML from this same origin; everything else stays unframeable.
PREVIEW_PAGE_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; frame-src 'self'; "
                    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
FRAMED_EMAIL_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                                   "img-src https: data:; frame-ancestors 'self'; base-uri 'none'",
                        "X-Frame-Options": "SAMEORIGIN"}


SESSION_COOKIE = "newsletter_admin"
SESSION_SECONDS = 12 * 3600


class SignedIn(Exception):
    """A valid `?token=`: answered with a redirect to the same page without it, setting the session cookie."""

    def __init__(self, location: str):
        self.location = location


def require_admin(request: Request) -> None:
    settings = settings_of(request)
    if not settings.admin_token:
        raise _unauthorized()
    header = request.headers.get("authorization", "")
    if header.startswith("Bearer "):
        if _admin_token_given(request, header.removeprefix("Bearer ").strip()):
            return
        raise _unauthorized()
    cookie = request.cookies.get(SESSION_COOKIE, "")
    if cookie and session_is_valid(cookie, settings):
        return
    token = request.query_params.get("token", "")
    if token and request.method == "GET" and _admin_token_given(request, token):
        query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
        raise SignedIn(request.url.path + (f"?{query}" if query else ""))
    raise _unauthorized()


def _admin_token_given(request: Request, given: str) -> bool:
    """Whether `given` is the admin token. Wrong ones are counted per client; past the limit, RateLimited."""
    settings = settings_of(request)
    key = f"admin-login:{ratelimit.client_ip(request)}"
    ratelimit.refuse_if_over(request, settings, key, settings.admin_login_limit_per_ip)
    expected = settings.admin_token
    if expected and given and hmac.compare_digest(given.encode(), expected.encode()):
        return True
    ratelimit.check(request, settings, key, settings.admin_login_limit_per_ip)
    return False


def _unauthorized() -> HTTPException:
    return HTTPException(status_code=401, detail="This page needs the admin token.",
                         headers={"WWW-Authenticate": "Bearer"})


def _session_hash(cookie: str, settings: Settings) -> str:
    """What the server keeps of a session: an HMAC of the cookie's value keyed with the admin token."""
    return hmac.new(settings.admin_token.encode(), cookie.encode(), hashlib.sha256).hexdigest()


def start_session(settings: Settings) -> str:
    """A new session (stored, expiring in SESSION_SECONDS); returns the cookie's value. Expired rows go."""
    cookie = secrets.token_urlsafe(32)
    now = utcnow()
    with database(settings, write=True) as session:
        session.exec(delete(AdminSession).where(col(AdminSession.expires_at) <= now))
        session.add(AdminSession(token_hash=_session_hash(cookie, settings), created_at=now,
                                 expires_at=now + timedelta(seconds=SESSION_SECONDS)))
    return cookie


def session_is_valid(cookie: str, settings: Settings) -> bool:
    if len(cookie) > 100:
        return False
    with database(settings) as session:
        found = session.exec(select(AdminSession.id).where(
            col(AdminSession.token_hash) == _session_hash(cookie, settings),
            col(AdminSession.expires_at) > utcnow())).first()
    return found is not None


def end_session(cookie: str, settings: Settings) -> None:
    with database(settings, write=True) as session:
        session.exec(delete(AdminSession).where(col(AdminSession.token_hash) == _session_hash(cookie, settings)))


def signed_in(request: Request, location: str) -> RedirectResponse:
    response = RedirectResponse(location, status_code=303)
    response.set_cookie(SESSION_COOKIE, start_session(settings_of(request)), max_age=SESSION_SECONDS, path="/",
                        httponly=True, samesite="lax", secure=request.url.scheme == "https")
    return response


async def signed_in_redirect(request: Request, error: Exception) -> RedirectResponse:
    assert isinstance(error, SignedIn)
    return signed_in(request, error.location)


def login_page(status_code: int = 401, error: str = "") -> HTMLResponse:
    return page("admin_login.html", status_code=status_code, error=error, headers={"WWW-Authenticate": "Bearer"})


sessions = APIRouter()  # signing in and out: open to anyone, like the 401 page


@sessions.post("/admin/login")
async def login(request: Request):
    form = await forms.read_form(request)
    token = form.get("token", "")
    if not isinstance(token, str) or not _admin_token_given(request, token):
        return login_page(error="That is not the admin token.")
    return signed_in(request, "/admin")


@sessions.post("/admin/logout")
def logout(request: Request):
    """Ends the session on the server (the cookie's value no longer signs anyone in) and drops the cookie."""
    cookie = request.cookies.get(SESSION_COOKIE, "")
    settings = settings_of(request)
    if cookie and settings.admin_token:
        end_session(cookie, settings)
    response = RedirectResponse("/admin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


router = APIRouter(dependencies=[Depends(require_admin)])


def admin_url(path: str, **params) -> str:
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return f"{path}?{query}" if query else path


def recent_editions(session: Session) -> list[dict]:
    editions = session.exec(select(Edition).order_by(col(Edition.date).desc()).limit(RECENT_EDITIONS)).all()
    counts = delivery_counts_of(session, [e.id for e in editions if e.id is not None])
    return [{"date": e.date, "status": e.status, "counts": counts[e.id], "total": sum(counts[e.id].values())}
            for e in editions if e.id is not None]


@router.get("/admin")
def admin_home(settings: AppSettings):
    with database(settings) as session:
        editions = recent_editions(session)
    for edition in editions:
        edition["archive_url"] = f"/archive/{edition['date'].isoformat()}"
    return page("admin_index.html", editions=editions, statuses=[s.value for s in DeliveryStatus], today=today())


def _preview(subscriber: str, day: date | None, settings: Settings):
    day = edition_day(day) if day is not None else today()  # 0001-01-01 or 9999-12-31: a clear 422, not a 500
    with database(settings) as session:
        found = get_subscriber(session, subscriber)
        rendered, message = preview_email(session, found, day, settings)
        return found.email, rendered, message


@router.get("/admin/preview")
def admin_preview(settings: AppSettings, subscriber: str = "", day: date | None = Query(None, alias="date")):
    day = edition_day(day) if day is not None else today()
    context: dict[str, Any] = {"subscriber": subscriber, "day": day, "home_url": "/admin", "found": bool(subscriber)}
    if subscriber:
        email, rendered, message = _preview(subscriber, day, settings)
        params = {"subscriber": subscriber, "date": day.isoformat()}
        context.update(
            email=email, subject=rendered.subject, text=rendered.text, size=len(message),
            message_headers=[(name, str(value)) for name, value in message_from_bytes(message, policy=default).items()],
            html_url=admin_url("/admin/preview/html", **params),
            eml_url=admin_url("/admin/preview.eml", **params),
        )
    return page("admin_preview.html", headers={"Content-Security-Policy": PREVIEW_PAGE_CSP}, **context)


@router.get("/admin/preview/html")
def admin_preview_html(settings: AppSettings, subscriber: str, day: date | None = Query(None, alias="date")):
    """The email's HTML alone, framed by the preview page."""
    _, rendered, _ = _preview(subscriber, day, settings)
    return HTMLResponse(rendered.html, headers=FRAMED_EMAIL_HEADERS)


@router.get("/admin/preview.eml")
def admin_preview_eml(settings: AppSettings, subscriber: str, day: date | None = Query(None, alias="date")):
    """The whole message as it would go to the SMTP server."""
    _, _, message = _preview(subscriber, day, settings)
    filename = f"preview-{(day or today()).isoformat()}.eml"
    return Response(message, media_type="message/rfc822",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/preview/{subscriber}")
def preview(subscriber: str, settings: AppSettings, day: date | None = None, text: bool = False):
    """The older single-part preview (kept for scripts): the email's HTML, or its text with ?text=1."""
    _, rendered, _ = _preview(subscriber, day, settings)
    if text:
        return PlainTextResponse(rendered.text)
    return HTMLResponse(rendered.html)
