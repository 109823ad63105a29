"""Jinja2 rendering of the web pages (autoescaped)."""

from __future__ import annotations

from functools import lru_cache

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from newsletter.render.compile import TEMPLATES_DIR


@lru_cache(maxsize=1)
def _env() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES_DIR / "pages"), autoescape=select_autoescape(["html"]))


def page(name: str, status_code: int = 200, **context) -> HTMLResponse:
    return HTMLResponse(_env().get_template(name).render(**context), status_code=status_code)


def message_page(heading: str, message: str, status_code: int = 200) -> HTMLResponse:
    return page("message.html", status_code=status_code, heading=heading, message=message)
