"""Tables. Declared once here; the schema itself is created and changed only by Alembic migrations.

Statuses are enums in Python and plain VARCHAR(20) strings in the database (portable across SQLite and
PostgreSQL, no native enum types): a row read back carries enum members, and writing a value outside the enum
fails at flush instead of storing a typo.
"""

from __future__ import annotations

import datetime as dt
import secrets
from datetime import datetime
from enum import Enum, StrEnum

import idna
from sqlalchemy import JSON, Column, LargeBinary, String, TypeDecorator, UniqueConstraint
from sqlmodel import Field, SQLModel

from newsletter.clock import utcnow


class SubscriberStatus(StrEnum):
    pending = "pending"
    active = "active"
    unsubscribed = "unsubscribed"
    bounced = "bounced"
    complained = "complained"


class EditionStatus(StrEnum):
    planned = "planned"
    sending = "sending"
    paused = "paused"
    cancelled = "cancelled"
    done = "done"


class DeliveryStatus(StrEnum):
    pending = "pending"  # planned, not yet claimed by a sender
    sending = "sending"  # claimed; the server has not accepted it yet
    sent = "sent"  # the SMTP server accepted it
    failed = "failed"  # permanently refused or out of retries
    skipped = "skipped"  # suppressed at send time (unsubscribed, bounced, ...)


class StatusType(TypeDecorator):
    """A str enum stored as its value in a VARCHAR(20) column (no database enum type, no CHECK constraint)."""

    impl = String(20)
    cache_ok = True

    def __init__(self, enum: type[Enum]):
        super().__init__()
        self.enum = enum

    def process_bind_param(self, value, dialect):
        return None if value is None else self.enum(value).value  # a value outside the enum raises ValueError

    def process_result_value(self, value, dialect):
        return None if value is None else self.enum(value)


def status_column(enum: type[Enum], default: Enum, index: bool = False) -> Column:
    return Column(StatusType(enum), nullable=False, default=default.value, index=index)


def address_key(address: str) -> str:
    """The identity of an email address: one mailbox, one subscriber. Case-insensitive (`Alice@example.org` is
    `alice@example.org`), the domain in its ASCII (IDNA) form (`bücher.example` is `xn--bcher-kva.example`).
    What Subscriber.email_key holds (set from the address on insert when not given)."""
    local, _, domain = address.strip().rpartition("@")
    try:
        domain = idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError:
        pass
    return f"{local.lower()}@{domain.lower()}"


def _email_key_default(context) -> str:
    return address_key(context.get_current_parameters()["email"])


class Paper(SQLModel, table=True):
    id: int = Field(default=None, primary_key=True)  # set on insert; code reads the ids of stored rows only
    external_id: str = Field(index=True, unique=True)  # arXiv id when known, else "title:<hash>"
    title_key: str = Field(index=True)  # normalized title, the fallback dedupe key
    title: str
    abstract: str = ""
    authors: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    url: str = ""  # the paper's canonical page: https://arxiv.org/abs/<id> when the arXiv id is known; "" if none
    pdf_url: str = ""
    code_url: str = ""
    upvotes: int = 0
    comments: int = 0
    keywords: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    source: str = ""
    published_at: datetime | None = None
    ingested_at: datetime = Field(default_factory=utcnow, index=True)
    # Sentence embedding of title + abstract (float32 bytes), computed once at ingest; None until embedded.
    embedding: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    embedding_model: str = ""
    # What the Hugging Face feed adds: its one-line AI summary, the paper's thumbnail and project page, the
    # organisation that submitted it. Links are http(s) only (newsletter.ingest.paper_in.safe_url).
    tldr: str = Field(default="", sa_column_kwargs={"server_default": ""})
    thumbnail_url: str = Field(default="", sa_column_kwargs={"server_default": ""})
    project_url: str = Field(default="", sa_column_kwargs={"server_default": ""})
    organization: str = Field(default="", sa_column_kwargs={"server_default": ""})


class Subscriber(SQLModel, table=True):
    # AUTOINCREMENT on SQLite: an id is never handed out twice, not even after the newest subscriber was removed,
    # so a link signed for a removed account can never act for a new one (PostgreSQL sequences never reuse ids).
    __table_args__ = {"sqlite_autoincrement": True}

    id: int = Field(default=None, primary_key=True)  # set on insert; code reads the ids of stored rows only
    email: str  # as typed, normalized (subscribers.profiles.normalize_email): what mail is addressed to
    # The address's identity: case-insensitive, the domain in its ASCII (IDNA) form. One subscriber per mailbox
    # (subscribers.profiles.address_key); every look-up by address goes through it.
    email_key: str = Field(default=None, index=True, unique=True, sa_column_kwargs={"default": _email_key_default})
    name: str = ""
    status: SubscriberStatus = Field(default=SubscriberStatus.pending,
                                     sa_column=status_column(SubscriberStatus, SubscriberStatus.pending, index=True))
    interests: str = ""
    keywords: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    followed_authors: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    excluded_keywords: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Papers the reader wrote or liked, given at sign-up or later ("seed papers"), as stored paper ids: the ranker
    # learns from them like from papers saved with "more like this" (subscribers.profiles.resolve_seed_papers).
    seed_paper_ids: list[int] = Field(default_factory=list,
                                      sa_column=Column(JSON, nullable=False, server_default="[]"))
    timezone: str = "UTC"
    send_hour: int = 7
    frequency: str = "daily"
    paused: bool = False  # paused subscribers keep their profile but receive nothing until they resume
    consent: str = ""  # how consent was obtained: double-opt-in, operator-asserted, ...
    soft_bounces: int = 0  # consecutive soft bounces; reset by a successful delivery
    # Sentence embedding of interests + keywords (float32 bytes) and the hash of the text and model it came from:
    # recomputed only when the profile changes (newsletter.ranking.embeddings.profile_vectors).
    profile_embedding: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    profile_key: str = Field(default="", max_length=40, sa_column_kwargs={"server_default": ""})
    # The facets of the profile (newsletter.ranking.facets), {"key": hash of the text, "facets": [...]}: recomputed
    # only when the profile changes (newsletter.ranking.stored_facets).
    profile_facets: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}"))
    created_at: datetime = Field(default_factory=utcnow)
    confirmed_at: datetime | None = None
    unsubscribed_at: datetime | None = None


