"""MJML -> HTML -> inlined CSS, once per template; the result is a Jinja2 template filled per recipient.

The compiled shell is made mail-ready once, so filling it is all the per-recipient work: CRLF line endings,
lines far below SMTP's 998-octet limit, and only ASCII in the shell (non-ASCII values become character
references when filled), so the HTML part can travel as 7bit with no transfer encoding at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache, partial
from typing import NamedTuple
from urllib.parse import unquote

import premailer
from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, select_autoescape
from markupsafe import Markup, escape
from mjml import mjml2html

from newsletter.render.context import wrap
from templates import TEMPLATES_DIR

_JINJA_EXPR = re.compile(r"\{\{(.*?)\}\}|\{%(.*?)%\}", re.DOTALL)
_MJML_STYLE = re.compile(r"<style(?=[\s>])")
_DOCTYPE = re.compile(r"\s*<!doctype\s", re.IGNORECASE)
# Where a line may be broken without changing the page: before table, row, cell and block tags and conditional
# comments (white space there never shows; MJML sets font-size:0 around inline-block columns), and at the space
# before an attribute inside a tag (any white space separates attributes).
_BREAK_AT = re.compile(r'(?=<(?:/?table|/?tbody|/?tr|/?td|/?div[ >]|!--\[if|!\[endif|style|/style|meta|title'
                       r'|/head|body))| (?=(?:style|href|class)=")')
STATIC_LINE = 400  # longest line of the compiled shell, counting each {{ value }} as VALUE_WIDTH characters
VALUE_WIDTH = 150  # long text values are themselves broken into lines (the `lines` filter); URLs are shorter


def compile_mjml(source: str, css: str = "") -> str:
    """Compile MJML to HTML and inline `css` into it. Jinja tags pass through untouched.

    MJML's own reset and column styles stay in <style> as MJML wrote them; `css` is inlined (premailer)
    and only what cannot be inlined (media queries: mobile, dark mode) is kept in a <style> block.
    """
    html = mjml2html(source.replace("\r\n", "\n"), fonts={}, disable_comments=True)  # mrml rejects CR
    html = _MJML_STYLE.sub('<style data-premailer="ignore"', html)
    inlined = premailer.transform(
        html,
        css_text=css or None,
        keep_style_tags=False,
        strip_important=False,
        disable_validation=True,
        allow_network=False,
        cssutils_logging_level=50,
    )
    # premailer percent-encodes attribute values such as href="{{ paper.url }}"; undo it inside Jinja tags only.
    inlined = _JINJA_EXPR.sub(lambda m: unquote(m.group(0)), inlined)
    # premailer (lxml) drops MJML's doctype, and without one clients render in quirks mode: put it back.
    if not _DOCTYPE.match(inlined):
        inlined = "<!doctype html>\n" + inlined
    return mail_ready(inlined)


def mail_ready(html: str) -> str:
    """Lines of at most STATIC_LINE characters where the markup allows, CRLF, ASCII (character references)."""
    lines = html.replace("\r\n", "\n").split("\n")
    html = "\n".join(piece for line in lines for piece in _short_lines(line))
    return html.encode("ascii", "xmlcharrefreplace").decode("ascii").replace("\n", "\r\n")


def _short_lines(line: str, limit: int = STATIC_LINE) -> list[str]:
    """`line` cut greedily at the break points of _BREAK_AT so that pieces stay under `limit` where possible."""
    pieces, start, last = [], 0, None  # last: (end of the piece, start of the next) at the latest break point
    for match in _BREAK_AT.finditer(line):
        if _width(line[start:match.start()]) > limit and last is not None and last[0] > start:
            pieces.append(line[start:last[0]])
            start = last[1]
        last = (match.start(), match.end())
    if _width(line[start:]) > limit and last is not None and last[0] > start:
        pieces.append(line[start:last[0]])
        start = last[1]
    pieces.append(line[start:])
    return pieces


def _width(text: str) -> int:
    return len(text) + VALUE_WIDTH * text.count("{{")


@lru_cache(maxsize=8192, typed=True)  # typed: Markup("a&amp;b") and "a&amp;b" are equal strings, not equal HTML
def lines(value) -> Markup:
    """Escaped text broken at spaces every 100 characters or so (for text content: a line break is a space)."""
    return ascii_html(Markup(wrap(str(escape(value)), 100, "", "\r\n")))


def ascii_html(value):
    """Every value filled in (Jinja's finalize): non-ASCII text escaped and written as character references.

    Cheaper than converting the whole page, and it keeps the filled HTML ASCII like the compiled shell.
    """
    if isinstance(value, str) and not value.isascii():
        return Markup(str(escape(value)).encode("ascii", "xmlcharrefreplace").decode("ascii"))
    return value


@lru_cache(maxsize=16)
def compiled_html_template(name: str = "edition.mjml") -> Template:
    """The compiled, inlined template for `name`, built on first use and reused for every recipient."""
    return with_paper_fragments(html_env(), compile_mjml(*template_sources(name)), Markup)


# `{# paper fragment NAME #}...{# end fragment #}` marks the part of a paper's block that is the same for every
# recipient (title, authors, abstract, links: not the rank, the reasons or the feedback links). It is rendered
# once per paper and reused; to a template rendered from source, the markers are plain comments.
# Both environments trim the line break after a comment (trim_blocks): so does the cut.
_FRAGMENT = re.compile(r"\{#\s*paper fragment (\w+)\s*#\}(?:\r?\n)?(.*?)\{#\s*end fragment\s*#\}(?:\r?\n)?", re.DOTALL)


class SharedPaper(NamedTuple):
    """What a paper fragment may use: nothing that differs between recipients."""

    title: str
    url: str
    pdf_url: str
    code_url: str
    authors_line: str
    upvotes: int
    snippet: str
    tldr: str
    thumbnail_url: str
    project_url: str
    organization: str
    line: str


def with_paper_fragments(env: Environment, source: str, result: type = str) -> Template:
    """`source` as a template whose paper fragments are filters of `env` (`{{ paper | NAME }}`): a filter is
    called directly, where a global function would go through Jinja's context for every call."""

    def extract(match: re.Match) -> str:
        name, body = match.groups()
        env.filters[name] = _cached_fragment(env.from_string(body), result)
        return f"{{{{ paper | {name} }}}}"

    return env.from_string(_FRAGMENT.sub(extract, source))


def _cached_fragment(template: Template, result: type) -> Callable:
    @lru_cache(maxsize=4096)
    def render(*fields) -> str:
        return result(template.render(paper=SharedPaper(*fields)))

    def fragment(paper) -> str:
        return render(paper.title, paper.url, paper.pdf_url, paper.code_url, paper.authors_line, paper.upvotes,
                      paper.snippet, paper.tldr, paper.thumbnail_url, paper.project_url, paper.organization,
                      paper.line)

    fragment.cache_clear = render.cache_clear  # type: ignore[attr-defined]  # a filter that can be reset
    fragment.is_paper_fragment = True  # type: ignore[attr-defined]
    return fragment


def clear_value_caches() -> None:
    """Forget every rendered paper fragment and wrapped text (benchmarks measure the cold cost with this)."""
    compiled_html_template(), text_template()  # both compiled: their fragments are registered
    for env in (html_env(), _text_env()):
        for value in env.filters.values():
            if getattr(value, "is_paper_fragment", False):
                value.cache_clear()
    lines.cache_clear()
    wrap.cache_clear()


def template_sources(name: str = "edition.mjml") -> tuple[str, str]:
    """The MJML source and its stylesheet (`edition.mjml` -> `edition.css`, optional)."""
    path = TEMPLATES_DIR / name
    css = path.with_suffix(".css")
    return path.read_text(encoding="utf-8"), css.read_text(encoding="utf-8") if css.exists() else ""


@lru_cache(maxsize=1)
def html_env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html", "mjml"], default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        newline_sequence="\r\n",
        keep_trailing_newline=True,
        finalize=ascii_html,
    )
    env.filters["lines"] = lines
    return env


@lru_cache(maxsize=16)
def text_template(name: str = "edition.txt") -> Template:
    """Loaded once (the loader would otherwise check the file's modification time for every recipient)."""
    return with_paper_fragments(_text_env(), (TEMPLATES_DIR / name).read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _text_env() -> Environment:
    # Plain text is never HTML-escaped; it goes into a text/plain body, never into a header.
    env = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=False, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, newline_sequence="\r\n")
    env.filters["wrap"] = partial(wrap, newline="\r\n")
    return env
