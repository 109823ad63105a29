"""BM25 over title + abstract, built once per candidate pool and queried once per subscriber."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import numpy as np
from scipy import sparse

_TOKEN = re.compile(r"[a-z0-9]+(?:[-+][a-z0-9]+)*")
STOPWORDS = frozenset(
    "a an and are as at be by for from has have in into is it its of on or that the their this to via we with "
    "our which these using based use new can not than more such also how what i my me am interested work "
    "working research papers paper about".split()
)


def tokenize(text: str) -> list[str]:
    tokens = []
    for token in _TOKEN.findall(text.casefold()):
        if token in STOPWORDS:
            continue
        tokens.append(token)
        if "-" in token:  # "mixture-of-experts" also counts as its parts
            tokens.extend(part for part in token.split("-") if part and part not in STOPWORDS)
    return tokens


def contains_phrase(text_folded: str, phrase: str) -> bool:
    """Whole-word, case-insensitive match of a keyword such as "KV cache" or "MoE"."""
    pattern = r"(?<![a-z0-9])" + r"[\s\-]+".join(map(re.escape, phrase.casefold().split())) + r"(?![a-z0-9])"
    return re.search(pattern, text_folded) is not None


@dataclass
class BM25Index:
    """BM25 weights of every (term, document) pair as a sparse terms x documents matrix.

    A query is a sparse weighted bag of terms, so scoring many queries at once is one sparse product.
    """

    vocabulary: dict[str, int]
    weights: sparse.csr_matrix  # terms x documents: idf * saturated term frequency
    doc_terms: list[Counter]
    k1: float = 1.5
    b: float = 0.75

    @classmethod
    def build(cls, texts: list[str], k1: float = 1.5, b: float = 0.75) -> BM25Index:
        doc_terms = [Counter(tokenize(text)) for text in texts]
        vocabulary: dict[str, int] = {}
        rows, cols, tfs = [], [], []
        for doc, terms in enumerate(doc_terms):
            for term, count in terms.items():
                rows.append(vocabulary.setdefault(term, len(vocabulary)))
                cols.append(doc)
                tfs.append(count)
        n = len(texts)
        doc_len = np.array([sum(c.values()) for c in doc_terms], dtype=np.float32)
        avg_len = float(doc_len.mean()) if n and doc_len.mean() > 0 else 1.0
        rows_a, cols_a, tf = np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64), np.array(tfs, np.float32)
        df = np.bincount(rows_a, minlength=len(vocabulary)).astype(np.float32)
        idf = np.log1p((n - df + 0.5) / (df + 0.5))
        norm = k1 * (1 - b + b * doc_len[cols_a] / avg_len) if n else np.zeros(0, np.float32)
        values = idf[rows_a] * tf * (k1 + 1) / (tf + norm)
        weights = sparse.csr_matrix((values.astype(np.float32), (rows_a, cols_a)), shape=(len(vocabulary), n))
        return cls(vocabulary, weights, doc_terms, k1, b)

    def query_matrix(self, queries: list[dict[str, float]]) -> sparse.csr_matrix:
        """Weighted query terms, one row per query, over this index's vocabulary (unknown terms dropped)."""
        rows, cols, values = [], [], []
        for row, query in enumerate(queries):
            for term, weight in query.items():
                col = self.vocabulary.get(term)
                if col is not None:
                    rows.append(row)
                    cols.append(col)
                    values.append(weight)
        return sparse.csr_matrix((np.array(values, np.float32), (rows, cols)),
                                 shape=(len(queries), len(self.vocabulary)))

    def scores_many(self, queries: list[dict[str, float]]) -> sparse.csr_matrix:
        """BM25 of every document for each query: a sparse queries x documents matrix."""
        return self.query_matrix(queries) @ self.weights

    def scores(self, query_terms: dict[str, float]) -> np.ndarray:
        """BM25 score of every document for one weighted query."""
        return self.scores_many([query_terms]).toarray()[0]

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
