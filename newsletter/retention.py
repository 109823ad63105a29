"""Data that does not grow forever: the retention policy (NEWSLETTER_RETENTION_DAYS, default 180; 0 keeps all).

Each edition adds a delivery row per subscriber and ten picks with their reasons to each: a year of a 10k list is
3.65M deliveries and 36.5M picks. `prune` removes the deliveries and picks of editions dated more than
`retention_days` before today, and keeps:

- every edition's figures: the removed deliveries are counted by status into `EditionTally`, and the papers their
  sent emails carried into `EditionPaperTally`, in the same transaction that removes them, so `newsletter stats`,
  `editions list/show` and the admin page show the same numbers before, during and after a prune;
- everything about people: subscribers and their status (suppressions), consent, feedback and the event log;
- "a paper is never sent twice to a subscriber": the ranker excludes the papers of their sent deliveries
  (`ranking.sent_papers_of`), and only papers ingested or published within an edition's candidate window
  (NEWSLETTER_CANDIDATE_DAYS) can be picked. A sent delivery is removed only when none of its papers was ingested
  or published since `protected_since`: the start of the candidate window of the oldest edition kept, a day
  earlier for margin. So the rule reads exactly what it read before for every edition date that is kept, today's
  and the next ones included. A retention shorter than the candidate window is refused (`check_retention`).

Safe while sending: only editions that are `done` or `cancelled` are touched (planned, sending and paused ones
older than the cutoff are listed and left alone), and in them only rows in a final status (sent, failed, skipped).
An edition is first marked `pruned_at` (compare-and-set on its status); from then on planning refuses it
(`editions.require_open`), so an old edition is never sent to everyone a second time. Each batch of IN_CLAUSE
deliveries is one short write transaction (SQLite: BEGIN IMMEDIATE), so senders wait milliseconds at most, and
an interrupted prune leaves whole figures behind and goes on where it stopped the next time. The newest delivery
row is never removed: SQLite gives a new row max(id) + 1, and an id handed out again would let an old bounce or
Message-ID name a new delivery.
"""

from __future__ import annotations

import logging
import time as timer
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import delete, func, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from newsletter.batching import IN_CLAUSE
from newsletter.clock import today as utc_today
from newsletter.clock import utcnow
from newsletter.config import Settings
from newsletter.db import session_scope
from newsletter.errors import InvalidInput
from newsletter.log import event
from newsletter.models import (
    Delivery,
    DeliveryStatus,
    Edition,
    EditionPaperTally,
    EditionStatus,
    EditionTally,
    Paper,
    Pick,
)

log = logging.getLogger("newsletter.retention")

FINAL = (DeliveryStatus.sent, DeliveryStatus.failed, DeliveryStatus.skipped)  # no sender will touch these again
PRUNABLE = (EditionStatus.done, EditionStatus.cancelled)  # planned, sending and paused editions are left alone
TABLES = ("delivery", "pick")  # the tables the prune removes rows from


@dataclass
class PruneReport:
    dry_run: bool
    retention_days: int
    cutoff: date | None = None  # editions dated before this are pruned
    protected_since: datetime | None = None  # sent deliveries with a paper ingested or published since are kept
    editions: list[str] = field(default_factory=list)  # dates of the editions rows were (would be) removed from
    removed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))  # rows per table
    kept_open: list[str] = field(default_factory=list)  # older editions still planned, sending or paused
    kept_deliveries: int = 0  # sent deliveries held back: a paper of theirs may still be a candidate
    seconds: float = 0.0

    def as_dict(self) -> dict:
        values = asdict(self)
        values["cutoff"] = self.cutoff.isoformat() if self.cutoff else None
        values["protected_since"] = self.protected_since.isoformat() if self.protected_since else None
        return values


def check_retention(settings: Settings) -> None:
    """Raise InvalidInput when the retention is shorter than the candidate window (0 = keep everything is fine)."""
    days, window = settings.retention_days, settings.candidate_days
    if 0 < days < window:
        raise InvalidInput(
            f"NEWSLETTER_RETENTION_DAYS={days} is shorter than the candidate window (NEWSLETTER_CANDIDATE_DAYS="
            f"{window}): the rule that nobody gets the same paper twice reads the deliveries of that window; set it "
            f"to {window} or more (0 keeps everything)")


