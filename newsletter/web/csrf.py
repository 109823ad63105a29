"""CSRF protection for the site's forms: a signed double-submit token.

Rendering a form gives the browser a random `pd_csrf` cookie (HttpOnly, SameSite=Lax) and puts a signed copy of it
in the form's hidden `csrf_token` field. A POST is accepted only when the field is a valid, recent signature of
the cookie sent with it: another site can make a browser send the cookie but cannot read or forge the field.
The RFC 8058 one-click unsubscribe endpoint is deliberately exempt (mail providers post without cookies).
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request
from fastapi.responses import Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.datastructures import FormData

from newsletter.errors import NewsletterError
from newsletter.web.forms import read_form
from newsletter.web.state import settings_of

COOKIE = "pd_csrf"
FIELD = "csrf_token"
MAX_AGE = 24 * 3600  # a form left open longer than a day must be reloaded


class CsrfError(NewsletterError):
    """A form was posted without a valid CSRF token (stale page, cookies off, or another site)."""


def _serializer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings_of(request).signing_key, salt="newsletter.csrf")


def form_token(request: Request) -> tuple[str, str | None]:
    """The token to embed in a form, and the cookie value to set when the browser has none yet."""
    current = request.cookies.get(COOKIE, "")
    fresh = None if len(current) >= 32 else secrets.token_urlsafe(32)
    return _serializer(request).dumps(fresh or current), fresh


def set_cookie(response: Response, request: Request, value: str) -> None:
    response.set_cookie(COOKIE, value, httponly=True, samesite="lax", secure=request.url.scheme == "https",
                        path="/", max_age=MAX_AGE * 30)


async def verified_form(request: Request) -> FormData:
    """FastAPI dependency for every form POST except one-click unsubscribe: the form, once its token checks out."""
    form = await read_form(request)
    given = form.get(FIELD)
    cookie = request.cookies.get(COOKIE, "")
    if not isinstance(given, str) or not given or not cookie:
        raise CsrfError("this form is missing its security token: reload the page (with cookies enabled) and try again")
    try:
        signed = _serializer(request).loads(given, max_age=MAX_AGE)
    except BadSignature:
        raise CsrfError("this form has expired or was not sent from this site: reload the page and try again") from None
    if not isinstance(signed, str) or not hmac.compare_digest(signed, cookie):
        raise CsrfError("this form was not sent from this site: reload the page and try again")
    return form
