"""Putting signals of different scales on one: each reader's scores standardized over the day's pool.

A cosine between MiniLM vectors lives in about [0, 0.7]; a BM25 score in [0, 30] and more for a long profile. Added
raw, whichever has the wider spread for this reader decides alone. Standardized per reader (subtract the reader's
mean over the pool, divide by the standard deviation), each says "how exceptional is this paper for this reader",
and the signals add up on equal terms. A reader with no signal (empty profile: every score equal) gets zeros.
"""

from __future__ import annotations

import numpy as np


def standardize_rows(scores: np.ndarray) -> None:
    """In place: each row minus its mean, divided by its standard deviation (rows with no spread become 0)."""
    scores -= scores.mean(axis=1, keepdims=True)
    spread = np.sqrt(np.einsum("ij,ij->i", scores, scores) / max(scores.shape[1], 1))[:, None]
    scores /= np.where(spread > 0, spread, 1.0).astype(scores.dtype)
