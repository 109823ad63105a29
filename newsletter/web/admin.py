"""Operator pages. Each needs the admin token from settings (Authorization: Bearer, or ?token=).

`/admin` lists recent editions with their delivery counts; `/admin/preview` shows exactly the email a subscriber
gets for a day: headers, the HTML at desktop and mobile (375 px) width, and the text part.
"""

from __future__ import annotations

import hmac
from datetime import date, datetime, timezone
from email import message_from_bytes
from email.policy import default
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from sqlmodel import Session, func, select

from newsletter.compose import preview_email
from newsletter.config import get_settings
from newsletter.db import session_scope
from newsletter.models import Delivery, DeliveryStatus, Edition
from newsletter.web.pages import page
from subscribers.profiles import get_subscriber

RECENT_EDITIONS = 30
# The preview page frames the email HTML from this same origin; everything else stays unframeable.
PREVIEW_PAGE_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; frame-src 'self'; "
                    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
FRAMED_EMAIL_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
                                                   "frame-ancestors 'self'; base-uri 'none'",
                        "X-Frame-Options": "SAMEORIGIN"}


def require_admin(request: Request) -> None:
    expected = get_settings().admin_token
    header = request.headers.get("authorization", "")
    given = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else request.query_params.get("token", "")
    if not expected or not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(status_code=401, detail="This page needs the admin token.",
                            headers={"WWW-Authenticate": "Bearer"})


router = APIRouter(dependencies=[Depends(require_admin)])


def today() -> date:
    return datetime.now(timezone.utc).date()


def admin_url(request: Request, path: str, **params) -> str:
    """A link to another admin page, carrying the ?token= the operator came with (a browser sends no Bearer)."""
    if "token" in request.query_params:
        params["token"] = request.query_params["token"]
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return f"{path}?{query}" if query else path


def recent_editions(session: Session) -> list[dict]:
    editions = session.exec(select(Edition).order_by(Edition.date.desc()).limit(RECENT_EDITIONS)).all()
    counts: dict[int, dict[str, int]] = {}
    if editions:
        rows = session.exec(select(Delivery.edition_id, Delivery.status, func.count(Delivery.id))
                            .where(Delivery.edition_id.in_([e.id for e in editions]))
                            .group_by(Delivery.edition_id, Delivery.status)).all()
        for edition_id, status, count in rows:
            counts.setdefault(edition_id, {})[status] = count
    return [{"date": e.date, "status": e.status, "counts": counts.get(e.id, {}),
             "total": sum(counts.get(e.id, {}).values())} for e in editions]


@router.get("/admin")
def admin_home(request: Request):
    with session_scope() as session:
        editions = recent_editions(session)
    for edition in editions:
        edition["archive_url"] = f"/archive/{edition['date'].isoformat()}"
    return page("admin_index.html", editions=editions, statuses=[s.value for s in DeliveryStatus],
                token=request.query_params.get("token", ""), today=today())


def _preview(subscriber: str, day: date | None):
    with session_scope() as session:
        found = get_subscriber(session, subscriber)
        rendered, message = preview_email(session, found, day or today(), get_settings())
        return found.email, rendered, message


@router.get("/admin/preview")
def admin_preview(request: Request, subscriber: str = "", day: date | None = Query(None, alias="date")):
    day = day or today()
    context = {"subscriber": subscriber, "day": day, "token": request.query_params.get("token", ""),
               "home_url": admin_url(request, "/admin"), "found": bool(subscriber)}
    if subscriber:
        email, rendered, message = _preview(subscriber, day)
        params = {"subscriber": subscriber, "date": day.isoformat()}
        context.update(
            email=email, subject=rendered.subject, text=rendered.text, size=len(message),
            message_headers=[(name, str(value)) for name, value in message_from_bytes(message, policy=default).items()],
            html_url=admin_url(request, "/admin/preview/html", **params),
            eml_url=admin_url(request, "/admin/preview.eml", **params),
        )
    return page("admin_preview.html", headers={"Content-Security-Policy": PREVIEW_PAGE_CSP}, **context)


@router.get("/admin/preview/html")
def admin_preview_html(subscriber: str, day: date | None = Query(None, alias="date")):
    """The email's HTML alone, framed by the preview page."""
    _, rendered, _ = _preview(subscriber, day)
    return HTMLResponse(rendered.html, headers=FRAMED_EMAIL_HEADERS)


@router.get("/admin/preview.eml")
def admin_preview_eml(subscriber: str, day: date | None = Query(None, alias="date")):
    """The whole message as it would go to the SMTP server."""
    _, _, message = _preview(subscriber, day)
    filename = f"preview-{(day or today()).isoformat()}.eml"
    return Response(message, media_type="message/rfc822",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/preview/{subscriber}")
def preview(subscriber: str, day: date | None = None, text: bool = False):
    """The older single-part preview (kept for scripts): the email's HTML, or its text with ?text=1."""
    _, rendered, _ = _preview(subscriber, day)
    if text:
        return PlainTextResponse(rendered.text)
    return HTMLResponse(rendered.html)
