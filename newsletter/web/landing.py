"""What the home page shows besides the form (the day's showcase papers, the suggested keywords) and the sample
edition it links to: computed once per app and day, kept for a few minutes, never per request.

The home page is the busiest public page; reading a week of papers and counting their keywords per request made
it the slowest route by far (benchmarks/landing_page.py). The content changes when papers are ingested (once a
day), so it is recomputed at most every LANDING_SECONDS, by one request at a time; the others keep the copy.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import date

from fastapi import Request

from newsletter.clock import today
from newsletter.config import Settings
from newsletter.links import Links
from newsletter.ranking import CandidatePool, Profile, candidate_papers, edition_end
from newsletter.render import render_edition
from newsletter.render.context import PaperView, paper_view
from newsletter.web import forms
from newsletter.web.archive import showcase
from newsletter.web.pages import CSRF_PLACEHOLDER, render
from newsletter.web.state import database, settings_of

LANDING_SECONDS = 300.0
HOME_DEFAULTS = {"frequency": "daily", "send_hour": "7", "timezone": "UTC", "suggested": []}
TRENDING_ON_HOME = 5
# The reader of the sample edition ("see what you'd get"): broad interests, so most days have picks for them.
SAMPLE_INTERESTS = "Large language models: training, efficient inference, reasoning and agents"
SAMPLE_KEYWORDS = ["LLM", "reasoning", "agents", "inference"]


@dataclass
class Landing:
    day: date
    showcase_kind: str
    papers: list[PaperView]
    suggestions: list[str]
    settings: Settings
    made: float = field(default_factory=time.monotonic)
    _sample: str | None = None
    _home: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def fresh(self) -> bool:
        return self.day == today() and time.monotonic() - self.made < LANDING_SECONDS

    def home_html(self) -> str:
        """The home page as a first visit sees it (empty form), rendered once; pages.form_page adds the CSRF
        token of each request."""
        if self._home is None:
            self._home = render("index.html", csrf_token=CSRF_PLACEHOLDER, **self.home_context(HOME_DEFAULTS, {}))
        return self._home

    def home_context(self, values: dict, errors: dict[str, str]) -> dict:
        return {"showcase_kind": self.showcase_kind, "papers": self.papers, "suggestions": self.suggestions,
                "sample_url": "/sample" if self.papers else "", "timezones": forms.timezone_groups(),
                "values": {**HOME_DEFAULTS, **values}, "errors": errors, "scripts": ["/static/timezone.js"]}

    def sample_html(self) -> str:
        """The sample edition's HTML, rendered on first use."""
        with self._lock:
            if self._sample is None:
                self._sample = sample_edition(self.day, self.settings)
            return self._sample


_build_lock = threading.Lock()


def kept(request: Request) -> Landing | None:
    """This app's home-page content when the kept copy is fresh (no database work), else None."""
    current: Landing | None = getattr(request.app.state, "landing", None)
    return current if current is not None and current.fresh else None


def landing(request: Request) -> Landing:
    """This app's home-page content for today: the kept copy when it is fresh, else computed now (by one thread;
    the others wait for it)."""
    current = kept(request)
    if current is not None:
        return current
    with _build_lock:
        current = kept(request)
        if current is None:
            current = request.app.state.landing = build_landing(settings_of(request), today())
    return current


def build_landing(settings: Settings, day: date) -> Landing:
    with database(settings) as session:
        kind, papers = showcase(session, day, settings, TRENDING_ON_HOME)
        suggestions = forms.keyword_suggestions(candidate_papers(session, day, settings.candidate_days))
    return Landing(day=day, showcase_kind=kind, papers=papers, suggestions=suggestions, settings=settings)


def sample_edition(day: date, settings: Settings) -> str:
    """The edition of `day` for a sample reader (lexical ranking: no profile vector to compute, nothing stored),
    with the footer's links pointing at the sign-up form instead of a subscriber's signed links."""
    with database(settings) as session:
        papers = candidate_papers(session, day, settings.candidate_days)
        _, trending = showcase(session, day, settings, TRENDING_ON_HOME + settings.papers_per_email)
    pool = CandidatePool(papers, now=edition_end(day), semantic=False)
    picks = pool.rank(Profile(interests=SAMPLE_INTERESTS, keywords=SAMPLE_KEYWORDS), settings.papers_per_email)
    chosen = {pick.paper.title for pick in picks}
    rendered = render_edition(
        day=day, recipient="you@example.org", interests=SAMPLE_INTERESTS,
        papers=[paper_view(pick.paper, pick.reasons) for pick in picks],
        trending=[view for view in trending if view.title not in chosen][:TRENDING_ON_HOME],
        links=Links(unsubscribe_url="/#subscribe", preferences_url="/#subscribe", archive_url="/archive"),
        postal_address=settings.postal_address)
    return rendered.html
