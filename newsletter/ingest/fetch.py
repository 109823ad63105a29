"""A source's text: the bytes of a local file or an http(s) URL, size-capped, gzip undone, decoded as UTF-8.

Every failure is a FeedError naming the real cause: an HTTP status with what the server said (arXiv's error
message, an HTML page's title, a short text), an HTML page where a feed was expected, corrupt or oversized gzip,
text that is not UTF-8.
"""

from __future__ import annotations

import codecs
import gzip
import html
import io
import json
import re
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from newsletter.errors import FeedError
from newsletter.ingest.arxiv_atom import error_message
from newsletter.ingest.paper_in import clean_text

USER_AGENT = "paper-newsletter/0.1 (research-paper newsletter; polite: one request at a time)"
DEFAULT_MAX_BYTES = 50_000_000
DEFAULT_TIMEOUT = 30.0
GZIP_MAGIC = b"\x1f\x8b"
ERROR_BODY_BYTES = 64_000  # how much of an HTTP error's body is read to explain it
SUMMARY_CHARS = 160

_HTML_START = re.compile(r"\A\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*"
                         r"<(?:!doctype\s+html|html[\s>/]|head[\s>]|body[\s>])", re.IGNORECASE | re.DOTALL)
_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_HTML_HIDDEN = re.compile(r"<(script|style|head)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_HTML_TAG = re.compile(r"<[^>]*>")


def read_text(source: str, *, timeout: float = DEFAULT_TIMEOUT, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """The text of a local path or an http(s) URL, decoded (see `decode`)."""
    if is_url(source):
        data = http_get(source, timeout=timeout, max_bytes=max_bytes)
    else:
        data = read_file(source, max_bytes)
    return decode(data, source, max_bytes)


def is_url(source: str) -> bool:
    return source.lower().startswith(("http://", "https://"))


def read_file(source: str, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    path = Path(source)
    if not path.is_file():
        raise FeedError(source, "no such file")
    try:
        if path.stat().st_size > max_bytes:
            raise FeedError(source, f"larger than {_size(max_bytes)}")
        return path.read_bytes()
    except OSError as error:
        raise FeedError(source, f"could not read the file ({error.__class__.__name__}: {error.strerror})") from None


def http_get(url: str, *, timeout: float = DEFAULT_TIMEOUT, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The body of a GET (Content-Encoding undone by httpx), at most `max_bytes` of it.

    A status of 400 or more is a FeedError with the status and what the body says (see `explain_body`).
    """
    try:
        with httpx.stream("GET", url, timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
                          follow_redirects=True, headers={"User-Agent": USER_AGENT}) as response:
            if response.status_code >= 400:
                body = _read_capped(response, ERROR_BODY_BYTES, url, truncate=True)
                explanation = explain_body(body)
                raise FeedError(url, f"HTTP {response.status_code}" + (f": {explanation}" if explanation else ""))
            return _read_capped(response, max_bytes, url)
    except httpx.HTTPError as error:
        raise FeedError(url, f"could not fetch ({error.__class__.__name__}: {error})") from None


def _read_capped(response: httpx.Response, limit: int, url: str, truncate: bool = False) -> bytes:
    chunks, size = [], 0
    for chunk in response.iter_bytes():  # decoded: a gzip Content-Encoding is capped after decompression
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            if truncate:
                break
            raise FeedError(url, f"the response is larger than {_size(limit)}")
    return b"".join(chunks)[:limit] if truncate else b"".join(chunks)


def decode(data: bytes, source: str, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """UTF-8 text from `data`: gzip data (by its magic bytes, whatever the file is called) is decompressed, at
    most `max_bytes` of it; a byte-order mark is dropped."""
    if data.startswith(GZIP_MAGIC):
        data = gunzip(data, source, max_bytes)
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise FeedError(source, "not UTF-8 text") from None


def gunzip(data: bytes, source: str, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            plain = stream.read(max_bytes + 1)
    except (OSError, EOFError, zlib.error) as error:
        raise FeedError(source, f"corrupt gzip data ({error})") from None
    if len(plain) > max_bytes:
        raise FeedError(source, f"gzip data that expands beyond {_size(max_bytes)}")
    return plain


def html_summary(text: str) -> str | None:
    """When `text` is an HTML page: its title, else the start of its visible text ('' if none). Else None."""
    if not _HTML_START.match(text[:4096]):
        return None
    text = text[:65536]  # the title, or the first words, are near the top
    title = _HTML_TITLE.search(text)
    if title and _plain(title.group(1)):
        return _cut(_plain(title.group(1)))
    return _cut(_plain(_HTML_HIDDEN.sub(" ", text)))


def explain_body(data: bytes) -> str:
    """One line saying what an HTTP error's body says: arXiv's error message, a JSON {"error": ...}, an HTML
    page's title, or a short text as it is. Empty when it says nothing readable."""
    if data.startswith(GZIP_MAGIC):
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
                data = stream.read(ERROR_BODY_BYTES)
        except (OSError, EOFError, zlib.error):
            return ""
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff").strip()
    if not text:
        return ""
    arxiv = error_message(text)
    if arxiv:
        return f"arXiv API error: {arxiv}"
    page = html_summary(text)
    if page is not None:
        return f"an HTML page: {page}" if page else "an HTML page"
    if text.startswith("{"):
        try:
            error = json.loads(text).get("error")
        except (ValueError, AttributeError, RecursionError):
            error = None
        if isinstance(error, str) and error.strip():
            return _cut(error)
    if "<" not in text and len(text) <= 2 * SUMMARY_CHARS:
        return _cut(text)
    return ""


def _plain(fragment: str) -> str:
    return " ".join(html.unescape(_HTML_TAG.sub(" ", fragment)).split())


def _cut(text: str, limit: int = SUMMARY_CHARS) -> str:
    """One printable line (a server's text must not bring terminal escapes into a report), at most `limit`."""
    text = clean_text(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _size(limit: int) -> str:
    return f"{limit / 1_000_000:g} MB" if limit >= 1_000_000 else f"{limit} bytes"


class Pacer:
    """At least `delay` seconds between the end of one request to a host and the start of the next, across all
    threads of this process (arXiv asks for 3 s between API calls): requests to one key take turns."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._last: dict[str, float] = {}

    @contextmanager
    def turn(self, key: str, delay: float) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            pause = self._last.get(key, float("-inf")) + delay - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            try:
                yield
            finally:
                self._last[key] = time.monotonic()


PACER = Pacer()