def prune(settings: Settings, today: date | None = None, dry_run: bool = False,
          batch_size: int = IN_CLAUSE) -> PruneReport:
    """Remove the deliveries and picks of editions older than the retention (see the module). With `dry_run`,
    count what would go and change nothing. Raises InvalidInput for a retention shorter than the candidate window."""
    check_retention(settings)
    started = timer.perf_counter()
    report = PruneReport(dry_run=dry_run, retention_days=settings.retention_days)
    if settings.retention_days == 0:
        return report
    report.cutoff = (today or utc_today()) - timedelta(days=settings.retention_days)
    report.protected_since = datetime.combine(report.cutoff - timedelta(days=settings.candidate_days), time(),
                                              tzinfo=UTC)
    url = settings.sqlalchemy_url
    with session_scope(url) as session:
        old = session.exec(select(col(Edition.id), col(Edition.date), col(Edition.status), col(Edition.pruned_at))
                           .where(col(Edition.date) < report.cutoff).order_by(col(Edition.date))).all()
        newest = session.exec(select(func.max(Delivery.id))).one()
    for edition_id, day, status, pruned_at in old:
        if status not in PRUNABLE or (not dry_run and pruned_at is None and not _mark_pruned(url, edition_id)):
            report.kept_open.append(day.isoformat())
            continue
        if _prune_edition(url, edition_id, report, newest, batch_size):
            report.editions.append(day.isoformat())
    report.seconds = round(timer.perf_counter() - started, 3)
    event(log, "would prune" if dry_run else "pruned", cutoff=report.cutoff.isoformat(),
          editions=len(report.editions), deliveries=report.removed["delivery"], picks=report.removed["pick"],
          kept_open=len(report.kept_open), kept_deliveries=report.kept_deliveries, seconds=report.seconds)
    return report


def _mark_pruned(url: str, edition_id: int) -> bool:
    """Close the edition for good, if it is still done or cancelled (compare-and-set). False when it reopened."""
    with session_scope(url, write=True) as session:
        result = session.exec(update(Edition)
                              .where(col(Edition.id) == edition_id, col(Edition.status).in_(PRUNABLE),
                                     col(Edition.pruned_at).is_(None))
                              .values(pruned_at=utcnow()))
        return result.rowcount == 1


def _prune_edition(url: str, edition_id: int, report: PruneReport, newest: int | None, batch_size: int) -> bool:
    """One edition, batch by batch (each its own transaction). True when any row was (would be) removed."""
    assert report.protected_since is not None
    recent = or_(col(Paper.ingested_at) >= report.protected_since, col(Paper.published_at) >= report.protected_since)
    after, removed_any = 0, False
    while True:
        with session_scope(url, write=not report.dry_run) as session:
            connection = session.connection()  # Core rows: no ORM bookkeeping for thousands of tuples
            rows = connection.execute(select(Delivery.id, Delivery.status)
                                      .where(col(Delivery.edition_id) == edition_id, col(Delivery.status).in_(FINAL),
                                             col(Delivery.id) > after)
                                      .order_by(col(Delivery.id)).limit(batch_size)).all()
            if not rows:
                return removed_any
            after = rows[-1][0]
            status_of = {delivery_id: DeliveryStatus(status) for delivery_id, status in rows}
            picks = connection.execute(select(Pick.delivery_id, Pick.paper_id, recent)
                                       .join(Paper, col(Paper.id) == Pick.paper_id)
                                       .where(col(Pick.delivery_id).in_(list(status_of)))).all()
            held = {d for d, _, is_recent in picks if is_recent and status_of[d] == DeliveryStatus.sent}
            report.kept_deliveries += len(held)
            gone = [d for d in status_of if d not in held and d != newest]
            gone_set = set(gone)
            papers_sent = Counter(p for d, p, _ in picks if d in gone_set and status_of[d] == DeliveryStatus.sent)
            gone_picks = sum(1 for d, _, _ in picks if d in gone_set)
            if gone and not report.dry_run:
                _remove(session, edition_id, gone, Counter(status_of[d] for d in gone), papers_sent)
            report.removed["delivery"] += len(gone)
            report.removed["pick"] += gone_picks
            removed_any = removed_any or bool(gone)


def _remove(session: Session, edition_id: int, gone: list[int], statuses: Counter, papers_sent: Counter) -> None:
    """Delete these deliveries and their picks, and add them to the edition's tallies (one transaction)."""
    connection = session.connection()
    connection.execute(delete(Pick).where(col(Pick.delivery_id).in_(gone)))
    result = connection.execute(delete(Delivery).where(col(Delivery.id).in_(gone), col(Delivery.status).in_(FINAL)))
    if result.rowcount != len(gone):  # a row changed status meanwhile: undo this batch, the next run retries it
        raise RuntimeError(f"edition {edition_id}: {len(gone) - result.rowcount} deliveries changed while pruning")
    _add(session, EditionTally, ["edition_id", "status"], "deliveries",
         [{"edition_id": edition_id, "status": status.value, "deliveries": n} for status, n in statuses.items()])
    _add(session, EditionPaperTally, ["edition_id", "paper_id"], "sent",
         [{"edition_id": edition_id, "paper_id": paper_id, "sent": n} for paper_id, n in papers_sent.items()])


def _add(session: Session, table: type, key: list[str], counter: str, rows: list[dict]) -> None:
    """INSERT ... ON CONFLICT (key) DO UPDATE SET counter = counter + excluded.counter, for each row (SQLite and
    PostgreSQL); one statement, compiled once, executed for many rows."""
    if not rows:
        return
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=key, set_={counter: getattr(table, counter) + getattr(statement.excluded, counter)})
    session.connection().execute(statement, rows)
