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
from newsletter.web.state import database, settings_of

LANDING_SECONDS = 300.0
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
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def sample_html(self) -> str:
        """The sample edition's HTML, rendered on first use."""
        with self._lock:
            if self._sample is None:
                self._sample = sample_edition(self.day, self.settings)
            return self._sample


_build_lock = threading.Lock()


def landing(request: Request) -> Landing:
    """This app's home-page content for today: from the copy when it is fresh, else computed now."""
    state = request.app.state
    current: Landing | None = getattr(state, "landing", None)
    day = today()
    if current is not None and current.day == day and time.monotonic() - current.made < LANDING_SECONDS:
        return current
    with _build_lock:
        current = getattr(state, "landing", None)
        if current is None or current.day != day or time.monotonic() - current.made >= LANDING_SECONDS:
            current = state.landing = build_landing(settings_of(request), day)
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
