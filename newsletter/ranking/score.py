"""The ranker: semantic + lexical relevance, keyword / author boosts, feedback, a trending prior, then MMR.

For each subscriber and candidate paper:

    relevance = SEMANTIC_WEIGHT * cosine(profile vector, paper vector)        (absent when lexical-only)
              + LEXICAL_WEIGHT  * tf-idf cosine(interests + boosted keywords, paper)
              + KEYWORD_WEIGHT  * share of the subscriber's keywords found as phrases in the paper
              + AUTHOR_BOOST    if the paper is by a followed author
              + FEEDBACK_WEIGHT * (2 * p(more | paper) - 1)   (the subscriber's own linear model, once they judged)
    score     = relevance + TRENDING_WEIGHT * trending   (log upvotes with recency decay, in [0, 1])

Excluded keywords and papers already sent (or already judged by the reader) get no score at all. Subscribers are
scored a chunk at a time as dense subscribers x papers matrices (semantic: one matrix product; lexical and phrase
matches: sparse products), so memory stays flat however many subscribers there are. The top candidates of each row
are then re-ordered by maximal marginal relevance so the picks are not near-duplicates of each other.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain

import numpy as np
from scipy import sparse
from threadpoolctl import threadpool_limits

from newsletter.models import Paper
from newsletter.ranking import embeddings
from newsletter.ranking.feedback import FeedbackModel, background_prototypes
from newsletter.ranking.lexical import TermIndex, contains_phrase, interned_ids, interned_string, query_terms, tokenize
from newsletter.ranking.mmr import mmr_select

SEMANTIC_WEIGHT = 1.0
LEXICAL_WEIGHT = 1.0  # cosines on both sides: an exact-term match counts as much as a semantic one
KEYWORD_WEIGHT = 0.05  # small: the keyword's words already weigh double in the lexical query; this mostly breaks ties
KEYWORD_BOOST = 2.0  # a keyword's words weigh this much more than a word of free text in the lexical query
AUTHOR_BOOST = 1.0  # as much as a perfect topical match: you asked for this author
FEEDBACK_WEIGHT = 0.3
TRENDING_WEIGHT = 0.1  # the most upvoted fresh paper gets this much: it reorders near-ties, never beats relevance
TRENDING_HALF_LIFE_DAYS = 3.0
MMR_POOL = 30  # MMR chooses each subscriber's first MMR_PICKS papers among their best MMR_POOL candidates
MMR_PICKS = 10
MMR_LAMBDA = 0.75  # 1 = relevance only, 0 = diversity only
CHUNK = 2048  # subscribers scored per matrix
THREADS = min(os.cpu_count() or 1, 4)  # chunks scored at once: numpy and scipy release the GIL in the heavy parts
SIMILAR_SAVED = 0.5  # cosine at which a pick is explained as "similar to a paper you saved"


@dataclass
class Recommendation:
    paper: Paper
    score: float
    reasons: list[str] = field(default_factory=list)


@dataclass
class Profile:
    """What the ranker knows about one subscriber, detached from the database."""

    interests: str = ""
    keywords: list[str] = field(default_factory=list)
    followed_authors: list[str] = field(default_factory=list)
    excluded_keywords: list[str] = field(default_factory=list)
    vector: np.ndarray | None = None  # profile embedding (None: lexical-only or empty profile)
    liked: list[Paper] = field(default_factory=list)  # "more like this"
    disliked: list[Paper] = field(default_factory=list)  # "less like this"
    sent: set[int] = field(default_factory=set)  # paper ids already sent: never picked again
    # Compiled at construction (the text fields are not meant to change afterwards):
    query: dict[str, float] = field(init=False)
    interest_terms: list[str] = field(init=False)  # for explanations
    query_ids: np.ndarray = field(init=False, repr=False)  # the query's terms as interned ids, and their weights
    query_weights: np.ndarray = field(init=False, repr=False)
    keyword_ids: np.ndarray = field(init=False, repr=False)  # case-folded phrases as interned ids
    author_ids: np.ndarray = field(init=False, repr=False)
    excluded_ids: np.ndarray = field(init=False, repr=False)
    followed: frozenset[str] = field(init=False, repr=False)  # followed authors, case-folded

    def __post_init__(self) -> None:
        self.interest_terms = list(dict.fromkeys(tokenize(self.interests)))
        self.query = query_terms(self.interests)
        for term, weight in query_terms(" ".join(self.keywords), KEYWORD_BOOST).items():
            self.query[term] = self.query.get(term, 0.0) + weight
        self.query_ids = interned_ids(self.query)
        self.query_weights = np.fromiter(self.query.values(), np.float32, len(self.query))
        self.keyword_ids, self.author_ids, self.excluded_ids = (
            interned_ids(dict.fromkeys(phrase.casefold() for phrase in phrases))
            for phrases in (self.keywords, self.followed_authors, self.excluded_keywords))
        self.followed = frozenset(author.casefold() for author in self.followed_authors)

    def seen(self) -> set[int]:
        """Papers never to pick again: sent, or already judged by the reader."""
        if not (self.liked or self.disliked):
            return self.sent
        return self.sent | {p.id for p in self.liked} | {p.id for p in self.disliked}

    @classmethod
    def of(cls, subscriber, **extra) -> Profile:
        return cls(interests=subscriber.interests, keywords=list(subscriber.keywords),
                   followed_authors=list(subscriber.followed_authors),
                   excluded_keywords=list(subscriber.excluded_keywords), **extra)


@dataclass
class RankedChunk:
    """A chunk of subscribers' picks as pool indices (-1: no pick), best first, with the score parts behind them."""

    indices: np.ndarray  # subscribers x limit
    scores: np.ndarray
    semantic: np.ndarray  # the semantic part of each pick's score (for its explanation)


