"""Every link the newsletter hands out, in one place: signed links to the web app, one per token purpose.

Each token purpose is served at `/<purpose>/<token>` (see newsletter.web); paths are relative to the site, URLs
absolute on `NEWSLETTER_BASE_URL`. Nothing here touches the database: links are made from a subscriber's id and
address (the token binds both, see subscribers.tokens).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

from newsletter.config import Settings
from subscribers.tokens import make_token


class Addressee(Protocol):
    """What a link needs of a subscriber (a Subscriber row, or anything with these two fields)."""

    @property
    def id(self) -> int: ...

    @property
    def email(self) -> str: ...


@dataclass
class Links:
    """The links every edition email carries in its footer."""

    unsubscribe_url: str
    preferences_url: str = ""
    view_url: str = ""
    archive_url: str = ""


def absolute_url(path: str, settings: Settings) -> str:
    """`path` ("/archive") on the site's public address."""
    return f"{settings.base_url.rstrip('/')}{path}"


def signed_path(purpose: str, subscriber: Addressee, settings: Settings, extra: dict | None = None,
                issued_at: int | None = None) -> str:
    """The site's path for a signed link of `purpose` for this subscriber. `issued_at` (Unix seconds) signs it as
    of that time: a page opened with a token hands out links that expire no later than that token
    (subscribers.tokens)."""
    return f"/{purpose}/{make_token(purpose, subscriber.id, subscriber.email, settings, extra, issued_at)}"


def signed_url(purpose: str, subscriber: Addressee, settings: Settings, extra: dict | None = None,
               issued_at: int | None = None) -> str:
    return absolute_url(signed_path(purpose, subscriber, settings, extra, issued_at), settings)


def unsubscribe_url(subscriber: Addressee, settings: Settings) -> str:
    return signed_url("unsubscribe", subscriber, settings)


def view_path(subscriber: Addressee, day: date, settings: Settings, issued_at: int | None = None) -> str:
    """The subscriber's own edition of `day`, in the browser."""
    return signed_path("view", subscriber, settings, {"d": day.isoformat()}, issued_at)


def feedback_url(subscriber: Addressee, paper_id: int, kind: str, settings: Settings,
                 issued_at: int | None = None) -> str:
    """ "More like this" (kind "more") or "less like this" ("less") for one paper."""
    return signed_url("feedback", subscriber, settings, {"p": paper_id, "k": kind}, issued_at)


def edition_links(subscriber: Addressee, day: date, settings: Settings, issued_at: int | None = None) -> Links:
    """The footer's links; `issued_at` as in signed_path (an edition shown in the browser through an older link).
    The unsubscribe link is always fresh: it never expires anyway."""
    return Links(
        unsubscribe_url=unsubscribe_url(subscriber, settings),
        preferences_url=signed_url("preferences", subscriber, settings, issued_at=issued_at),
        view_url=absolute_url(view_path(subscriber, day, settings, issued_at), settings),
        archive_url=absolute_url("/archive", settings),
    )
