"""The FastAPI application: routers, security headers, and clear pages for expected errors (never a traceback)."""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from newsletter.config import Settings
from newsletter.errors import BadToken, ExpiredToken, InvalidInput, NotFound, RateLimited
from newsletter.web import admin, archive, feedback, preferences, public, unsubscribe
from newsletter.web.csrf import CsrfError
from newsletter.web.forms import MAX_BODY_BYTES, MalformedRequest
from newsletter.web.pages import message_page, page
from templates import TEMPLATES_DIR

log = logging.getLogger("newsletter.web")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
                               "script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}
HSTS = "max-age=31536000"  # sent when NEWSLETTER_BASE_URL is https
# Pages reached with a signed link, and the admin pages: never stored by a browser or a shared cache.
PRIVATE_PREFIXES = ("/confirm/", "/preferences/", "/unsubscribe/", "/view/", "/feedback/", "/renew/", "/admin",
                    "/preview/")
HTTP_MESSAGES = {
    400: ("Bad request", "This request could not be read."),
    404: ("Not found", "There is no page at this address."),
    405: ("Not allowed", "This page cannot be used that way."),
}


def create_app(settings: Settings | None = None) -> FastAPI:
    """The web app for `settings` (default: read from the environment, as `newsletter serve` does)."""
    app = FastAPI(title="Paper Digest", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings = settings or Settings()
    for module in (public, preferences, unsubscribe, feedback, archive, admin):
        app.include_router(module.router)
    app.include_router(admin.sessions)
    app.add_exception_handler(admin.SignedIn, admin.signed_in_redirect)
    app.mount("/static", StaticFiles(directory=TEMPLATES_DIR / "static"), name="static")

    @app.get("/health", include_in_schema=False)
    def health() -> PlainTextResponse:
        return PlainTextResponse("ok")

    add_error_pages(app)
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)  # the last added is the outermost
    app.add_middleware(ResponseHeaders, hsts=settings.base_url.lower().startswith("https://"))
    proxies = [p.strip() for p in settings.trusted_proxies.split(",") if p.strip()]
    if proxies:  # outermost: every part of the app sees the client the proxy names
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=proxies)
    keep_secrets_out_of_access_log()
    return app


class ResponseHeaders:
    """The security headers on every response; `Cache-Control: no-store` on pages reached with a signed link
    (and admin pages); HSTS when the site is served over https. Plain ASGI: no per-request task or copy."""

    def __init__(self, app: ASGIApp, hsts: bool = False):
        self.app = app
        self.common = [(name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]
        if hsts:
            self.common.append((b"strict-transport-security", HSTS.encode()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        private = scope["path"].startswith(PRIVATE_PREFIXES)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in self.common if name not in present]
                if private:
                    headers = [(n, v) for n, v in headers if n.lower() != b"cache-control"]
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


class RequestTooLarge(MalformedRequest):
    """A request body over MAX_BODY_BYTES: answered 413 before it is read whole."""


class BodyLimit:
    """Refuse request bodies larger than `limit` bytes (no form of ours comes near): by their Content-Length at
    once, or while reading a body sent without one."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length and (not length.isdigit() or int(length) > self.limit):
            response = message_page("Too large", "This request is larger than any form on this site sends.",
                                    status_code=413)
            await response(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise RequestTooLarge("this request is larger than any form on this site sends")
            return message

        await self.app(scope, counted, send)


_SECRET_IN_PATH = re.compile(r"(/(?:confirm|preferences|unsubscribe|view|feedback|renew/\w+)/)[^/?\s\"]+")
_SECRET_IN_QUERY = re.compile(r"([?&]token=)[^&\s\"]*")


def redact(path: str) -> str:
    """A request path as it may be logged: signed tokens and `?token=` values replaced by `[redacted]`."""
    return _SECRET_IN_QUERY.sub(r"\1[redacted]", _SECRET_IN_PATH.sub(r"\1[redacted]", path))


class RedactSecrets(logging.Filter):
    """On uvicorn's access log: the admin token (`?token=`) and the signed tokens in link paths never reach it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3 and isinstance(record.args[2], str):
            record.args = (*record.args[:2], redact(record.args[2]), *record.args[3:])
        return True


def keep_secrets_out_of_access_log() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactSecrets) for f in access.filters):
        access.addFilter(RedactSecrets())


def add_error_pages(app: FastAPI) -> None:
    @app.exception_handler(ExpiredToken)
    async def expired_token(request: Request, error: ExpiredToken):
        renewable = error.purpose in public.RENEWABLE
        return page("expired.html", status_code=400, request=request if renewable else None,
                    action=f"/renew/{error.purpose}/{error.token}" if renewable else "")

    @app.exception_handler(BadToken)
    async def bad_token(_request: Request, error: BadToken):
        return message_page("This link does not work", f"Sorry, {error}. Links in our emails work when opened "
                            "exactly as sent; the newest email always has working ones.", status_code=400)

    @app.exception_handler(NotFound)
    async def not_found(_request: Request, error: NotFound):
        return message_page("Not found", str(error), status_code=404)

    @app.exception_handler(InvalidInput)
    async def invalid(_request: Request, error: InvalidInput):
        return message_page("Please check your input", str(error), status_code=422)

    @app.exception_handler(RequestTooLarge)
    async def too_large(_request: Request, error: RequestTooLarge):
        return message_page("Too large", str(error), status_code=413)

    @app.exception_handler(MalformedRequest)
    async def malformed(_request: Request, error: MalformedRequest):
        return message_page("This request could not be read", f"Nothing was changed: {error}", status_code=400)

    @app.exception_handler(CsrfError)
    async def csrf_failed(_request: Request, error: CsrfError):
        return message_page("Please reload the page", f"Nothing was changed: {error}", status_code=403)

    @app.exception_handler(RateLimited)
    async def rate_limited(_request: Request, error: RateLimited):
        minutes = max(1, error.retry_after // 60)
        return message_page("Too many requests", f"Please try again in about {minutes} minutes.",
                            status_code=429, headers={"Retry-After": str(error.retry_after)})

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, error: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in error.errors()[:3])
        return message_page("Please check the address", f"This request is not valid ({problems}).", status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, error: HTTPException):
        if error.status_code == 401:  # only admin pages ask for credentials
            return admin.login_page()
        heading, message = HTTP_MESSAGES.get(error.status_code, ("Error", str(error.detail)))
        return message_page(heading, message, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, error: Exception):
        log.exception("unhandled error")
        return message_page("Something went wrong", "Please try again later.", status_code=500,
                            headers=SECURITY_HEADERS)  # this response bypasses the middleware