class Edition(SQLModel, table=True):
    id: int = Field(default=None, primary_key=True)  # set on insert; code reads the ids of stored rows only
    date: dt.date = Field(index=True, unique=True)
    status: EditionStatus = Field(default=EditionStatus.planned,
                                  sa_column=status_column(EditionStatus, EditionStatus.planned))
    created_at: datetime = Field(default_factory=utcnow)
    # When the retention prune (newsletter.retention) began removing this edition's deliveries and picks: from then
    # on the edition takes no new deliveries (editions.require_open), and its figures live on in the tallies below.
    pruned_at: datetime | None = None


def new_message_key() -> str:
    return secrets.token_hex(12)


class Delivery(SQLModel, table=True):
    """One row per subscriber x edition: the single source of truth for "was it sent"."""

    __table_args__ = (UniqueConstraint("edition_id", "subscriber_id"),)

    id: int = Field(default=None, primary_key=True)  # set on insert; code reads the ids of stored rows only
    edition_id: int = Field(foreign_key="edition.id", index=True)
    subscriber_id: int = Field(foreign_key="subscriber.id", index=True)
    status: DeliveryStatus = Field(default=DeliveryStatus.pending,
                                   sa_column=status_column(DeliveryStatus, DeliveryStatus.pending, index=True))
    # The random part of the Message-ID, drawn once when the row is made: retries reuse it, and no other install
    # or database copy can produce the same Message-ID (the ids beside it are per-database counters).
    # (SQLModel makes the factory the column's default too, so Core bulk inserts draw one per row.)
    message_key: str = Field(default_factory=new_message_key, max_length=24)
    message_id: str | None = None  # the Message-ID as last handed to the server
    attempts: int = 0
    error: str | None = None
    next_attempt_at: datetime | None = None  # after a temporary failure: not before this time
    queued_at: datetime | None = None  # when a Celery send task last took this row (see newsletter.dispatch)
    claimed_at: datetime | None = None
    sent_at: datetime | None = None


class Feedback(SQLModel, table=True):
    """A reader's judgement of a paper: "more" (positive) or "less" (negative). The latest one counts."""

    __table_args__ = (UniqueConstraint("subscriber_id", "paper_id"),)

    id: int = Field(default=None, primary_key=True)  # set on insert; code reads the ids of stored rows only
    subscriber_id: int = Field(foreign_key="subscriber.id", index=True)
    paper_id: int = Field(foreign_key="paper.id", index=True)
    kind: str = Field(max_length=10)  # "more" | "less"
    created_at: datetime = Field(default_factory=utcnow)


class Event(SQLModel, table=True):
    """Something that happened to a subscriber: unsubscribe, bounce, complaint, confirm, ... (for stats and audit)."""

    id: int = Field(default=None, primary_key=True)  # set on insert; code reads the ids of stored rows only
    subscriber_id: int | None = Field(default=None, foreign_key="subscriber.id", index=True)
    kind: str = Field(index=True, max_length=30)
    detail: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, index=True)


class AdminSession(SQLModel, table=True):
    """A browser signed in to the admin pages. The cookie holds a random value; only its SHA-256 is stored, so a
    copy of the database signs nobody in. Signing out deletes the row; a row past `expires_at` counts for nothing."""

    __tablename__ = "admin_session"

    id: int = Field(default=None, primary_key=True)  # set on insert; code reads the ids of stored rows only
    token_hash: str = Field(index=True, unique=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime = Field(index=True)


class Pick(SQLModel, table=True):
    """A paper chosen for one delivery, with its rank, score and the reasons shown to the reader."""

    __table_args__ = (UniqueConstraint("delivery_id", "paper_id"),)

    id: int = Field(default=None, primary_key=True)  # set on insert; code reads the ids of stored rows only
    delivery_id: int = Field(foreign_key="delivery.id", index=True)
    paper_id: int = Field(foreign_key="paper.id", index=True)
    position: int
    score: float
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class EditionTally(SQLModel, table=True):
    """Deliveries of an edition removed by the retention prune, by status: with the rows still present they make
    the edition's figures (edition_control.delivery_counts), so `stats`, `editions` and the admin page keep them."""

    __tablename__ = "edition_tally"

    edition_id: int = Field(foreign_key="edition.id", primary_key=True)
    status: DeliveryStatus = Field(sa_column=Column(StatusType(DeliveryStatus), primary_key=True))
    deliveries: int = 0


class EditionPaperTally(SQLModel, table=True):
    """How many sent emails of an edition carried a paper, for the deliveries the retention prune removed (the
    most-sent papers of `newsletter stats`)."""

    __tablename__ = "edition_paper_tally"

    edition_id: int = Field(foreign_key="edition.id", primary_key=True)
    paper_id: int = Field(foreign_key="paper.id", primary_key=True)
    sent: int = 0
