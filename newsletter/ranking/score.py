"""The ranker: semantic + lexical relevance fused per reader, author boost, feedback, a trending prior, then MMR.

For each subscriber and candidate paper, every signal is first put on the same scale: standardized over the
day's pool for that reader (z-score: how many standard deviations above this reader's average paper), so that a
cosine and a BM25 score of different ranges add up fairly, and one reader's long profile does not swamp the rest.

    relevance = SEMANTIC_WEIGHT * z(cosine(profile vector, paper vector))     (absent when lexical-only)
              + LEXICAL_WEIGHT  * z(BM25(interests + keywords, title x2 + abstract))   (stemmed terms: lexical.py)
              + AUTHOR_BOOST    if the paper is by a followed author
              + FEEDBACK_WEIGHT * z(the reader's own model's logit)   (once they saved, rejected or seeded papers)
    score     = relevance + TRENDING_WEIGHT * trending   (log upvotes with recency decay, in [0, 1])

Excluded keywords and papers already sent, judged or given as seeds get no score at all. Subscribers are scored a
chunk at a time as dense subscribers x papers matrices (semantic: one matrix product; lexical and phrase matches:
sparse products), so memory stays flat however many subscribers there are. The top candidates of each row are then
re-ordered by maximal marginal relevance so the picks are not near-duplicates of each other. Each pick's reason is
one plain sentence (reasons.py).

Measured on the judged set (benchmarks/ranking_quality.py) and not kept: a soft maximum over facet vectors,
sentence-level max-similarity, pseudo-relevance feedback, keyword phrase bonuses, an encoder fine-tuned on the
stored papers' title/abstract pairs: each within noise of this on the tuning split, and each costs time.

Measured for feedback (benchmarks/feedback_quality.py: nDCG@10 lift after 3 "more" + 2 "less" clicks; this ranker:
tuning full -0.004, short +0.036; held-back full +0.011, short -0.033) and not kept, as none lifted the held-back
split in both forms: "more like this" as an extra z-scored BM25 query of the saved and seed papers' 20 most
distinctive terms (tuning: short +0.065 but full -0.066; the terms merged into the profile's own query: -0.051 /
+0.052); Rocchio on the profile vector (+0.5 saved, -0.25 rejected: -0.022 / +0.038); pushing down the rejected
papers' nearest neighbours (-0.028 / +0.017); FEEDBACK_WEIGHT 0.5 or 2 (+0.006 / +0.009, -0.054 / +0.046). Every
strong feedback signal narrows a careful multi-facet profile to the saved papers' facet. Closest: the "more like
this" query beside the model, both weighted clicks / (clicks + profile terms / 2), so three clicks move a
one-sentence profile more than a long one: tuning +0.001 / +0.049, held-back +0.009 / -0.003 (the careful form
0.003 below this ranker's); with two of the top 10 kept for the unseen papers closest to a saved one (cosine >= 0.5),
which makes three clicks on a topic the profile never mentions bring that topic in (this ranker does not:
tests/test_ranking_engine.py, expected to fail): tuning -0.008 / +0.043, held-back +0.010 / -0.005.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from itertools import chain

import numpy as np
from scipy import sparse
from threadpoolctl import threadpool_limits

from newsletter.models import Paper
from newsletter.ranking import embeddings
from newsletter.ranking.facets import facets_of
from newsletter.ranking.feedback import FeedbackModel, background_prototypes
from newsletter.ranking.fusion import standardize_rows
from newsletter.ranking.lexical import (
    Corpus,
    TermIndex,
    document_text,
    interned_ids,
    interned_string,
    phrase_terms,
    query_terms,
    terms,
)
from newsletter.ranking.mmr import mmr_select
from newsletter.ranking.reasons import Grounds, sentence

# Weights are in standard deviations of the reader's scores over the pool (see the module docstring).
SEMANTIC_WEIGHT = 1.0
LEXICAL_WEIGHT = 1.0  # as much as the semantic signal: measured best on the judged set's tuning split
AUTHOR_BOOST = 10.0  # above any topical match (a row's best z-score over 1000 papers is about 3.5 per signal):
#                     the sign-up page promises that a followed author's papers are always picked
FEEDBACK_WEIGHT = 1.0  # at full strength (FEEDBACK_FULL judged or seed papers), as much as each relevance signal
FEEDBACK_FULL = 3
TRENDING_WEIGHT = 0.3  # the most upvoted fresh paper gets this much: it reorders near-ties, never beats relevance
TRENDING_HALF_LIFE_DAYS = 3.0
TRENDING_SHOWN = 0.5  # trending prior at which a pick's sentence mentions its upvotes
MMR_POOL = 30  # MMR chooses each subscriber's first MMR_PICKS papers among their best MMR_POOL candidates
MMR_PICKS = 10
MMR_LAMBDA = 0.9  # 1 = relevance only, 0 = diversity only (0.75 cost 0.015 nDCG@10 on the judged set)
CHUNK = 2048  # subscribers scored per matrix
THREADS = min(os.cpu_count() or 1, 4)  # chunks scored at once: numpy and scipy release the GIL in the heavy parts
SIMILAR_SAVED = 0.5  # cosine at which a pick is explained as close to a paper you saved (or seeded)
SEMANTIC_MATCH = 0.3  # cosine at which a pick with no shared words is explained as close in topic
FACET_SHARE = 0.6  # share of a facet's (idf-weighted) terms a paper must have to be explained as about it


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
    seeds: list[Paper] = field(default_factory=list)  # papers the reader wrote or liked, given at sign-up
    sent: set[int] = field(default_factory=set)  # paper ids already sent: never picked again
    facet_texts: list[str] | None = None  # the profile's facets as stored with the subscriber (None: worked out here)
    # Compiled at construction (the text fields are not meant to change afterwards):
    query: dict[str, float] = field(init=False)
    query_ids: np.ndarray = field(init=False, repr=False)  # the query's terms as interned ids, and their weights
    query_weights: np.ndarray = field(init=False, repr=False)
    author_ids: np.ndarray = field(init=False, repr=False)  # case-folded phrases as interned ids
    excluded_ids: np.ndarray = field(init=False, repr=False)
    followed: frozenset[str] = field(init=False, repr=False)  # followed authors, case-folded
    _facets: list[tuple[str, frozenset[str]]] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.query = query_terms(" ".join([self.interests, ", ".join(self.keywords)]))
        self.query_ids = interned_ids(self.query)
        self.query_weights = np.fromiter(self.query.values(), np.float32, len(self.query))
        self.author_ids, self.excluded_ids = (
            interned_ids(dict.fromkeys(phrase.casefold() for phrase in phrases))
            for phrases in (self.followed_authors, self.excluded_keywords))
        self.followed = frozenset(author.casefold() for author in self.followed_authors)

    def seen(self) -> set[int]:
        """Papers never to pick again: sent, already judged by the reader, or given as seeds."""
        if not (self.liked or self.disliked or self.seeds):
            return self.sent
        return self.sent | {p.id for p in chain(self.liked, self.disliked, self.seeds) if p.id is not None}

    def positives(self) -> list[Paper]:
        """What the reader's own model learns "more like this" from: their seed papers, then the papers they saved."""
        return [*self.seeds, *self.liked]

    def facets(self) -> list[tuple[str, frozenset[str]]]:
        """(facet as typed, its index terms), computed on first need (only picks being explained need them)."""
        if self._facets is None:
            if self.facet_texts is None:
                self._facets = facets_without_keywords(self.interests, tuple(self.keywords))
            else:
                typed = {k.casefold() for k in self.keywords}
                self._facets = [(facet, frozenset(terms(facet))) for facet in self.facet_texts
                                if facet.casefold() not in typed]
        return self._facets

    @classmethod
    def of(cls, subscriber, **extra) -> Profile:
        return cls(interests=subscriber.interests, keywords=list(subscriber.keywords),
                   followed_authors=list(subscriber.followed_authors),
                   excluded_keywords=list(subscriber.excluded_keywords), **extra)


