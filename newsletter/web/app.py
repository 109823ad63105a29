"""The FastAPI application: routers, security headers, and clear pages for expected errors (never a traceback)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from newsletter.config import Settings
from newsletter.errors import BadToken, ExpiredToken, InvalidInput, NotFound, RateLimited
from newsletter.web import admin, archive, feedback, preferences, public, unsubscribe
from newsletter.web.csrf import CsrfError
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
HTTP_MESSAGES = {
    404: ("Not found", "There is no page at this address."),
    405: ("Not allowed", "This page cannot be used that way."),
}


def create_app(settings: Settings | None = None) -> FastAPI:
    """The web app for `settings` (default: read from the environment, as `newsletter serve` does)."""
    app = FastAPI(title="Paper Digest", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings or Settings()
    for module in (public, preferences, unsubscribe, feedback, archive, admin):
        app.include_router(module.router)
    app.include_router(admin.sessions)
    app.add_exception_handler(admin.SignedIn, admin.signed_in_redirect)
    app.mount("/static", StaticFiles(directory=TEMPLATES_DIR / "static"), name="static")

    @app.get("/health", include_in_schema=False)
    def health() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    add_error_pages(app)
    return app


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

