"""Choosing papers for subscribers: the candidate pool of an edition, each subscriber's profile, what they were sent."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

from sqlmodel import Session, col, func, or_, select

from newsletter.batching import chunked
from newsletter.config import Settings
from newsletter.models import Delivery, DeliveryStatus, Feedback, Paper, Pick, Subscriber
from newsletter.ranking import embeddings
from newsletter.ranking.facets import facets_of
from newsletter.ranking.lexical import Corpus
from newsletter.ranking.score import CandidatePool, Profile, Recommendation

__all__ = ["CandidatePool", "Profile", "Recommendation", "candidate_papers", "load_pool", "prepare_profiles",
           "profiles_for", "recommend", "sent_paper_ids", "trending_papers"]

TRENDING_SHOWN = 5  # the trending list under each email (and on the home page)


def edition_end(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)


def candidate_papers(session: Session, day: date, window_days: int) -> list[Paper]:
    """Papers ingested or published in the `window_days` up to the end of `day`."""
    end = edition_end(day)
    start = end - timedelta(days=window_days)
    recent = or_(col(Paper.ingested_at).between(start, end), col(Paper.published_at).between(start, end))
    return list(session.exec(select(Paper).where(recent).order_by(col(Paper.id))))


def load_pool(session: Session, day: date, settings: Settings) -> CandidatePool:
    """The edition's candidates, indexed once. Papers that missed embedding at ingest are embedded (and stored) here."""
    papers = candidate_papers(session, day, settings.candidate_days)
    embeddings.embed_missing(session, settings, papers)
    return CandidatePool(papers, now=edition_end(day), semantic=embeddings.semantic_available(settings),
                         corpus=stored_corpus(session, papers))


CORPUS_PAPERS = 5000  # the newest stored papers whose words set how rare a word is (idf)
_corpus_cache: dict[tuple, Corpus] = {}
_corpus_lock = threading.Lock()


def stored_corpus(session: Session, pool: Sequence[Paper]) -> Corpus:
    """Document frequencies over the newest CORPUS_PAPERS stored papers and the pool: the idf of the ranker's
    BM25 (a day's pool alone is too small to say how common a word is). Counted once per process until papers
    are added (keyed by the newest id and the count)."""
    newest, count = session.exec(select(func.max(Paper.id), func.count(col(Paper.id)))).one()
    key = (str(getattr(session.get_bind(), "url", "")), newest, count, tuple(p.id for p in pool))
    with _corpus_lock:
        found = _corpus_cache.get(key)
        if found is None:
            corpus = Corpus()
            ids = {p.id for p in pool}
            for paper in pool:
                corpus.add(f"{paper.title} {paper.abstract}")
            rows = session.exec(select(Paper.id, Paper.title, Paper.abstract).order_by(col(Paper.id).desc())
                                .limit(CORPUS_PAPERS))
            for paper_id, title, abstract in rows:
                if paper_id not in ids:
                    corpus.add(f"{title} {abstract}")
            _corpus_cache.clear()
            found = _corpus_cache[key] = corpus
    return found


def trending_papers(session: Session, day: date, settings: Settings) -> list[Paper]:
    """The edition's most upvoted candidates: enough that each reader still gets a few they were not picked."""
    papers = [p for p in candidate_papers(session, day, settings.candidate_days) if p.upvotes]
    return sorted(papers, key=lambda p: -p.upvotes)[: TRENDING_SHOWN + settings.papers_per_email]


def recommend(session: Session, subscriber: Subscriber, day: date, settings: Settings,
              limit: int | None = None) -> list[Recommendation]:
    """What the ranker picks for this subscriber now, best first (for previews and `newsletter recommend`)."""
    pool = load_pool(session, day, settings)
    return pool.rank(profiles_for(session, [subscriber], settings)[0], limit or settings.papers_per_email)


def sent_paper_ids(session: Session, subscriber_id: int, exclude_edition_id: int | None = None) -> set[int]:
    """Papers this subscriber has already been sent (in deliveries the server accepted)."""
    return sent_papers_of(session, [subscriber_id], exclude_edition_id)[subscriber_id]


