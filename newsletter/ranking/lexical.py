"""BM25 over title + abstract, built once per candidate pool and queried once per subscriber."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

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
    doc_terms: list[Counter]
    doc_len: np.ndarray
    idf: dict[str, float]
    k1: float = 1.5
    b: float = 0.75

    @classmethod
    def build(cls, texts: list[str]) -> BM25Index:
        doc_terms = [Counter(tokenize(text)) for text in texts]
        doc_len = np.array([sum(c.values()) for c in doc_terms], dtype=float)
        df: Counter = Counter()
        for terms in doc_terms:
            df.update(terms.keys())
        n = len(texts)
        idf = {term: math.log(1 + (n - count + 0.5) / (count + 0.5)) for term, count in df.items()}
        return cls(doc_terms, doc_len, idf)

    def scores(self, query_terms: dict[str, float]) -> np.ndarray:
        """BM25 score of every document for weighted query terms."""
        result = np.zeros(len(self.doc_terms))
        if not self.doc_terms:
            return result
        avg_len = self.doc_len.mean() or 1.0
        norm = self.k1 * (1 - self.b + self.b * self.doc_len / avg_len)
        for term, weight in query_terms.items():
            idf = self.idf.get(term)
            if idf is None:
                continue
            tf = np.array([terms.get(term, 0) for terms in self.doc_terms], dtype=float)
            result += weight * idf * tf * (self.k1 + 1) / (tf + norm)
        return result
