"""Why a paper was picked, as the one plain sentence a researcher would write.

The rules, in order; a sentence names at most two reasons (the first two that apply), in the reader's words:

1. a followed author wrote it: "By Samy Bengio, an author you follow."
2. it contains some of the reader's keywords as typed: "Matches your keywords “KV cache” and “long context”."
   (at most three named)
3. it resembles a paper the reader saved ("more like this") or gave as a seed paper, named by its title:
   "Close to “Sparse Upcycling”, a paper you saved." / "…, one of your seed papers."
4. it is about one of the facets of the reader's interests, quoted as they typed it:
   "About “expert routing and load balancing”, from your interests."
5. only the meaning matched, no words: "Close in topic to what you described in your interests."
6. nothing of the profile matched (an empty profile): "Popular with readers today."

Trending is added to the sentence when the paper is among the day's most upvoted: "…, and trending with 142
upvotes." (or, alone, "Trending today with 142 upvotes.").

Never a score, a similarity number or a list of tokens. The sentence is the first (and only) item of
`Recommendation.reasons`, the same text in the email, the web view, `newsletter recommend` and its `--json`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

MAX_KEYWORDS_NAMED = 3
MAX_TITLE_CHARS = 90


@dataclass
class Grounds:
    """What is true of one pick for one reader, gathered by the ranker."""

    authors: list[str] = field(default_factory=list)  # followed authors of the paper, as the paper spells them
    keywords: list[str] = field(default_factory=list)  # the reader's keywords the paper contains, as typed
    resembles: str | None = None  # title of the saved or seed paper it is closest to
    resembles_seed: bool = False  # that paper is a seed paper (else one the reader saved)
    facet: str | None = None  # the facet of the reader's interests it is about, as typed
    semantic: bool = False  # the profile's meaning matched (no words needed)
    upvotes: int = 0
    trending: bool = False  # among the day's most upvoted fresh papers


def sentence(grounds: Grounds) -> str:
    """The one sentence explaining a pick (see the module docstring for the rules)."""
    clauses = _clauses(grounds)[:2]
    trending = grounds.trending and grounds.upvotes > 0
    if not clauses:
        if trending:
            return f"Trending today with {_count(grounds.upvotes)} upvotes."
        return "Popular with readers today."
    text = clauses[0] if len(clauses) == 1 else f"{clauses[0]}, and {_lower_first(clauses[1])}"
    if trending:
        text += f"; trending with {_count(grounds.upvotes)} upvotes"
    return text + "."


def _clauses(g: Grounds) -> list[str]:
    clauses = []
    if g.authors:
        names = _join(g.authors)
        clauses.append(f"By {names}, {'an author' if len(g.authors) == 1 else 'authors'} you follow")
    if g.keywords:
        named = g.keywords[:MAX_KEYWORDS_NAMED]
        noun = "keyword" if len(named) == 1 else "keywords"
        clauses.append(f"Matches your {noun} {_join([_quote(k) for k in named])}")
    if g.resembles:
        whose = "one of your seed papers" if g.resembles_seed else "a paper you saved"
        clauses.append(f"Close to {_quote(_short(g.resembles))}, {whose}")
    if g.facet and not g.keywords:
        clauses.append(f"About {_quote(g.facet)}, from your interests")
    if not clauses and g.semantic:
        clauses.append("Close in topic to what you described in your interests")
    return clauses


def _join(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _quote(text: str) -> str:
    return f"\u201c{text}\u201d"


def _short(title: str) -> str:
    return title if len(title) <= MAX_TITLE_CHARS else title[:MAX_TITLE_CHARS].rsplit(" ", 1)[0] + "\u2026"


def _lower_first(clause: str) -> str:
    first = clause.split(" ", 1)[0]
    return clause if first.isupper() else clause[:1].lower() + clause[1:]


def _count(number: int) -> str:
    return f"{number:,}"
