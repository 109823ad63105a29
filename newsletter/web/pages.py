"""Jinja2 rendering of the web pages (autoescaped). Pages with a form get a CSRF token (see csrf.py)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from newsletter.web import csrf
from templates import TEMPLATES_DIR


@lru_cache(maxsize=1)
def _env() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES_DIR / "pages"), autoescape=select_autoescape(["html"]),
                       trim_blocks=True, lstrip_blocks=True)


def page(name: str, status_code: int = 200, request: Request | None = None, headers: Mapping[str, str] | None = None,
         **context) -> HTMLResponse:
    """Render templates/pages/`name`. Give `request` when the page has a form: it then carries a CSRF token."""
    fresh_cookie = None
    if context.get("errors"):  # the first field with an error gets the focus (and so is scrolled into view)
        context.setdefault("focus", next(iter(context["errors"])))
    if request is not None:
        context["csrf_token"], fresh_cookie = csrf.form_token(request)
    response = HTMLResponse(_env().get_template(name).render(**context), status_code=status_code, headers=headers)
    if fresh_cookie and request is not None:
        csrf.set_cookie(response, request, fresh_cookie)
    return response


CSRF_PLACEHOLDER = "__csrf_token_placeholder__"


def render(name: str, **context) -> str:
    """templates/pages/`name` as text (for pages rendered once and served many times: see form_page)."""
    return _env().get_template(name).render(**context)


def form_page(request: Request, html: str, status_code: int = 200) -> HTMLResponse:
    """A page rendered once ahead (with csrf_token=CSRF_PLACEHOLDER) served with this browser's CSRF token: the
    per-request work of a page with a form, without rendering it again."""
    token, fresh_cookie = csrf.form_token(request)
    response = HTMLResponse(html.replace(CSRF_PLACEHOLDER, token), status_code=status_code)
    if fresh_cookie:
        csrf.set_cookie(response, request, fresh_cookie)
    return response


def message_page(heading: str, message: str, status_code: int = 200, headers: Mapping[str, str] | None = None,
                 **context) -> HTMLResponse:
    """A page with one heading and one paragraph (optionally one link: link_url, link_label)."""
    return page("message.html", status_code=status_code, headers=headers, heading=heading,
                message=sentence(message), **context)


def sentence(text: str) -> str:
    """Error messages are written lower-case for one-line CLI output; on a page they start a sentence."""
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."
