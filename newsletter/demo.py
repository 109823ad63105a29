"""The main job on the embedded default: SQLite, the bundled sample papers, a local SMTP sink. No servers needed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlmodel import Session, col, select

from newsletter import db, jobs
from newsletter.clock import today
from newsletter.compose import picks_of_deliveries
from newsletter.config import Settings, SmtpSecurity
from newsletter.ingest import SAMPLE, SourceReport
from newsletter.models import Delivery, Subscriber, SubscriberStatus
from newsletter.sink import SmtpSink
from subscribers.profiles import add_subscriber, find_subscriber

SAMPLE_SUBSCRIBERS = [
    {"email": "ada@example.org", "name": "Ada", "timezone": "Europe/London",
         "interests": "Making large language model inference cheaper: KV cache compression, quantization, "
                      "long context.",
         "keywords": "KV cache, quantization, long-context"},
    {"email": "grace@example.org", "name": "Grace", "timezone": "America/New_York",
         "interests": "3D reconstruction and novel view synthesis from images; neural radiance fields and splatting.",
         "keywords": "NeRF, Gaussian Splatting, 3D"},
    {"email": "alan@example.org", "name": "Alan", "timezone": "Asia/Tokyo",
         "interests": "Dense retrieval and text embeddings for search, retrieval-augmented generation.",
         "keywords": "dense retrieval, RAG, embeddings"},
    {"email": "katherine@example.org", "name": "Katherine", "timezone": "America/Los_Angeles",
         "interests": "Diffusion models for image and video generation, and making them faster.",
         "keywords": "diffusion, video generation"},
    {"email": "yoshua@example.org", "name": "Yoshua", "timezone": "Europe/Paris",
         "interests": "Sparse mixture-of-experts architectures, scaling laws and efficient pre-training.",
         "keywords": "mixture-of-experts, MoE, scaling laws"},
    {"email": "fei@example.org", "name": "Fei", "timezone": "Asia/Shanghai",
         "interests": "Self-supervised visual representation learning, contrastive methods, vision transformers.",
         "keywords": "self-supervised, contrastive, vision transformer"},
]


@dataclass
class DemoReport:
    outbox: Path
    ingested: list[SourceReport]
    daily: jobs.DailyReport
    new_subscribers: int


def add_sample_subscribers(session: Session) -> int:
    added = 0
    for profile in SAMPLE_SUBSCRIBERS:
        if find_subscriber(session, profile["email"]) is None:
            add_subscriber(session, status=SubscriberStatus.active, **profile)
            added += 1
    return added


def run_demo(settings: Settings, day: date | None = None) -> DemoReport:
    day = day or today()
    db.upgrade(settings.sqlalchemy_url)
    outbox = settings.data_dir / "outbox"
    ingested = jobs.ingest_sources(settings, [SAMPLE], day=day)
    with db.session_scope(settings.sqlalchemy_url) as session:
        added = add_sample_subscribers(session)
    with SmtpSink(outbox) as sink, db.session_scope(settings.sqlalchemy_url) as session:
        local = settings.model_copy(update={"smtp_host": sink.host, "smtp_port": sink.port,
                                           "smtp_username": "", "smtp_security": SmtpSecurity.none})
        daily = jobs.run_daily(session, day, local)
    return DemoReport(outbox=outbox, ingested=ingested, daily=daily, new_subscribers=added)


def summary_rows(settings: Settings, edition_id: int) -> list[tuple[str, str, str]]:
    """(address, delivery status, top paper) for each subscriber: the demo's closing table."""
    with db.session_scope(settings.sqlalchemy_url) as session:
        rows = session.exec(select(Subscriber, Delivery).join(
            Delivery, (col(Delivery.subscriber_id) == Subscriber.id) & (col(Delivery.edition_id) == edition_id),
            isouter=True).order_by(col(Subscriber.id))).all()
        picks = picks_of_deliveries(session, [d.id for _, d in rows if d is not None and d.id is not None])
        return [(s.email, d.status if d else s.status,
                 picks[d.id][0].paper.title if d is not None and picks.get(d.id) else "-") for s, d in rows]
