"""First ranker: lexical relevance to the subscriber's profile, blended with a small trending prior.

Relevance is BM25 of the interests text plus boosted keyword phrases; followed authors add a boost and excluded
keywords remove a paper. Upvotes only break ties between similarly relevant papers.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from newsletter.models import Paper, Subscriber
from newsletter.ranking.lexical import BM25Index, contains_phrase, tokenize

KEYWORD_BOOST = 2.0  # a keyword the subscriber typed weighs this much more than a word of their interests
AUTHOR_BOOST = 1.0  # added to the normalized relevance (1.0 = as relevant as the best lexical match)
TRENDING_WEIGHT = 0.15  # at most this much is added for the most upvoted paper


@dataclass
class Recommendation:
    paper: Paper
    score: float
    reasons: list[str] = field(default_factory=list)


class CandidatePool:
    """The papers one edition chooses from, indexed once for every subscriber."""

    def __init__(self, papers: list[Paper]):
        self.papers = papers
        self.texts = [f"{p.title} {p.abstract}".casefold() for p in papers]
        self.index = BM25Index.build([f"{p.title} {p.title} {p.abstract}" for p in papers])
        upvotes = np.array([p.upvotes for p in papers], dtype=float)
        top = math.log1p(upvotes.max()) if len(papers) and upvotes.max() > 0 else 1.0
        self.trending = np.log1p(upvotes) / top

    def rank(self, subscriber: Subscriber, exclude_ids: set[int] = frozenset(), limit: int = 10) -> list[Recommendation]:
        relevance = self._relevance(subscriber)
        score = relevance + TRENDING_WEIGHT * self.trending
        order = np.argsort(-score, kind="stable")
        picks = []
        for i in order:
            paper = self.papers[i]
            if paper.id in exclude_ids or self._excluded(i, subscriber):
                continue
            picks.append(Recommendation(paper, round(float(score[i]), 4), self._reasons(i, subscriber)))
            if len(picks) >= limit:
                break
        return picks

    def _query(self, subscriber: Subscriber) -> dict[str, float]:
        weights: Counter = Counter()
        for token in tokenize(subscriber.interests):
            weights[token] += 1.0
        for keyword in subscriber.keywords:
            for token in tokenize(keyword):
                weights[token] += KEYWORD_BOOST
        return dict(weights)

    def _relevance(self, subscriber: Subscriber) -> np.ndarray:
        raw = self.index.scores(self._query(subscriber))
        relevance = raw / raw.max() if raw.size and raw.max() > 0 else raw
        for i, paper in enumerate(self.papers):
            if self._followed_authors(paper, subscriber):
                relevance[i] += AUTHOR_BOOST
        return relevance

    def _excluded(self, i: int, subscriber: Subscriber) -> bool:
        return any(contains_phrase(self.texts[i], word) for word in subscriber.excluded_keywords)

    @staticmethod
    def _followed_authors(paper: Paper, subscriber: Subscriber) -> list[str]:
        followed = {a.casefold() for a in subscriber.followed_authors}
        return [a for a in paper.authors if a.casefold() in followed]

    def _reasons(self, i: int, subscriber: Subscriber) -> list[str]:
        paper, text = self.papers[i], self.texts[i]
        reasons = []
        matched = [k for k in subscriber.keywords if contains_phrase(text, k)]
        if matched:
            reasons.append("matches your keywords: " + ", ".join(matched))
        authors = self._followed_authors(paper, subscriber)
        if authors:
            reasons.append("by an author you follow: " + ", ".join(authors))
        interest_terms = [t for t in dict.fromkeys(tokenize(subscriber.interests)) if t in self.index.doc_terms[i]]
        if interest_terms:
            reasons.append("about your interests: " + ", ".join(interest_terms[:5]))
        if paper.upvotes and self.trending[i] >= 0.5:
            reasons.append(f"trending: {paper.upvotes} upvotes")
        return reasons or ["popular with readers today"]
