"""Lexical matching over title + abstract: tokenizer, phrase match, and a term index scored as sparse products.

The index stores one weight per (term, document) pair, tf-idf (cosine, the ranker's lexical signal) or BM25
(kept for comparison in benchmarks/ranking_quality.py). Scoring many queries at once is one sparse x dense product.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy import sparse

_TOKEN = re.compile(r"[a-z0-9]+(?:[-+][a-z0-9]+)*")
STOPWORDS = frozenset(
    "a an and are as at be by for from has have in into is it its of on or that the their this to via we with "
    "our which these using based use new can not than more such also how what i my me am interested work "
    "working research papers paper about especially particular like they them do does who whether when where "
    "there both each other any all some most very well into over under between while".split()
)


_IDS: dict[str, int] = {}
_STRINGS: list[str] = []
_NEW_ID = threading.Lock()


def interned_ids(strings: Iterable[str]) -> np.ndarray:
    """Process-wide integer ids of terms and phrases.

    A profile is compiled to ids once; each candidate pool maps them to its own columns with array look-ups, so
    scoring a chunk of subscribers does no per-term dictionary work. The table grows with the distinct terms and
    phrases a process meets (the vocabulary of its papers and profiles), not with the number of subscribers.
    """
    ids = []
    for string in strings:
        found = _IDS.get(string)
        if found is None:
            with _NEW_ID:  # two threads interning new strings at once must not hand out the same id
                found = _IDS.get(string)
                if found is None:
                    found = _IDS[string] = len(_STRINGS)
                    _STRINGS.append(string)
        ids.append(found)
    return np.array(ids, dtype=np.int64) if ids else _NO_IDS


_NO_IDS = np.zeros(0, dtype=np.int64)  # shared by every empty list (most profiles follow no author): read-only
_NO_IDS.flags.writeable = False


def interned_string(string_id: int) -> str:
    return _STRINGS[string_id]


def tokenize(text: str) -> list[str]:
    """Lower-cased words without stop words; hyphenated words count as their parts ("mixture-of-experts")."""
    tokens: list[str] = []
    for token in _TOKEN.findall(text.casefold()):
        if "-" in token:
            tokens.extend(part for part in token.split("-") if part and part not in STOPWORDS)
        elif token not in STOPWORDS:
            tokens.append(token)
    return tokens


def contains_phrase(text_folded: str, phrase: str) -> bool:
    """Whole-word, case-insensitive match of a keyword such as "KV cache" or "MoE"."""
    pattern = r"(?<![a-z0-9])" + r"[\s\-]+".join(map(re.escape, phrase.casefold().split())) + r"(?![a-z0-9])"
    return re.search(pattern, text_folded) is not None


@dataclass
class TermIndex:
    """Term weights of every document as a sparse terms x documents matrix.

    "tfidf": (1 + log tf) * idf, each document's column of unit length; a query is weighted by idf and normalized
    too, so its score is the cosine. "bm25": the classic saturated term frequency; a query's terms just add up.
    """

    kind: Literal["tfidf", "bm25"]
    vocabulary: dict[str, int]
    weights: sparse.csr_matrix  # terms x documents
    idf: np.ndarray
    doc_terms: list[Counter]
    _dense: np.ndarray | None = field(default=None, repr=False)  # the weights as a dense array, made on first use
    _column_of_id: np.ndarray | None = field(default=None, repr=False)  # interned term id -> column (-1: absent)

    @classmethod
    def build(cls, texts: list[str], kind: Literal["tfidf", "bm25"] = "tfidf", k1: float = 1.5,
              b: float = 0.75) -> TermIndex:
        doc_terms = [Counter(tokenize(text)) for text in texts]
        vocabulary: dict[str, int] = {}
        rows, cols, tfs = [], [], []
        for doc, terms in enumerate(doc_terms):
            for term, count in terms.items():
                rows.append(vocabulary.setdefault(term, len(vocabulary)))
                cols.append(doc)
                tfs.append(count)
        n = len(texts)
        rows_a, cols_a, tf = np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64), np.array(tfs, np.float32)
        df = np.bincount(rows_a, minlength=len(vocabulary)).astype(np.float32)
        if kind == "bm25":
            idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
            doc_len = np.array([sum(c.values()) for c in doc_terms], dtype=np.float32)
            avg_len = float(doc_len.mean()) if n and doc_len.mean() > 0 else 1.0
            values = idf[rows_a] * tf * (k1 + 1) / (tf + k1 * (1 - b + b * doc_len[cols_a] / avg_len))
        else:
            idf = (np.log((1 + n) / (1 + df)) + 1).astype(np.float32)
            values = (1 + np.log(tf)) * idf[rows_a]
            norms = np.sqrt(np.bincount(cols_a, weights=values ** 2, minlength=n))
            values = values / np.where(norms > 0, norms, 1.0)[cols_a]
        weights = sparse.csr_matrix((values.astype(np.float32), (rows_a, cols_a)), shape=(len(vocabulary), n))
        ids = interned_ids(vocabulary)
        column_of_id = np.full(int(ids.max()) + 1 if len(ids) else 1, -1, dtype=np.int64)
        column_of_id[ids] = np.arange(len(ids))
        return cls(kind, vocabulary, weights, idf, doc_terms, _column_of_id=column_of_id)

    def query_matrix(self, queries: list[dict[str, float]]) -> sparse.csr_matrix:
        """Weighted query terms, one row per query, over this index's vocabulary (unknown terms dropped)."""
        return self.compiled_query_matrix([interned_ids(query) for query in queries],
                                          [np.fromiter(query.values(), np.float32, len(query)) for query in queries])

    def compiled_query_matrix(self, term_ids: list[np.ndarray], weights: list[np.ndarray]) -> sparse.csr_matrix:
        """query_matrix for queries given as interned term ids and their weights (see `interned_ids`)."""
        rows = np.repeat(np.arange(len(term_ids)), np.fromiter(map(len, term_ids), np.int64, len(term_ids)))
        ids = np.concatenate(term_ids) if term_ids else np.zeros(0, dtype=np.int64)
        values = np.concatenate(weights).astype(np.float32) if weights else np.zeros(0, dtype=np.float32)
        table = self._column_of_id
        assert table is not None, "built by TermIndex.build"
        cols = np.where(ids < len(table), table[np.minimum(ids, len(table) - 1)], -1)  # ids newer than the index: -1
        known = cols >= 0
        rows, cols, values = rows[known], cols[known], values[known]
        if self.kind == "tfidf":
            values = values * self.idf[cols]
            norms = np.sqrt(np.bincount(rows, weights=values ** 2, minlength=len(term_ids)))
            values = (values / np.where(norms > 0, norms, 1.0)[rows]).astype(np.float32)
        return sparse.csr_matrix((values, (rows, cols)), shape=(len(term_ids), len(self.vocabulary)))

    def scores_many(self, queries: list[dict[str, float]]) -> np.ndarray:
        """Score of every document for each query: a dense queries x documents matrix."""
        return self.scores_of(self.query_matrix(queries))

    def scores_of(self, query_matrix: sparse.csr_matrix) -> np.ndarray:
        if self._dense is None:
            self._dense = self.weights.toarray()
        return np.asarray(query_matrix @ self._dense, dtype=np.float32)

    def scores(self, query_terms: dict[str, float]) -> np.ndarray:
        return self.scores_many([query_terms])[0]

    def document_vectors(self) -> np.ndarray:
        """Each document's weights as a dense row (unit length for tf-idf)."""
        return self.weights.T.toarray()

    def documents_with_all(self, terms: list[str]) -> np.ndarray:
        """Indices of the documents that contain every one of `terms` (a cheap filter before a phrase match)."""
        docs: np.ndarray | None = None
        for term in terms:
            row = self.vocabulary.get(term)
            if row is None:
                return np.zeros(0, dtype=np.int64)
            found = self.weights.indices[self.weights.indptr[row]:self.weights.indptr[row + 1]]
            docs = found if docs is None else np.intersect1d(docs, found, assume_unique=True)
        return docs if docs is not None else np.arange(self.weights.shape[1])


def query_terms(text: str, weight: float = 1.0) -> dict[str, float]:
    """Term -> summed weight for one text (e.g. a profile's interests)."""
    terms: dict[str, float] = {}
    for token in tokenize(text):
        terms[token] = terms.get(token, 0.0) + weight
    return terms
