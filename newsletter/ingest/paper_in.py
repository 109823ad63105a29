"""The one value every parser produces, the keys papers are de-duplicated by, and the rules every value obeys
(white space collapsed, links http(s) only, arXiv ids without their version, one canonical page per paper)."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

# A new-style id (2403.01234, 0704.0001) or an old-style one (hep-th/9901001, math.GT/0309136), optionally
# followed by its version; as a whole string, or as the last part of an arxiv.org/abs/ or /pdf/ link.
_ID = r"(\d{4}\.\d{4,5}|[a-z][a-z\-]*(?:\.[A-Za-z\-]{2,})?/\d{7})(?:v\d+)?"
_BARE_ID = re.compile(rf"^(?:arxiv:)?{_ID}$", re.IGNORECASE)
_ARXIV_LINK = re.compile(rf"^https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf)/{_ID}(?:\.pdf)?/?$", re.IGNORECASE)
_DROPPED = {"Cc", "Cs"}
MAX_URL_CHARS = 2048
MAX_COUNT = 2**31 - 1  # counts are 32-bit integer columns
MAX_KEYWORDS = 40


@dataclass
class PaperIn:
    title: str
    abstract: str = ""
    arxiv_id: str | None = None
    authors: list[str] = field(default_factory=list)
    url: str = ""  # the paper's canonical page (see canonical_links); empty when no page is known
    pdf_url: str = ""
    code_url: str = ""
    upvotes: int | None = None  # None: this source does not know
    comments: int | None = None
    keywords: list[str] = field(default_factory=list)
    published_at: datetime | None = None
    source: str = ""
    tldr: str = ""  # a one-line summary (Hugging Face's ai_summary)
    thumbnail_url: str = ""
    project_url: str = ""
    organization: str = ""

    def __post_init__(self) -> None:
        # Whatever a parser put here, only http(s) links are kept and the arXiv links are the canonical ones.
        self.url, self.pdf_url = canonical_links(self.arxiv_id, self.url, self.pdf_url)
        self.code_url = safe_url(self.code_url)
        self.thumbnail_url = safe_url(self.thumbnail_url)
        self.project_url = safe_url(self.project_url)

    @property
    def title_key(self) -> str:
        return title_key(self.title)

    @property
    def external_id(self) -> str:
        if self.arxiv_id:
            return self.arxiv_id
        return title_external_id(self.title_key)


def title_external_id(key: str) -> str:
    return "title:" + hashlib.sha1(key.encode()).hexdigest()[:16]


def clean_text(text: str) -> str:
    """Collapse white space (feeds wrap titles and abstracts over several lines) and drop control characters.

    Dropped: control characters (NUL cannot be stored in PostgreSQL) and lone surrogates (not UTF-8).
    Markup is left as it is: a title such as "x<y" or "<b>for</b>" is text, escaped wherever it is shown.
    """
    if text.isprintable():
        return " ".join(text.split())
    return " ".join("".join(ch for ch in text if ch.isspace() or unicodedata.category(ch) not in _DROPPED).split())


def title_key(title: str) -> str:
    """Case-, accent- and punctuation-insensitive form of a title: the fallback dedupe key."""
    decomposed = unicodedata.normalize("NFKD", title)
    letters = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(re.sub(r"[^\w]+", " ", letters.casefold()).split())


def arxiv_id_from(text: str) -> str | None:
    """'http://arxiv.org/abs/2403.01234v2', '2403.01234v2' or 'arXiv:2403.01234' -> '2403.01234' (version dropped).

    Anything else is not an arXiv id: not arXiv's error links (http://arxiv.org/api/errors#..._for_1234.12345),
    not a number found somewhere inside another URL.
    """
    text = text.strip()
    match = _BARE_ID.match(text) or _ARXIV_LINK.match(text)
    return match.group(1) if match else None


def utc_time(raw: str) -> datetime:
    """An ISO 8601 time as an aware UTC datetime (a time without a zone is taken as UTC). ValueError if it is
    not one, or if it cannot be expressed in UTC (year 1 with a positive offset)."""
    moment = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    if moment.utcoffset() is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range") from None


def arxiv_links(arxiv_id: str) -> tuple[str, str]:
    return f"https://arxiv.org/abs/{arxiv_id}", f"https://arxiv.org/pdf/{arxiv_id}"


def canonical_links(arxiv_id: str | None, url: str = "", pdf_url: str = "") -> tuple[str, str]:
    """The paper's page and PDF. The rule: with an arXiv id, always its version-free arXiv abstract page and PDF
    (https://arxiv.org/abs/ID, https://arxiv.org/pdf/ID), whatever a feed linked to; without one, the page and
    PDF the feed names, if they are http(s) links; else empty. Never a search page."""
    if arxiv_id:
        return arxiv_links(arxiv_id)
    return safe_url(url), safe_url(pdf_url)


def safe_url(value: object) -> str:
    """`value` when it is an absolute http(s) URL with a host and nothing unprintable in it; else ''.

    Feeds are not trusted: `javascript:`, `data:`, scheme-relative and malformed links are dropped here, once, so
    no template or client ever gets one.
    """
    if not isinstance(value, str):
        return ""
    url = value.strip()
    if not url or len(url) > MAX_URL_CHARS or any(not ch.isprintable() or ch.isspace() for ch in url):
        return ""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # e.g. an invalid IPv6 host or port
        return ""
    if parts.scheme.lower() not in ("http", "https") or not host:
        return ""
    return url


def unique_keywords(*lists: list[str], limit: int = MAX_KEYWORDS) -> list[str]:
    """The keywords of all lists in order, each once (case-insensitive), at most `limit`."""
    seen: set[str] = set()
    merged: list[str] = []
    for keywords in lists:
        for keyword in keywords:
            keyword = clean_text(str(keyword))
            if keyword and keyword.casefold() not in seen:
                seen.add(keyword.casefold())
                merged.append(keyword)
    return merged[:limit]
