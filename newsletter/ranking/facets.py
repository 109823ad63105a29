"""A profile's facets: the separate things a reader asked for, in their own words.

A reader who writes "Sparse MoE LLMs: expert routing and load balancing, upcycling dense checkpoints into MoE"
asks for several things at once. The rules, applied to the interests text:

- it is cut at sentence ends, semicolons, colons, dashes between spaces, numbered items ("(1)", "2)") and
  parentheses, then each piece at commas (a list of topics is a list of facets);
- a piece keeps its words as typed (trimmed of punctuation and of openers such as "I work on", "and");
- a piece with fewer than MIN_TERMS index terms, or that is only filler ("I'd like to see papers on"), is dropped;
- each keyword is a facet of its own, first (the reader typed it as a topic name).

Facets name the reason of a pick in the reader's words ("about expert routing and load balancing, one of your
interests"); they are not scored separately (measured: a soft maximum over facet vectors did not beat one profile
vector plus BM25 on the judged set, at several times the cost).
"""

from __future__ import annotations

import re

from newsletter.ranking.lexical import terms

MIN_TERMS = 1
MAX_FACETS = 12
_CUTS = re.compile(r"(?<=[.!?])\s+|[;:]\s*|\s+[-\u2013\u2014]\s+|\(\s*\d+\s*\)|(?<!\w)\d+\)\s*|[()]")
_OPENERS = re.compile(
    r"^(?:(?:and|or|also|plus|including|e\.g\.|i\.e\.|such as|especially|mostly|mainly|lately|"
    r"i(?:'m| am)? ?(?:a phd student )?(?:working|work|focus|focusing|am interested|care|follow|study|build|do)"
    r"(?: on| in| about| mostly)?|i(?:'d| would) like to see(?: papers on)?|sub-topics i follow|threads i follow|"
    r"i follow|anything (?:to do )?with|papers on|work on)\s+)+", re.IGNORECASE)
_FILLER = frozenset(terms("i'd like to see papers on things i follow care about lately also mostly general "
                          "phd student thesis any method fine long data is as")) | {"i"}


def facets_of(interests: str, keywords: list[str]) -> list[str]:
    """The reader's facets in their words: keywords first, then the pieces of the interests text."""
    found: dict[str, str] = {}
    for keyword in keywords:
        _add(found, keyword.strip())
    for piece in _CUTS.split(interests or ""):
        for part in re.split(r",\s*", piece or ""):
            _add(found, _OPENERS.sub("", part.strip(" .,;:!?\"'")).strip(" .,;:!?\"'"))
    return list(found.values())[:MAX_FACETS]


def _add(found: dict[str, str], text: str) -> None:
    content = [t for t in terms(text) if t not in _FILLER]
    if len(content) >= MIN_TERMS and len(text) <= 80:
        found.setdefault(" ".join(content), text)
