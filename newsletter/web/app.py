"""The FastAPI application: routers, security headers, and clear pages for expected errors."""

from __future__ import annotations

import logging

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from newsletter.errors import BadToken, InvalidInput, NotFound
from newsletter.web import admin, unsubscribe
from newsletter.web.pages import message_page

log = logging.getLogger("newsletter.web")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}


def create_app() -> FastAPI:
    app = FastAPI(title="Paper Digest", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(unsubscribe.router)
    app.include_router(admin.router)

    @app.get("/health", include_in_schema=False)
    def health() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.exception_handler(BadToken)
    async def bad_token(_request: Request, error: BadToken):
        return message_page("This link does not work", str(error), status_code=400)

    @app.exception_handler(NotFound)
    async def not_found(_request: Request, error: NotFound):
        return message_page("Not found", str(error), status_code=404)

    @app.exception_handler(InvalidInput)
    async def invalid(_request: Request, error: InvalidInput):
        return message_page("Please check your input", str(error), status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, error: HTTPException):
        return JSONResponse({"detail": error.detail}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, error: Exception):
        log.exception("unhandled error")
        return message_page("Something went wrong", "Please try again later.", status_code=500)

    return app


app = create_app()
