"""MJML -> HTML -> inlined CSS, once per template; the result is a Jinja2 template filled per recipient."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote

import premailer
from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, select_autoescape
from mjml import mjml2html

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
_JINJA_EXPR = re.compile(r"\{\{(.*?)\}\}|\{%(.*?)%\}")


@lru_cache(maxsize=1)
def html_env() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html", "mjml"], default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def compile_mjml(source: str) -> str:
    """Compile MJML to HTML and inline its CSS. Jinja tags pass through untouched."""
    html = mjml2html(source, fonts={}, disable_comments=True)
    inlined = premailer.transform(
        html,
        keep_style_tags=True,  # media queries (mobile stacking, dark mode) must stay in <style>
        strip_important=False,
        disable_validation=True,
        allow_network=False,
        cssutils_logging_level=50,
    )
    # premailer percent-encodes attribute values such as href="{{ paper.url }}"; undo it inside Jinja tags only.
    return _JINJA_EXPR.sub(lambda m: unquote(m.group(0)), inlined)


@lru_cache(maxsize=16)
def compiled_html_template(name: str = "edition.mjml") -> Template:
    """The compiled, inlined template for `name`, built on first use and reused for every recipient."""
    source = (TEMPLATES_DIR / name).read_text(encoding="utf-8")
    return html_env().from_string(compile_mjml(source))


def text_template(name: str = "edition.txt") -> Template:
    return _text_env().get_template(name)


@lru_cache(maxsize=1)
def _text_env() -> Environment:
    # Plain text is never HTML-escaped; it goes into a text/plain body, never into a header.
    return Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=False, undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
