"""Reader feedback on a paper ("more like this" / "less like this"): recorded once per paper, latest wins."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlmodel import Session, select

from newsletter.config import Settings
from newsletter.errors import InvalidInput, NotFound
from newsletter.models import Event, Feedback, Paper, Subscriber, utcnow
from subscribers.tokens import make_token

KINDS = ("more", "less")


def feedback_url(subscriber: Subscriber, paper_id: int, kind: str, settings: Settings) -> str:
    token = make_token("feedback", subscriber.id, subscriber.email, {"p": paper_id, "k": kind}, settings=settings)
    return f"{settings.base_url.rstrip('/')}/feedback/{token}"


def record_feedback(session: Session, subscriber: Subscriber, paper_id: int, kind: str) -> Feedback:
    if kind not in KINDS:
        raise InvalidInput(f"feedback must be one of {', '.join(KINDS)}, not {kind!r}")
    if session.get(Paper, paper_id) is None:
        raise NotFound(f"no paper {paper_id}")
    feedback = session.exec(select(Feedback).where(Feedback.subscriber_id == subscriber.id,
                                                   Feedback.paper_id == paper_id)).first()
    if feedback is None:
        feedback = Feedback(subscriber_id=subscriber.id, paper_id=paper_id, kind=kind)
    feedback.kind, feedback.created_at = kind, utcnow()
    session.add(feedback)
    session.add(Event(subscriber_id=subscriber.id, kind="feedback", detail={"paper_id": paper_id, "kind": kind}))
    session.flush()
    return feedback


def feedback_of(session: Session, subscriber_id: int) -> dict[int, str]:
    """paper id -> "more" | "less" for one subscriber."""
    rows = session.exec(select(Feedback.paper_id, Feedback.kind).where(Feedback.subscriber_id == subscriber_id))
    return dict(rows.all())


@dataclass
class FeedbackModel:
    """A subscriber's own linear model over paper vectors: "more like this" vs "less like this" + background.

    Logistic regression (L2, a few Newton steps). Papers the subscriber did not judge, sampled from the pool,
    are weak negatives: they anchor what "ordinary" looks like, so one saved paper already means something.
    """

    weights: np.ndarray
    bias: float

    L2 = 0.01
    BACKGROUND = 50  # sampled pool papers
    BACKGROUND_WEIGHT = 0.5  # all background together weighs half of the positives together

    @classmethod
    def fit(cls, liked: np.ndarray, disliked: np.ndarray, pool: np.ndarray, seed: int = 0) -> FeedbackModel:
        rng = np.random.default_rng(seed)
        background = pool[rng.choice(len(pool), size=min(cls.BACKGROUND, len(pool)), replace=False)]
        groups = [(liked, 1.0, 1.0), (disliked, 0.0, 1.0), (background, 0.0, cls.BACKGROUND_WEIGHT)]
        x = np.vstack([g for g, _, _ in groups if len(g)]).astype(np.float64)
        y = np.concatenate([np.full(len(g), label) for g, label, _ in groups if len(g)])
        w = np.concatenate([np.full(len(g), share / len(g)) for g, _, share in groups if len(g)])
        x = np.hstack([x, np.ones((len(x), 1))])  # bias column
        theta = np.zeros(x.shape[1])
        penalty = np.full(x.shape[1], cls.L2)
        penalty[-1] = 0.0
        for _ in range(8):
            p = 1 / (1 + np.exp(-x @ theta))
            gradient = x.T @ (w * (p - y)) + penalty * theta
            hessian = (x.T * (w * p * (1 - p))) @ x + np.diag(penalty + 1e-9)
            theta -= np.linalg.solve(hessian, gradient)
        return cls(theta[:-1].astype(np.float32), float(theta[-1]))

    def predict(self, features: np.ndarray) -> np.ndarray:
        """p(more like this) for each row of features."""
        return (1 / (1 + np.exp(-(features @ self.weights + self.bias)))).astype(np.float32)
