"""Maximal marginal relevance over each subscriber's best candidates, for a whole chunk of subscribers at once."""

from __future__ import annotations

import numpy as np

NEAR_DUPLICATE = 0.9  # similarity above which a candidate is a near-duplicate of a pick: it goes last


def mmr_select(scores: np.ndarray, similarity: np.ndarray, candidates: np.ndarray, k: int,
               lam: float, near_duplicate: float = NEAR_DUPLICATE) -> np.ndarray:
    """Positions (into each row of `candidates`) of k picks, in order.

    Each step takes the candidate maximizing lam * relevance - (1 - lam) * (highest similarity to a pick so far),
    with relevance the row's scores scaled to [0, 1]; a near-duplicate of a pick comes after every other
    candidate whatever its relevance. `scores` and `candidates` are subscribers x M;
    `similarity` is papers x papers. Candidates scored -inf (excluded) come last and are never picked twice.
    """
    rows, m = scores.shape
    finite = np.isfinite(scores)
    low = np.where(finite, scores, np.inf).min(axis=1, keepdims=True)
    high = np.where(finite, scores, -np.inf).max(axis=1, keepdims=True)
    span = np.where(high > low, high - low, 1.0)
    relevance = np.where(finite, (scores - low) / span, -1e9)
    closest = np.zeros((rows, m), dtype=np.float32)
    chosen = np.zeros((rows, k), dtype=np.int64)
    taken = np.zeros((rows, m), dtype=bool)
    every_row = np.arange(rows)
    weighted = (lam * relevance).astype(np.float32)
    for step in range(k):
        value = weighted - (1 - lam) * closest
        value[closest >= near_duplicate] -= 1e6
        value[taken] = -np.inf
        pick = value.argmax(axis=1)
        chosen[:, step] = pick
        taken[every_row, pick] = True
        picked_paper = candidates[every_row, pick][:, None]
        np.maximum(closest, similarity[picked_paper, candidates], out=closest)
    return chosen
