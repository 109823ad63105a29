"""Operator pages. Each needs the admin token from settings (Authorization: Bearer, or ?token=)."""

from __future__ import annotations

import hmac
from datetime import date, datetime, timezone

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse

from newsletter.compose import preview_email
from newsletter.config import get_settings
from newsletter.db import session_scope
from subscribers.profiles import get_subscriber


def require_admin(request: Request) -> None:
    expected = get_settings().admin_token
    header = request.headers.get("authorization", "")
    given = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else request.query_params.get("token", "")
    if not expected or not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(status_code=401, detail="admin token required",
                            headers={"WWW-Authenticate": "Bearer"})


router = APIRouter(dependencies=[Depends(require_admin)])


@router.get("/preview/{subscriber}")
def preview(subscriber: str, day: date | None = None, text: bool = False):
    """The email `subscriber` (id or address) gets for `day` (default today, UTC)."""
    settings = get_settings()
    with session_scope() as session:
        rendered, _ = preview_email(session, get_subscriber(session, subscriber),
                                    day or datetime.now(timezone.utc).date(), settings)
    if text:
        return PlainTextResponse(rendered.text)
    return HTMLResponse(rendered.html)
