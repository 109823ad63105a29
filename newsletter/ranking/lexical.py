"""Lexical matching over title + abstract: index terms, phrase match, and a term index scored as sparse products.

Index terms (`terms`) are what a reader's words and a paper's words are compared as: lower-cased, stop words
dropped, stemmed (Snowball English: "quantizing" and "quantization" are one term, "models" and "model" too), an
acronym's plural made singular ("LLMs" -> "llm"), and a hyphenated word counted as its parts plus the joined word
("fine-tuning" -> fine, tune, finetun), so "fine-tuning", "fine tuning" and "finetuning" all meet.
A paper's title counts twice (TITLE_WEIGHT): a word in the title says more about the paper than one in passing.

The index stores one weight per (term, document) pair, BM25 (the ranker's lexical signal) or tf-idf cosine.
Scoring many queries at once is one sparse x dense product.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

import numpy as np
import snowballstemmer
from scipy import sparse

_WORD = re.compile(r"[A-Za-z0-9]+(?:[-+][A-Za-z0-9]+)*")
_ACRONYM_PLURAL = re.compile(r"[A-Z][A-Z0-9]*[A-Z]s")  # LLMs, VLMs, GNNs (not "Bayes", not "CNNs-based")
_JOINS = re.compile(r"[-+]")
_STEMMER = snowballstemmer.stemmer("english")
_STEM_LOCK = threading.Lock()  # a Snowball stemmer object is not thread-safe
TITLE_WEIGHT = 2
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
    """Plain words: lower-cased, stop words dropped, hyphenated words as their parts, no stemming (the plain
    BM25 baseline of benchmarks/ranking_quality.py; the ranker uses `terms`)."""
    tokens: list[str] = []
    for token in _TOKEN.findall(text.casefold()):
        if "-" in token:
            tokens.extend(part for part in token.split("-") if part and part not in STOPWORDS)
        elif token not in STOPWORDS:
            tokens.append(token)
    return tokens


@lru_cache(maxsize=500_000)
def stem(word: str) -> str:
    with _STEM_LOCK:
        return _STEMMER.stemWord(word)


def terms(text: str, joined: bool = True) -> list[str]:
    """The index terms of a text, in order (see the module docstring). `joined=False` leaves out the joined form of
    hyphenated words (for phrase matching, where only the words in a row count)."""
    found: list[str] = []
    for word in _WORD.findall(text):
        if _ACRONYM_PLURAL.fullmatch(word):
            word = word[:-1]
        word = word.casefold()
        if "-" in word or "+" in word:
            parts = [part for part in _JOINS.split(word) if part]
            found.extend(stem(part) for part in parts if part not in STOPWORDS)
            if joined and len(parts) == 2 and min(map(len, parts)) > 1:  # "fine-tuning" also as "finetuning"
                found.append(stem("".join(parts)))
        elif word not in STOPWORDS:
            found.append(stem(word))
    return found


def phrase_terms(phrase: str, joined: bool = False) -> tuple[str, ...]:
    """A keyword as the index terms it must match in a row ("mixture-of-experts" = "mixture of experts");
    `joined=True`: a hyphenated word as one joined term instead ("fine-tuning" -> finetun)."""
    if not joined:
        return tuple(terms(phrase, joined=False))
    return tuple(stem(word) for word in (_JOINS.sub("", w.casefold()) for w in phrase.split())
                 if word and word not in STOPWORDS)


def document_text(title: str, abstract: str) -> str:
    """What a paper is indexed as: its title TITLE_WEIGHT times, then its abstract."""
    return f"{title} " * TITLE_WEIGHT + abstract


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
    k1: float = 1.5
    b: float = 0.75
    average_length: float = 1.0  # terms per document
    documents: int = 0  # the documents idf was counted over (more than the index's own with a corpus)

    @classmethod
    def build(cls, texts: list[str], kind: Literal["tfidf", "bm25"] = "tfidf", k1: float = 1.5,
              b: float = 0.75, analyzer: Callable[[str], list[str]] = terms,
              corpus: Corpus | None = None) -> TermIndex:
        """The index of `texts` (`analyzer`: how a text becomes terms; queries must be analyzed the same way).

        `corpus`: how many documents of a larger collection (the stored papers) contain each term; idf is then
        taken from it rather than from `texts` alone (a day's pool of a hundred papers is a noisy estimate of how
        common a word is). A term the corpus does not know counts with its frequency in `texts`.
        """
        doc_terms = [Counter(analyzer(text)) for text in texts]
        vocabulary: dict[str, int] = {}
        rows, cols, tfs = [], [], []
        for doc, counts in enumerate(doc_terms):
            for term, count in counts.items():
                rows.append(vocabulary.setdefault(term, len(vocabulary)))
                cols.append(doc)
                tfs.append(count)
        n = len(texts)
        rows_a, cols_a, tf = np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64), np.array(tfs, np.float32)
        df = np.bincount(rows_a, minlength=len(vocabulary)).astype(np.float32)
        if corpus is not None and corpus.documents > n:
            known = np.array([corpus.frequencies.get(term, 0) for term in vocabulary], dtype=np.float32)
            n, df = corpus.documents, np.maximum(known, df)
        doc_len = np.array([sum(c.values()) for c in doc_terms], dtype=np.float32)
        index = cls(kind, vocabulary, sparse.csr_matrix((0, 0)), np.zeros(0, np.float32), doc_terms, k1=k1, b=b,
                    average_length=float(doc_len.mean()) if len(texts) and doc_len.mean() > 0 else 1.0)
        if kind == "bm25":
            idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
            values = index._weights_of(tf, idf[rows_a], doc_len[cols_a])
        else:
            idf = (np.log((1 + n) / (1 + df)) + 1).astype(np.float32)
            values = index._weights_of(tf, idf[rows_a], doc_len[cols_a])
            norms = np.sqrt(np.bincount(cols_a, weights=values ** 2, minlength=len(texts)))
            values = values / np.where(norms > 0, norms, 1.0)[cols_a]
        index.weights = sparse.csr_matrix((values.astype(np.float32), (rows_a, cols_a)),
                                          shape=(len(vocabulary), len(texts)))
        index.documents = n
        index.idf = idf
        ids = interned_ids(vocabulary)
        index._column_of_id = np.full(int(ids.max()) + 1 if len(ids) else 1, -1, dtype=np.int64)
        index._column_of_id[ids] = np.arange(len(ids))
        return index

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

    def document_vectors(self, unit: bool = False) -> np.ndarray:
        """Each document's weights as a dense row (unit length for tf-idf, or when `unit`)."""
        rows = self.weights.T.toarray()
        if unit:
            norms = np.linalg.norm(rows, axis=1, keepdims=True)
            rows /= np.where(norms > 0, norms, 1.0)
        return rows

    def document_matrix(self, texts: list[str]) -> np.ndarray:
        """Unit-length rows for texts outside the index, weighted as the index weighs its own documents: the
        space of `document_vectors(unit=True)` (terms the index does not know are left out)."""
        matrix = np.zeros((len(texts), len(self.vocabulary)), dtype=np.float32)
        for row, text in enumerate(texts):
            counts = Counter(terms(text))
            known = [(self.vocabulary[t], c) for t, c in counts.items() if t in self.vocabulary]
            if not known:
                continue
            cols = np.array([c for c, _ in known])
            tf = np.array([n for _, n in known], dtype=np.float32)
            matrix[row, cols] = self._weights_of(tf, self.idf[cols], float(sum(counts.values())))
            matrix[row] /= max(float(np.linalg.norm(matrix[row])), 1e-12)
        return matrix

    def _weights_of(self, tf: np.ndarray, idf: np.ndarray, length: float | np.ndarray) -> np.ndarray:
        """A document's weight for each of its terms (before tf-idf's unit length)."""
        if self.kind == "bm25":
            return idf * tf * (self.k1 + 1) / (tf + self.k1 * (1 - self.b + self.b * length / self.average_length))
        return (1 + np.log(tf)) * idf

    def term_idf(self, term: str) -> float:
        """The idf of an index term (a term no document has counts as the rarest)."""
        row = self.vocabulary.get(term)
        return self._idf_of_df(0.0) if row is None else float(self.idf[row])

    def _idf_of_df(self, df: float) -> float:
        n = self.documents
        if self.kind == "bm25":
            return float(np.log1p((n - df + 0.5) / (df + 0.5)))
        return float(np.log((1 + n) / (1 + df)) + 1)

    @property
    def common_idf(self) -> float:
        """The idf of a term in a quarter of the documents: below it a term is too common to explain a pick."""
        return self._idf_of_df(max(1.0, self.documents / 4))

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


@dataclass
class Corpus:
    """How many documents of a collection contain each term: the idf of `TermIndex.build(..., corpus=)`."""

    documents: int = 0
    frequencies: Counter = field(default_factory=Counter)

    def add(self, text: str) -> None:
        self.documents += 1
        self.frequencies.update(set(terms(text)))


def query_terms(text: str, weight: float = 1.0) -> dict[str, float]:
    """Index term -> summed weight for one text (e.g. a profile's interests)."""
    found: dict[str, float] = {}
    for term in terms(text):
        found[term] = found.get(term, 0.0) + weight
    return found
