"""Reader feedback on a paper ("more like this" / "less like this"): recorded once per paper, latest wins."""

from __future__ import annotations

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