class CandidatePool:
    """The papers one edition chooses from, indexed once for every subscriber."""

    def __init__(self, papers: Sequence[Paper], now: datetime | None = None, semantic: bool = False):
        self.papers = list(papers)
        self.texts = [f"{p.title} {p.abstract}".casefold() for p in self.papers]
        self.index = TermIndex.build([f"{p.title} {p.abstract}" for p in self.papers])
        self.trending = trending_prior(self.papers, now or datetime.now(UTC))
        self.semantic = semantic  # rank with the papers' sentence embeddings (stored at ingest)
        self.vectors = self._paper_vectors() if self.semantic else None
        self.features = self.vectors if self.vectors is not None else self.index.document_vectors()
        self.similarity = (self.features @ self.features.T).astype(np.float32)  # papers x papers, for MMR
        ids = np.array([-1 if paper.id is None else paper.id for paper in self.papers], dtype=np.int64)
        self._id_order = np.argsort(ids, kind="stable")  # positions by paper id, for vectorized id -> position
        self._sorted_ids = ids[self._id_order]
        self._phrase_columns: dict[str, np.ndarray] = {}
        self._phrase_sets: dict[str, frozenset[int]] = {}
        by_author: dict[str, list[int]] = {}
        for i, paper in enumerate(self.papers):
            for author in paper.authors:
                by_author.setdefault(author.casefold(), []).append(i)
        self._papers_by_author = {a: np.array(ix) for a, ix in by_author.items()}
        self._authors = [list(paper.authors) for paper in self.papers]  # plain lists: explaining reads them per pick
        self._upvotes = [paper.upvotes for paper in self.papers]
        self._background: tuple[np.ndarray, np.ndarray] | None = None  # for feedback models

    def __len__(self) -> int:
        return len(self.papers)

    # -- public -------------------------------------------------------------------------------------------------

    def rank(self, profile: Profile, limit: int = 10) -> list[Recommendation]:
        return next(self.rank_many([profile], limit))

    def rank_many(self, profiles: Sequence[Profile], limit: int = 10,
                  chunk: int = CHUNK) -> Iterator[list[Recommendation]]:
        """Each profile's picks (best first, with reasons), in the order of `profiles`."""
        for part, ranked in self.rank_chunks(profiles, limit, chunk):
            indices, scores, semantic = ranked.indices.tolist(), ranked.scores.tolist(), ranked.semantic.tolist()
            for profile, row, row_scores, row_semantic in zip(part, indices, scores, semantic):
                yield [Recommendation(self.papers[i], round(s, 4), self.reasons(profile, i, sem))
                       for i, s, sem in zip(row, row_scores, row_semantic) if i >= 0]

    def rank_chunks(self, profiles: Sequence[Profile], limit: int = 10, chunk: int = CHUNK,
                    threads: int = THREADS) -> Iterator[tuple[Sequence[Profile], RankedChunk]]:
        """(chunk of profiles, their picks), in order, scored `threads` chunks at a time.

        Each chunk runs on one core (BLAS limited to one thread meanwhile, so threads do not fight over cores);
        at most `threads` + 1 chunks are in flight, so memory stays flat however many profiles there are.
        """
        parts = (profiles[start:start + chunk] for start in range(0, len(profiles), chunk))
        if threads <= 1 or len(profiles) <= chunk:
            yield from ((part, self.rank_rows(part, limit)) for part in parts)
            return
        with ThreadPoolExecutor(threads) as executor, threadpool_limits(1, user_api="blas"):
            pending: deque = deque()
            for part in parts:
                pending.append((part, executor.submit(self.rank_rows, part, limit)))
                if len(pending) > threads:
                    part, future = pending.popleft()
                    yield part, future.result()
            while pending:
                part, future = pending.popleft()
                yield part, future.result()

    def rank_rows(self, profiles: Sequence[Profile], limit: int) -> RankedChunk:
        """The picks of one chunk of profiles: the matrix part of ranking, with no per-pick Python."""
        rows = len(profiles)
        if not self.papers or not profiles:
            empty = np.full((rows, 0), -1)
            return RankedChunk(empty, empty.astype(np.float32), empty.astype(np.float32))
        semantic, score = self._relevance(profiles)
        self._add_feedback(profiles, score)
        score += TRENDING_WEIGHT * self.trending
        self._remove(profiles, score)
        pool_size = min(len(self.papers), max(MMR_POOL, limit))
        candidates = top_indices(score, pool_size)
        candidate_scores = np.take_along_axis(score, candidates, axis=1)
        order = np.argsort(-candidate_scores, axis=1, kind="stable")
        candidates = np.take_along_axis(candidates, order, axis=1)
        candidate_scores = np.take_along_axis(candidate_scores, order, axis=1)
        chosen = diversified_order(candidate_scores, self.similarity, candidates, limit)
        picked = np.take_along_axis(candidates, chosen, axis=1)
        picked_scores = np.take_along_axis(candidate_scores, chosen, axis=1)
        row = np.arange(rows)[:, None]
        zeros = np.zeros(picked.shape, dtype=np.float32)
        return RankedChunk(
            indices=np.where(np.isfinite(picked_scores), picked, -1),
            scores=picked_scores,
            semantic=semantic[row, picked] if semantic is not None else zeros,
        )

    # -- scoring --------------------------------------------------------------------------------------------------

    def _relevance(self, profiles: Sequence[Profile]) -> tuple[np.ndarray | None, np.ndarray]:
        score = self.index.scores_of(self.index.compiled_query_matrix([p.query_ids for p in profiles],
                                                                      [p.query_weights for p in profiles]))
        scale_in_place(score, LEXICAL_WEIGHT)
        semantic = None
        if self.vectors is not None:
            missing = np.zeros(self.vectors.shape[1], dtype=np.float32)
            profile_vectors = np.array([missing if p.vector is None else p.vector for p in profiles], dtype=np.float32)
            semantic = profile_vectors @ self.vectors.T
            score += semantic if SEMANTIC_WEIGHT == 1 else SEMANTIC_WEIGHT * semantic
        score += self._keyword_matches(profiles)
        add_sparse(score, self._author_matches(profiles))
        return semantic, score

    def _keyword_matches(self, profiles: Sequence[Profile]) -> np.ndarray:
        """KEYWORD_WEIGHT x the share of each subscriber's keywords that the paper contains as a phrase (dense).

        Dense because common keywords ("benchmark", "diffusion") are in many papers: a sparse result would be
        nearly full and slower to build than this rows x phrases by phrases x papers product.
        """
        chosen, phrases = self._phrase_choices([p.keyword_ids for p in profiles], KEYWORD_WEIGHT, share=True)
        present = np.zeros((len(phrases), len(self.papers)), dtype=np.float32)
        for j, phrase in enumerate(phrases):
            present[j, self.phrase_documents(phrase)] = 1.0
        return np.asarray(chosen @ present, dtype=np.float32)

    def _author_matches(self, profiles: Sequence[Profile]) -> sparse.csr_matrix:
        matches = self._phrase_product([p.author_ids for p in profiles], self.author_documents)
        matches.data = np.minimum(matches.data, 1.0) * AUTHOR_BOOST  # two followed authors are not twice as good
        return matches

    def _remove(self, profiles: Sequence[Profile], score: np.ndarray) -> None:
        """-inf for excluded keywords and papers already sent or judged: they can never be picked."""
        excluded = self._phrase_product([p.excluded_ids for p in profiles], self.phrase_documents).tocoo()
        score[excluded.row, excluded.col] = -np.inf
        seen = [profile.seen() for profile in profiles]
        counts = np.fromiter(map(len, seen), np.int64, len(seen))
        paper_ids = np.fromiter(chain.from_iterable(seen), np.int64, int(counts.sum()))
        rows = np.repeat(np.arange(len(seen)), counts)
        in_pool, positions = self._positions(paper_ids)
        score[rows[in_pool], positions] = -np.inf

    def _positions(self, paper_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which of `paper_ids` are in the pool, and the pool positions of those that are."""
        if not len(self._sorted_ids):
            return np.zeros(len(paper_ids), dtype=bool), np.zeros(0, dtype=np.int64)
        at = np.minimum(np.searchsorted(self._sorted_ids, paper_ids), len(self._sorted_ids) - 1)
        in_pool = self._sorted_ids[at] == paper_ids
        return in_pool, self._id_order[at[in_pool]]

    def _phrase_product(self, phrase_ids: list[np.ndarray], documents) -> sparse.csr_matrix:
        """How many of each row's phrases each paper contains: a sparse rows x papers matrix."""
        chosen, phrases = self._phrase_choices(phrase_ids, 1.0)
        found = [documents(phrase) for phrase in phrases]
        present = sparse.csr_matrix(
            (np.ones(sum(len(d) for d in found), dtype=np.float32),
             (np.repeat(np.arange(len(found)), [len(d) for d in found]), np.concatenate(found or [np.zeros(0, int)]))),
            shape=(len(phrases), len(self.papers)))
        return (chosen @ present).tocsr()

    @staticmethod
    def _phrase_choices(phrase_ids: list[np.ndarray], weight: float,
                        share: bool = False) -> tuple[sparse.csr_matrix, list[str]]:
        """The distinct phrases of all rows, and a rows x phrases matrix of `weight` (divided among each row's
        phrases when `share`) where the row has the phrase."""
        counts = np.fromiter(map(len, phrase_ids), np.int64, len(phrase_ids))
        ids = np.concatenate(phrase_ids) if phrase_ids else np.zeros(0, dtype=np.int64)
        distinct, columns = np.unique(ids, return_inverse=True)
        rows = np.repeat(np.arange(len(phrase_ids)), counts)
        values = (weight / counts[rows] if share else np.full(len(rows), weight)).astype(np.float32)
        chosen = sparse.csr_matrix((values, (rows, columns.ravel())), shape=(len(phrase_ids), len(distinct)))
        return chosen, [interned_string(i) for i in distinct.tolist()]

    def phrase_documents(self, phrase: str) -> np.ndarray:
        """Indices of the papers containing `phrase` as whole words (cached per pool)."""
        found = self._phrase_columns.get(phrase)
        if found is None:
            terms = tokenize(phrase)
            maybe = self.index.documents_with_all(terms) if terms else np.arange(len(self.papers))
            found = np.array([i for i in maybe if contains_phrase(self.texts[i], phrase)], dtype=np.int64)
            self._phrase_columns[phrase] = found
        return found

    def phrase_set(self, phrase: str) -> frozenset[int]:
        """phrase_documents as a set, for membership tests while explaining picks (cached per pool)."""
        found = self._phrase_sets.get(phrase)
        if found is None:
            found = self._phrase_sets[phrase] = frozenset(self.phrase_documents(phrase).tolist())
        return found

    def author_documents(self, author: str) -> np.ndarray:
        return self._papers_by_author.get(author.casefold(), np.zeros(0, dtype=np.int64))

    def _add_feedback(self, profiles: Sequence[Profile], score: np.ndarray) -> None:
        """Adds each subscriber's own model's opinion of every paper (only for subscribers with feedback)."""
        with_feedback = [r for r, p in enumerate(profiles) if p.liked or p.disliked]
        if not with_feedback:
            return
        if self._background is None:  # computed on first need (two threads may both do it: same result)
            self._background = background_prototypes(self.features)
        models = FeedbackModel.fit_many([self.features_of(profiles[r].liked) for r in with_feedback],
                                        [self.features_of(profiles[r].disliked) for r in with_feedback],
                                        *self._background)
        score[with_feedback] += FEEDBACK_WEIGHT * (2 * models.predict(self.features) - 1)

    # -- features ------------------------------------------------------------------------------------------------

    def features_of(self, papers: Sequence[Paper]) -> np.ndarray:
        """Unit vectors of papers (in or out of the pool) in the same space as `self.features`."""
        if not papers:
            return np.zeros((0, self.features.shape[1]), dtype=np.float32)
        if self.vectors is not None:
            return embeddings.vectors_of(papers)
        return self.index.query_matrix([query_terms(f"{p.title} {p.abstract}") for p in papers]).toarray()

    def _paper_vectors(self) -> np.ndarray:
        return embeddings.vectors_of(self.papers)  # stored at ingest; any missing one is encoded here

    # -- explanations ----------------------------------------------------------------------------------------------

    def reasons(self, profile: Profile, i: int, semantic: float = 0.0) -> list[str]:
        """Why paper i is recommended to this profile, in words the reader can check."""
        reasons = []
        matched = [k for k in profile.keywords if i in self.phrase_set(k)]
        if matched:
            reasons.append("matches your keywords: " + ", ".join(matched))
        authors = [a for a in self._authors[i] if a.casefold() in profile.followed] if profile.followed else []
        if authors:
            reasons.append("by an author you follow: " + ", ".join(authors))
        saved = self._most_similar(profile.liked, i)
        if saved is not None:
            reasons.append(f"similar to a paper you saved: {saved.title}")
        if semantic >= 0.3:
            reasons.append(f"close to your interests (semantic match {semantic:.2f})")
        doc_terms = self.index.doc_terms[i]
        terms = [t for t in profile.interest_terms if t in doc_terms]
        if terms:
            reasons.append("about your interests: " + ", ".join(terms[:5]))
        if self._upvotes[i] and self.trending[i] >= 0.5:
            reasons.append(f"trending: {self._upvotes[i]} upvotes")
        return reasons or ["popular with readers today"]

    def _most_similar(self, liked: Sequence[Paper], i: int) -> Paper | None:
        if not liked:
            return None
        similarity = self.features_of(liked) @ self.features[i]
        best = int(np.argmax(similarity))
        return liked[best] if similarity[best] >= SIMILAR_SAVED and liked[best].id != self.papers[i].id else None


def trending_prior(papers: Sequence[Paper], now: datetime) -> np.ndarray:
    """log(1 + upvotes), halved every TRENDING_HALF_LIFE_DAYS since publication (or ingest), scaled to [0, 1]."""
    if not papers:
        return np.zeros(0, dtype=np.float32)
    ages = np.array([max(0.0, (now - _aware(p.published_at or p.ingested_at)).total_seconds() / 86400)
                     if (p.published_at or p.ingested_at) else 0.0 for p in papers])
    raw = np.log1p([max(0, p.upvotes) for p in papers]) * 0.5 ** (ages / TRENDING_HALF_LIFE_DAYS)
    top = raw.max()
    return (raw / top if top > 0 else raw).astype(np.float32)


def diversified_order(scores: np.ndarray, similarity: np.ndarray, candidates: np.ndarray, limit: int) -> np.ndarray:
    """Positions of each row's picks: the first MMR_PICKS chosen by MMR among the best MMR_POOL, the rest by score."""
    window = min(MMR_POOL, scores.shape[1])
    picks = min(MMR_PICKS, limit, window)
    head = mmr_select(scores[:, :window], similarity, candidates[:, :window], picks, MMR_LAMBDA)
    taken = np.zeros(scores.shape, dtype=bool)
    np.put_along_axis(taken, head, True, axis=1)
    rest = np.argsort(taken, axis=1, kind="stable")[:, : scores.shape[1] - picks]  # untaken, still in score order
    return np.concatenate([head, rest], axis=1)[:, :limit]


def top_indices(score: np.ndarray, k: int) -> np.ndarray:
    """The column indices of each row's k largest values (unordered)."""
    if k >= score.shape[1]:
        return np.tile(np.arange(score.shape[1]), (score.shape[0], 1))
    return np.argpartition(score, -k, axis=1)[:, -k:]


def scale_in_place(dense: np.ndarray, weight: float) -> None:
    if weight != 1:  # a pass over a chunk's whole matrix saved when it is not needed
        dense *= weight


def add_sparse(dense: np.ndarray, matrix: sparse.spmatrix) -> None:
    """dense += matrix, touching only the stored entries."""
    coo = matrix.tocoo()  # products of CSR matrices hold each entry once: fancy-index += is exact
    dense[coo.row, coo.col] += coo.data


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
