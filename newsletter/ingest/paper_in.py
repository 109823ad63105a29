"""The one value every parser produces, and the keys papers are de-duplicated by."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime

_ARXIV_ID = re.compile(r"(\d{4}\.\d{4,5})(v\d+)?$|([a-z\-]+(\.[A-Z]{2})?/\d{7})(v\d+)?$")


@dataclass
class PaperIn:
    title: str
    abstract: str = ""
    arxiv_id: str | None = None
    authors: list[str] = field(default_factory=list)
    url: str = ""
    pdf_url: str = ""
    code_url: str = ""
    upvotes: int | None = None  # None: this source does not know
    comments: int | None = None
    keywords: list[str] = field(default_factory=list)
    published_at: datetime | None = None
    source: str = ""

    @property
    def title_key(self) -> str:
        return title_key(self.title)

    @property
    def external_id(self) -> str:
        if self.arxiv_id:
            return self.arxiv_id
        return "title:" + hashlib.sha1(self.title_key.encode()).hexdigest()[:16]


def clean_text(text: str) -> str:
    """Collapse white space (feeds wrap titles and abstracts over several lines)."""
    return " ".join(text.split())


def title_key(title: str) -> str:
    """Case-, accent- and punctuation-insensitive form of a title: the fallback dedupe key."""
    decomposed = unicodedata.normalize("NFKD", title)
    letters = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(re.sub(r"[^\w]+", " ", letters.casefold()).split())


def arxiv_id_from(text: str) -> str | None:
    """'http://arxiv.org/abs/2403.01234v2' or '2403.01234' -> '2403.01234' (version dropped)."""
    match = _ARXIV_ID.search(text.strip().rstrip("/"))
    if not match:
        return None
    return match.group(1) or match.group(3)


def arxiv_links(arxiv_id: str) -> tuple[str, str]:
    return f"https://arxiv.org/abs/{arxiv_id}", f"https://arxiv.org/pdf/{arxiv_id}"