@dataclass
class RankedChunk:
    """A chunk of subscribers' picks as pool indices (-1: no pick), best first, with their scores."""

    indices: np.ndarray  # subscribers x limit
    scores: np.ndarray


class CandidatePool:
    """The papers one edition chooses from, indexed once for every subscriber."""

    def __init__(self, papers: Sequence[Paper], now: datetime | None = None, semantic: bool = False,
                 corpus: Corpus | None = None):
        self.papers = list(papers)
        self.index = TermIndex.build([document_text(p.title, p.abstract) for p in self.papers], kind="bm25",
                                     corpus=corpus)  # idf from the stored papers when given
        self.sequences = [terms(f"{p.title} {p.abstract}", joined=False) for p in self.papers]  # for phrases
        self.trending = trending_prior(self.papers, now or datetime.now(UTC))
        self.semantic = semantic  # rank with the papers' sentence embeddings (stored at ingest)
        self.vectors = self._paper_vectors() if self.semantic else None
        self.features = self.vectors if self.vectors is not None else self.index.document_vectors(unit=True)
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
        self._facet_weights: dict[str, tuple[list[tuple[str, float]], float]] = {}  # facet -> terms' idf, sum
        self._common_idf = self.index.common_idf

    def __len__(self) -> int:
        return len(self.papers)

    # -- public -------------------------------------------------------------------------------------------------

    def rank(self, profile: Profile, limit: int = 10) -> list[Recommendation]:
        return next(self.rank_many([profile], limit))

    def rank_many(self, profiles: Sequence[Profile], limit: int = 10,
                  chunk: int = CHUNK) -> Iterator[list[Recommendation]]:
        """Each profile's picks (best first, with reasons), in the order of `profiles`."""
        for part, ranked in self.rank_chunks(profiles, limit, chunk):
            for profile, row, row_scores in zip(part, ranked.indices.tolist(), ranked.scores.tolist()):
                yield [Recommendation(self.papers[i], round(s, 4), self.reasons(profile, i))
                       for i, s in zip(row, row_scores) if i >= 0]

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
            return RankedChunk(empty, empty.astype(np.float32))
        score = self.relevance(profiles)
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
        return RankedChunk(indices=np.where(np.isfinite(picked_scores), picked, -1), scores=picked_scores)

    # -- scoring --------------------------------------------------------------------------------------------------

    def relevance(self, profiles: Sequence[Profile]) -> np.ndarray:
        """Every profile's relevance of every paper (subscribers x papers), before trending and exclusions."""
        score = self.index.scores_of(self.index.compiled_query_matrix([p.query_ids for p in profiles],
                                                                      [p.query_weights for p in profiles]))
        standardize_rows(score)
        scale_in_place(score, LEXICAL_WEIGHT)
        if self.vectors is not None:
            with_vector = [r for r, p in enumerate(profiles) if p.vector is not None]
            if with_vector:
                vectors = np.array([profiles[r].vector for r in with_vector], dtype=np.float32)
                semantic = vectors @ self.vectors.T
                standardize_rows(semantic)
                scale_in_place(semantic, SEMANTIC_WEIGHT)
                if len(with_vector) == len(profiles):
                    score += semantic
                else:
                    score[with_vector] += semantic
        add_sparse(score, self._author_matches(profiles))
        self._add_feedback(profiles, score)
        return score

    def _author_matches(self, profiles: Sequence[Profile]) -> sparse.csr_matrix:
        matches = self._phrase_product([p.author_ids for p in profiles], self.author_documents)
        matches.data = np.minimum(matches.data, 1.0) * AUTHOR_BOOST  # two followed authors are not twice as good
        return matches

    def _remove(self, profiles: Sequence[Profile], score: np.ndarray) -> None:
        """-inf for excluded keywords and papers already sent, judged or seeded: they can never be picked."""
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
    def _phrase_choices(phrase_ids: list[np.ndarray], weight: float) -> tuple[sparse.csr_matrix, list[str]]:
        """The distinct phrases of all rows, and a rows x phrases matrix of `weight` where the row has the phrase."""
        counts = np.fromiter(map(len, phrase_ids), np.int64, len(phrase_ids))
        ids = np.concatenate(phrase_ids) if phrase_ids else np.zeros(0, dtype=np.int64)
        distinct, columns = np.unique(ids, return_inverse=True)
        rows = np.repeat(np.arange(len(phrase_ids)), counts)
        values = np.full(len(rows), weight, dtype=np.float32)
        chosen = sparse.csr_matrix((values, (rows, columns.ravel())), shape=(len(phrase_ids), len(distinct)))
        return chosen, [interned_string(i) for i in distinct.tolist()]

    def phrase_documents(self, phrase: str) -> np.ndarray:
        """Indices of the papers containing `phrase` (cached per pool).

        Matched as index terms in a row ("KV caches" has the keyword "KV cache", "LLMs" has "LLM"); a hyphenated
        one-word keyword also matches its joined spelling ("fine-tuning" / "finetuning").
        """
        found = self._phrase_columns.get(phrase)
        if found is None:
            wanted = phrase_terms(phrase)
            hits: set[int] = set()
            if wanted:
                maybe = self.index.documents_with_all(list(dict.fromkeys(wanted)))
                hits.update(i for i in maybe.tolist() if contains_sequence(self.sequences[i], wanted))
                joined = phrase_terms(phrase, joined=True)
                if joined != wanted and len(joined) == 1:
                    hits.update(self.index.documents_with_all(list(joined)).tolist())
            found = np.array(sorted(hits), dtype=np.int64)
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
        """Adds each subscriber's own model's opinion of every paper (only for subscribers with feedback or seeds).

        The model's logit is standardized like the other signals and weighs more as the reader judges more papers:
        FEEDBACK_WEIGHT once FEEDBACK_FULL papers were saved, rejected or seeded.
        """
        with_feedback = [r for r, p in enumerate(profiles) if p.liked or p.disliked or p.seeds]
        if not with_feedback:
            return
        if self._background is None:  # computed on first need (two threads may both do it: same result)
            self._background = background_prototypes(self.features)
        models = FeedbackModel.fit_many([self.features_of(profiles[r].positives()) for r in with_feedback],
                                        [self.features_of(profiles[r].disliked) for r in with_feedback],
                                        *self._background)
        opinion = models.logits(self.features)
        standardize_rows(opinion)
        strength = np.array([min(1.0, (len(profiles[r].positives()) + len(profiles[r].disliked)) / FEEDBACK_FULL)
                             for r in with_feedback], dtype=np.float32)
        score[with_feedback] += FEEDBACK_WEIGHT * strength[:, None] * opinion

    # -- features ------------------------------------------------------------------------------------------------

    def features_of(self, papers: Sequence[Paper]) -> np.ndarray:
        """Unit vectors of papers (in or out of the pool) in the same space as `self.features`."""
        if not papers:
            return np.zeros((0, self.features.shape[1]), dtype=np.float32)
        if self.vectors is not None:
            return embeddings.vectors_of(papers)
        return self.index.document_matrix([document_text(p.title, p.abstract) for p in papers])

    def _paper_vectors(self) -> np.ndarray:
        return embeddings.vectors_of(self.papers)  # stored at ingest; any missing one is encoded here

    # -- explanations ----------------------------------------------------------------------------------------------

    def reasons(self, profile: Profile, i: int) -> list[str]:
        """Why paper i is recommended to this profile: one plain sentence (rules in reasons.py)."""
        return [sentence(self.grounds(profile, i))]

    def grounds(self, profile: Profile, i: int) -> Grounds:
        """What is true of paper i for this profile, for its sentence: only as much as the sentence can say (a
        sentence names two reasons at most; a facet only when no keyword matched), gathered in the rules' order."""
        grounds = Grounds(upvotes=self._upvotes[i], trending=bool(self.trending[i] >= TRENDING_SHOWN))
        if profile.followed:
            grounds.authors = [a for a in self._authors[i] if a.casefold() in profile.followed]
        grounds.keywords = [k for k in profile.keywords if i in self.phrase_set(k)]
        found = bool(grounds.authors) + bool(grounds.keywords)
        if found < 2 and (profile.seeds or profile.liked):
            similar = self._most_similar(profile.positives(), i)
            if similar is not None:
                grounds.resembles, grounds.resembles_seed = similar.title, any(similar is s for s in profile.seeds)
                found += 1
        if found < 2 and not grounds.keywords:
            grounds.facet = self._facet(profile, i)
            found += grounds.facet is not None
        if not found and self.vectors is not None and profile.vector is not None:
            grounds.semantic = float(self.vectors[i] @ profile.vector) >= SEMANTIC_MATCH
        return grounds

    def _facet(self, profile: Profile, i: int) -> str | None:
        """The facet of the reader's interests the paper covers best: most of its terms (weighted by how rare they
        are) in the paper; at least FACET_SHARE of them, and at least one that is not common."""
        doc_terms = self.index.doc_terms[i]
        best, best_share = None, FACET_SHARE
        for facet, facet_terms in profile.facets():
            weighed = self._facet_weights.get(facet)
            if weighed is None:  # per pool: facets recur across readers and picks
                weights = [(t, self.index.term_idf(t)) for t in facet_terms]
                weighed = self._facet_weights[facet] = (weights, sum(w for _, w in weights) or 1.0)
            weights, total = weighed
            shared = [w for t, w in weights if t in doc_terms]
            if not shared:
                continue
            share = sum(shared) / total
            if share > best_share or (share == best_share and best is not None and len(facet) < len(best)):
                if max(shared) >= self._common_idf:
                    best, best_share = facet, share
        return best

    def _most_similar(self, papers: Sequence[Paper], i: int) -> Paper | None:
        if not papers:
            return None
        similarity = self.features_of(papers) @ self.features[i]
        best = int(np.argmax(similarity))
        return papers[best] if similarity[best] >= SIMILAR_SAVED and papers[best].id != self.papers[i].id else None


@lru_cache(maxsize=4096)
def facets_without_keywords(interests: str, keywords: tuple[str, ...]) -> list[tuple[str, frozenset[str]]]:
    """(facet, its index terms) of the interests text (keywords are explained as keywords). Cached: readers often
    type the same profile."""
    typed = {k.casefold() for k in keywords}
    return [(facet, frozenset(terms(facet))) for facet in facets_of(interests, list(keywords))
            if facet.casefold() not in typed]


def contains_sequence(sequence: list[str], wanted: tuple[str, ...]) -> bool:
    """Whether `wanted` appears as consecutive items of `sequence`."""
    first, n = wanted[0], len(wanted)
    return any(sequence[at:at + n] == list(wanted) for at, term in enumerate(sequence) if term == first)


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