def sent_papers_of(session: Session, subscriber_ids: Sequence[int],
                   exclude_edition_id: int | None = None) -> dict[int, set[int]]:
    """subscriber id -> ids of the papers they were sent, for many subscribers in one query."""
    query = (
        select(Delivery.subscriber_id, Pick.paper_id)
        .join(Delivery, col(Delivery.id) == Pick.delivery_id)
        .where(col(Delivery.subscriber_id).in_(subscriber_ids), col(Delivery.status) == DeliveryStatus.sent)
    )
    if exclude_edition_id is not None:
        query = query.where(col(Delivery.edition_id) != exclude_edition_id)
    sent: dict[int, set[int]] = {sid: set() for sid in subscriber_ids}
    for subscriber_id, paper_id in session.exec(query):
        sent[subscriber_id].add(paper_id)
    return sent


def feedback_papers_of(session: Session, subscriber_ids: Sequence[int]) -> dict[int, dict[str, list[Paper]]]:
    """subscriber id -> {"more": [papers], "less": [papers]}, for many subscribers in one query."""
    found: dict[int, dict[str, list[Paper]]] = {sid: {"more": [], "less": []} for sid in subscriber_ids}
    rows = session.exec(select(Feedback.subscriber_id, Feedback.kind, Paper)
                        .join(Paper, col(Paper.id) == Feedback.paper_id)
                        .where(col(Feedback.subscriber_id).in_(subscriber_ids)).order_by(col(Feedback.id)))
    for subscriber_id, kind, paper in rows:
        found[subscriber_id][kind].append(paper)
    return found


def seed_papers_of(session: Session, subscribers: Sequence[Subscriber]) -> dict[int, list[Paper]]:
    """subscriber id -> their seed papers (see seeds.py), for many subscribers in a few queries."""
    wanted = sorted({i for s in subscribers for i in s.seed_paper_ids or []})
    papers: dict[int, Paper] = {}
    for part in chunked(wanted, 500):
        papers.update((p.id, p) for p in session.exec(select(Paper).where(col(Paper.id).in_(part))))
    return {s.id: [papers[i] for i in s.seed_paper_ids or [] if i in papers] for s in subscribers}


def profiles_for(session: Session, subscribers: Sequence[Subscriber], settings: Settings) -> list[Profile]:
    """Ranker profiles for a batch of subscribers: a handful of queries, whatever the batch size."""
    ids = [s.id for s in subscribers]
    vectors = embeddings.profile_vectors(session, subscribers, settings)
    sent = sent_papers_of(session, ids)
    feedback = feedback_papers_of(session, ids)
    seeds = seed_papers_of(session, subscribers)
    facets = stored_facets(session, subscribers)
    return [Profile.of(s, vector=v, sent=sent[s.id], liked=feedback[s.id]["more"], disliked=feedback[s.id]["less"],
                       seeds=seeds[s.id], facet_texts=f)
            for s, v, f in zip(subscribers, vectors, facets)]


PREPARE_BATCH = 2000  # subscribers whose profile vectors are encoded (and stored) together


def prepare_profiles(session: Session, settings: Settings) -> int:
    """Compute and store the profile vector and facets of every subscriber whose profile
    changed since they were stored, PREPARE_BATCH at a time (one batched encode each): what an import does once,
    so planning an edition never encodes a profile. Flushes each batch and lets go of it (memory stays flat
    whatever the list size). Returns how many subscribers were looked at."""
    seen, after = 0, 0
    while True:
        batch = list(session.exec(select(Subscriber).where(col(Subscriber.id) > after)
                                  .order_by(col(Subscriber.id)).limit(PREPARE_BATCH)))
        if not batch:
            return seen
        embeddings.profile_vectors(session, batch, settings)
        stored_facets(session, batch)
        session.flush()
        session.expunge_all()
        seen, after = seen + len(batch), batch[-1].id


def stored_facets(session: Session, subscribers: Sequence[Subscriber]) -> list[list[str]]:
    """Each subscriber's facets (facets.py), stored on the subscriber with the hash of the text they came from:
    worked out once per profile edit, not once per edition."""
    found, changed = [], False
    for subscriber in subscribers:
        key = hashlib.sha1(f"{subscriber.interests}\n{chr(31).join(subscriber.keywords)}".encode()).hexdigest()
        stored = subscriber.profile_facets or {}
        if stored.get("key") != key:
            stored = {"key": key, "facets": facets_of(subscriber.interests, list(subscriber.keywords))}
            subscriber.profile_facets = stored
            session.add(subscriber)
            changed = True
        found.append(list(stored["facets"]))
    if changed:
        session.flush()
    return found

