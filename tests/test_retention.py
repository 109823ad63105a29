"""Retention (`newsletter db prune`, the beat entry, newsletter/retention.py), on SQLite and PostgreSQL.

A history is written straight into the database: editions from 300 days ago to yesterday, done, cancelled and
still open, with sent, failed, skipped and pending deliveries, feedback, events and suppressed subscribers. The
prune must remove the old details and nothing else, keep every figure, leave open editions alone, and keep
"a paper is never sent twice" exactly as it was for every edition date the retention keeps.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import func
from sqlmodel import Session, col, select

from newsletter import db, retention
from newsletter.clock import today
from newsletter.delivery.send import send_edition
from newsletter.edition_control import delivery_counts_of
from newsletter.editions import plan_edition
from newsletter.errors import EditionClosed, InvalidInput
from newsletter.models import (
    Delivery,
    DeliveryStatus,
    Edition,
    EditionPaperTally,
    EditionStatus,
    EditionTally,
    Event,
    Feedback,
    Paper,
    Pick,
    Subscriber,
    SubscriberStatus,
)
from newsletter.ranking import candidate_papers, sent_papers_of
from newsletter.stats import gather_stats
from tasks.celery_app import create_celery
from tasks.schedule import beat_schedule, cron
from tests.helpers import WorkerProcess, wait_until

T = today()
RETENTION = 180  # the default
CUTOFF = T - timedelta(days=RETENTION)


def ago(days: int) -> date:
    return T - timedelta(days=days)


def at(day: date) -> datetime:
    return datetime.combine(day, time(6), tzinfo=UTC)


class History:
    """Editions, deliveries and picks written directly (the ranker is not what is tested here)."""

    def __init__(self, session: Session):
        self.session = session
        self.papers: dict[str, Paper] = {}
        self.people: dict[str, Subscriber] = {}
        self.editions: dict[str, Edition] = {}

    def paper(self, key: str, ingested: date, title: str = "", published: date | None = None) -> Paper:
        paper = Paper(external_id=key, title_key=key, title=title or f"Paper {key} on language models",
                      abstract=f"We study language models ({key}).", ingested_at=at(ingested),
                      published_at=at(published) if published else None, upvotes=1)
        self.session.add(paper)
        self.papers[key] = paper
        return paper

    def person(self, name: str, status: SubscriberStatus = SubscriberStatus.active) -> Subscriber:
        subscriber = Subscriber(email=f"{name}@example.org", status=status, interests="language models",
                                keywords=["language models"], consent="double-opt-in")
        self.session.add(subscriber)
        self.session.flush()
        self.people[name] = subscriber
        return subscriber

    def edition(self, name: str, day: date, status: EditionStatus, rows: list[tuple[str, str, list[str]]]) -> Edition:
        edition = Edition(date=day, status=status)
        self.session.add(edition)
        self.session.flush()
        for person, delivery_status, papers in rows:
            delivery = Delivery(edition_id=edition.id, subscriber_id=self.people[person].id,
                                status=DeliveryStatus(delivery_status),
                                message_id=f"<{name}.{person}@example.org>",
                                error="550 5.1.1 no such user" if delivery_status == "failed" else None)
            self.session.add(delivery)
            self.session.flush()
            for position, key in enumerate(papers, start=1):
                self.session.add(Pick(delivery_id=delivery.id, paper_id=self.papers[key].id, position=position,
                                      score=1.0 / position, reasons=[f"Matches your keywords ({key})."]))
        self.editions[name] = edition
        return edition


def build_history(session: Session) -> History:
    h = History(session)
    for key, days in [("p1", 301), ("p2", 301), ("p3", 302), ("p4", 251), ("p5", 241), ("p6", 201), ("p8", 195),
                      ("p9", 11), ("p10", 2)]:
        h.paper(key, ago(days))
    h.paper("p7", ago(186))  # sent 184 days ago, ingested after protected_since (cutoff - 7 days): a candidate of
    #                           the oldest kept editions, so that delivery waits
    h.paper("hot", ago(300), title="Hot retention policies for language models", published=ago(1))  # published
    #   yesterday by its feed: a candidate today although stored (and sent to ada) long ago
    for name in ("ada", "grace"):
        h.person(name)
    h.person("bob", SubscriberStatus.bounced)
    h.person("carol", SubscriberStatus.unsubscribed)
    session.add(Feedback(subscriber_id=h.people["ada"].id, paper_id=h.papers["p1"].id, kind="more"))
    session.add(Feedback(subscriber_id=h.people["grace"].id, paper_id=h.papers["p3"].id, kind="less"))
    session.add(Event(subscriber_id=h.people["ada"].id, kind="confirm", created_at=at(ago(320))))
    session.add(Event(subscriber_id=h.people["carol"].id, kind="unsubscribe", created_at=at(ago(290))))
    session.add(Event(subscriber_id=h.people["bob"].id, kind="bounce", detail={"reason": "550"},
                      created_at=at(ago(300))))
    h.edition("e300", ago(300), EditionStatus.done, [("ada", "sent", ["p1", "p2", "hot"]),
                                                     ("grace", "sent", ["p1", "p3"]), ("bob", "failed", ["p2"]),
                                                     ("carol", "skipped", [])])
    h.edition("e250", ago(250), EditionStatus.cancelled, [("ada", "sent", ["p4"]), ("grace", "skipped", ["p4"])])
    h.edition("e240", ago(240), EditionStatus.sending, [("ada", "pending", ["p5"]), ("grace", "sent", ["p5"])])
    h.edition("e230", ago(230), EditionStatus.paused, [("grace", "pending", ["p5"])])
    h.edition("e200", ago(200), EditionStatus.done, [("ada", "sent", ["p6"]), ("grace", "sent", ["p6"])])
    h.edition("e184", ago(184), EditionStatus.done, [("ada", "sent", ["p7"]), ("grace", "sent", ["p8"])])
    h.edition("e10", ago(10), EditionStatus.done, [("ada", "sent", ["p9"]), ("grace", "sent", ["p9"])])
    h.edition("e1", ago(1), EditionStatus.sending, [("ada", "pending", ["p10"]), ("grace", "sent", ["p10"])])
    session.commit()
    return h


def rows(session: Session, model) -> int:
    session.expire_all()
    return session.exec(select(func.count()).select_from(model)).one()


def delivery_ids(session: Session, edition: Edition) -> list[int]:
    return sorted(session.exec(select(Delivery.id).where(col(Delivery.edition_id) == edition.id)).all())


def figures(session: Session, web=None) -> dict:
    """Everything an operator reads: stats all time and per day, editions with their counts, the admin page."""
    session.expire_all()
    editions = session.exec(select(Edition).order_by(col(Edition.date))).all()
    seen: dict = {"stats": gather_stats(session),
            "per_day": {e.date.isoformat(): gather_stats(session, e.date) for e in editions},
            "counts": delivery_counts_of(session, [e.id for e in editions if e.id is not None])}
    if web is not None:
        page = web.get("/admin", headers={"Authorization": "Bearer test-admin-token"})
        assert page.status_code == 200, page.text
        seen["admin"] = re.findall(r"<tr><td><a [^>]+>([\d-]+)</a></td><td>(\w+)</td>\s*(.*?)</tr>", page.text, re.S)
        assert len(seen["admin"]) == len(editions)
    return seen


def sent_within_windows(session: Session, settings, people: list[int]) -> dict:
    """What "never the same paper twice" reads for every edition date the retention keeps (cutoff to tomorrow):
    per date and subscriber, the sent papers that are candidates of that date."""
    session.expire_all()
    sent = sent_papers_of(session, people)
    found = {}
    for offset in range(RETENTION + 2):
        day = CUTOFF + timedelta(days=offset)
        candidates = {p.id for p in candidate_papers(session, day, settings.candidate_days)}
        found[day] = {person: sorted(sent[person] & candidates) for person in people}
    return found


def test_prune_removes_old_details_and_keeps_figures_people_and_the_sent_rule(session, settings, web, cli):
    h = build_history(session)
    people = [p.id for p in h.people.values()]
    before = figures(session, web)
    rule_before = sent_within_windows(session, settings, people)
    kept_editions = {name: delivery_ids(session, h.editions[name]) for name in ("e240", "e230", "e10", "e1")}
    feedback, events = rows(session, Feedback), rows(session, Event)
    picks_before = rows(session, Pick)

    result = cli("db", "prune", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)

    # What went: every row of e250 and e200, and of e300 and e184 all but ada's: "hot" (e300) and p7 (e184) are
    # still candidates of a kept edition date, so those two sent deliveries wait.
    assert report["cutoff"] == CUTOFF.isoformat() and report["dry_run"] is False
    assert report["removed"] == {"delivery": 8, "pick": 8}
    assert report["editions"] == [ago(300).isoformat(), ago(250).isoformat(), ago(200).isoformat(),
                                  ago(184).isoformat()]
    assert report["kept_open"] == [ago(240).isoformat(), ago(230).isoformat()]
    assert report["kept_deliveries"] == 2
    assert delivery_ids(session, h.editions["e250"]) == delivery_ids(session, h.editions["e200"]) == []
    session.expire_all()
    left = session.exec(select(Delivery.subscriber_id).where(col(Delivery.edition_id).in_(
        [h.editions["e300"].id, h.editions["e184"].id]))).all()
    assert left == [h.people["ada"].id, h.people["ada"].id]
    assert rows(session, Pick) == picks_before - 8
    # Open editions and editions inside the window are untouched, to the row.
    assert {name: delivery_ids(session, h.editions[name]) for name in kept_editions} == kept_editions
    assert session.get(Edition, h.editions["e240"].id).pruned_at is None
    assert session.get(Edition, h.editions["e240"].id).status == EditionStatus.sending
    assert session.get(Edition, h.editions["e300"].id).pruned_at is not None

    # Every figure is the same: stats (all time, each day), edition counts, the admin page.
    assert figures(session, web) == before
    assert before["per_day"][ago(300).isoformat()]["deliveries"] == {"pending": 0, "sending": 0, "sent": 2,
                                                                     "failed": 1, "skipped": 1}
    assert {p["external_id"]: p["sent"] for p in before["per_day"][ago(300).isoformat()]["most_sent_papers"]} == {
        "p1": 2, "p2": 1, "p3": 1, "hot": 1}
    for command in (("editions", "show", ago(300).isoformat(), "--json"), ("stats", "--json")):
        assert cli(*command).exit_code == 0
    shown = json.loads(cli("editions", "show", ago(300).isoformat(), "--json").stdout)
    assert shown["deliveries"]["sent"] == 2 and shown["pruned_at"] and shown["failures"] == []
    text = cli("editions", "show", ago(300).isoformat()).stdout
    assert "deliveries were pruned on" in text and re.search(r"sent\s*│\s*2", text)

    # People: suppressions, consent, feedback and events are all still there.
    session.expire_all()
    assert {s.email: s.status for s in session.exec(select(Subscriber))} == {
        "ada@example.org": "active", "grace@example.org": "active", "bob@example.org": "bounced",
        "carol@example.org": "unsubscribed"}
    assert {s.consent for s in session.exec(select(Subscriber))} == {"double-opt-in"}
    assert rows(session, Feedback) == feedback and rows(session, Event) == events

    # "Never the same paper twice" reads the same for every kept edition date.
    assert sent_within_windows(session, settings, people) == rule_before
    assert any(rule_before[day][h.people["ada"].id] for day in rule_before)  # the check compares something

    # A pruned edition takes no new deliveries: planning it again would send everyone that old edition again.
    with pytest.raises(EditionClosed, match="pruned"):
        plan_edition(session, ago(300), settings)
    session.rollback()

    # Running it again removes nothing more and counts nothing twice.
    again = retention.prune(settings)
    assert again.removed == {"delivery": 0, "pick": 0} and again.kept_deliveries == 2
    assert figures(session, web) == before


def test_todays_edition_never_repeats_a_paper_sent_before_the_cutoff(session, lexical_settings):
    """End to end: ada was sent "hot" 300 days ago and its feed says it was published yesterday, so it is a
    candidate today. After the prune the ranker must still know she had it; grace, who never got it, gets it."""
    h = build_history(session)
    retention.prune(lexical_settings)
    plan_edition(session, T, lexical_settings)
    session.commit()
    picked = {email: set(session.exec(
        select(Paper.external_id).join(Pick, col(Pick.paper_id) == Paper.id)
        .join(Delivery, col(Delivery.id) == Pick.delivery_id).join(Edition, col(Edition.id) == Delivery.edition_id)
        .join(Subscriber, col(Subscriber.id) == Delivery.subscriber_id)
        .where(col(Edition.date) == T, col(Subscriber.email) == email))) for email in ("ada@example.org",
                                                                                       "grace@example.org")}
    assert "hot" in picked["grace@example.org"]
    assert "hot" not in picked["ada@example.org"] and picked["ada@example.org"]
    assert h.papers["hot"].id in sent_papers_of(session, [h.people["ada"].id])[h.people["ada"].id]


def test_dry_run_reports_what_would_go_and_changes_nothing(session, settings, cli):
    build_history(session)
    tables = (Delivery, Pick, Edition, EditionTally, EditionPaperTally, Feedback, Event, Subscriber, Paper)
    counts = {model.__name__: rows(session, model) for model in tables}

    result = cli("db", "prune", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    dry = json.loads(result.stdout)
    assert dry["dry_run"] is True and dry["removed"] == {"delivery": 8, "pick": 8}
    assert {model.__name__: rows(session, model) for model in tables} == counts
    assert session.exec(select(Edition).where(col(Edition.pruned_at).is_not(None))).all() == []

    text = cli("db", "prune", "--dry-run")
    assert text.exit_code == 0, text.output
    assert "would remove" in text.stdout and "delivery" in text.stdout and "kept 2 sent deliveries" in text.stdout
    real = retention.prune(settings)
    assert real.removed == dry["removed"] and real.editions == dry["editions"]


def test_an_interrupted_prune_leaves_whole_figures_and_finishes_next_time(session, settings, monkeypatch):
    h = build_history(session)
    before = figures(session)
    calls = {"n": 0}
    remove = retention._remove

    def fails_on_the_third_batch(*args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise ConnectionError("the database went away")
        remove(*args)

    monkeypatch.setattr(retention, "_remove", fails_on_the_third_batch)
    with pytest.raises(ConnectionError):
        retention.prune(settings, batch_size=1)  # one delivery per transaction
    assert 0 < rows(session, EditionTally) and len(delivery_ids(session, h.editions["e250"])) == 2  # half done
    assert figures(session) == before
    monkeypatch.setattr(retention, "_remove", remove)
    finished = retention.prune(settings, batch_size=1)
    assert delivery_ids(session, h.editions["e250"]) == delivery_ids(session, h.editions["e200"]) == []
    assert finished.removed["delivery"] == 8 - 2  # two went before the failure
    assert figures(session) == before


def test_a_retention_shorter_than_the_candidate_window_is_refused_and_zero_keeps_everything(session, settings, cli):
    build_history(session)
    deliveries = rows(session, Delivery)
    short = settings.model_copy(update={"retention_days": 3})
    refused = cli("db", "prune", settings_override=short)
    assert refused.exit_code == 1
    assert "NEWSLETTER_RETENTION_DAYS=3 is shorter than the candidate window (NEWSLETTER_CANDIDATE_DAYS=7)" in \
        " ".join(refused.stderr.split())
    with pytest.raises(InvalidInput):
        retention.prune(short)
    off = cli("db", "prune", settings_override=settings.model_copy(update={"retention_days": 0}))
    assert off.exit_code == 0 and "retention is off" in off.stdout
    assert rows(session, Delivery) == deliveries
    assert "prune" not in beat_schedule(settings.model_copy(update={"retention_days": 0}))
    exact = retention.prune(settings.model_copy(update={"retention_days": 7}))  # as long as the window: allowed
    assert exact.removed["delivery"] > 8


def test_the_newest_delivery_row_is_never_removed(session, settings):
    """SQLite gives a new row max(id) + 1: removing the newest would hand its id (named by old bounces) out again."""
    h = History(session)
    h.paper("p1", ago(400))
    h.person("ada")
    h.edition("old", ago(300), EditionStatus.done, [("ada", "sent", ["p1"])])
    session.commit()
    newest = delivery_ids(session, h.editions["old"])
    assert retention.prune(settings).removed == {"delivery": 0, "pick": 0}
    assert delivery_ids(session, h.editions["old"]) == newest


def test_beat_runs_the_prune_on_its_schedule(settings):
    schedule = beat_schedule(settings)
    assert schedule["prune"] == {"task": "tasks.tasks.prune", "schedule": cron("45 3 * * *")}
    custom = settings.model_copy(update={"prune_schedule": "0 2 * * 0"})
    assert create_celery(custom).conf.beat_schedule["prune"]["schedule"] == cron("0 2 * * 0")
    with pytest.raises(InvalidInput, match="NEWSLETTER_PRUNE_SCHEDULE"):
        beat_schedule(settings.model_copy(update={"prune_schedule": "3 * *"}))


@pytest.mark.redis
def test_the_prune_task_runs_on_a_real_worker(session, settings, redis_url, tmp_path):
    h = build_history(session)
    client = create_celery(settings)
    try:
        with WorkerProcess("prune", tmp_path, settings) as worker:
            result = client.send_task("tasks.tasks.prune", kwargs={"day": T.isoformat()})
            wait_until(result.ready, 60, "the prune task", [worker])
            report = result.get()
    finally:
        client.close()
    assert report["removed"] == {"delivery": 8, "pick": 8} and report["cutoff"] == CUTOFF.isoformat()
    assert delivery_ids(session, h.editions["e250"]) == []


@pytest.mark.slow
def test_pruning_while_an_edition_is_being_sent(session, smtp_settings, sink):
    """A sender works through today's edition while the prune removes an old one in small batches: both finish,
    every reader gets exactly one email, and nothing of today's edition is touched."""
    h = History(session)
    for n in range(12):
        h.paper(f"old{n}", ago(300))
    h.paper("new", T, title="Fresh results on language models")
    readers = [h.person(f"r{n}").email.split("@")[0] for n in range(60)]
    h.edition("old", ago(300), EditionStatus.done, [(r, "sent", [f"old{n}" for n in range(10)]) for r in readers])
    h.edition("today", T, EditionStatus.sending, [(r, "pending", ["new"]) for r in readers])
    session.commit()
    url = smtp_settings.sqlalchemy_url
    outcome: dict = {}

    def send() -> None:
        with Session(db.get_engine(url), expire_on_commit=False) as own:
            outcome["send"] = send_edition(own, h.editions["today"].id, smtp_settings)

    sender = threading.Thread(target=send)
    sender.start()
    pruned = retention.prune(smtp_settings, batch_size=3)
    sender.join(120)
    assert not sender.is_alive()
    assert pruned.removed == {"delivery": 60, "pick": 600}
    assert outcome["send"].sent == 60 and len(sink.handler.envelopes) == 60
    assert sorted(e.rcpt_tos[0] for e in sink.handler.envelopes) == sorted(f"{r}@example.org" for r in readers)
    session.expire_all()
    assert {d.status for d in session.exec(select(Delivery).where(
        col(Delivery.edition_id) == h.editions["today"].id))} == {DeliveryStatus.sent}


def test_a_view_link_to_a_pruned_edition_says_it_is_no_longer_kept(session, settings):
    """A "view in browser" link works 90 days; under a shorter retention its edition can be gone first."""
    from fastapi.testclient import TestClient

    from newsletter.links import view_path
    from newsletter.web.app import create_app

    h = build_history(session)
    short = settings.model_copy(update={"retention_days": 30})
    retention.prune(short)
    grace = h.people["grace"]
    with TestClient(create_app(short)) as web:
        gone = web.get(view_path(grace, ago(200), short))
        kept = web.get(view_path(grace, ago(10), short))
        never = web.get(view_path(h.people["bob"], ago(10), short))
    assert gone.status_code == 404 and "older than this newsletter keeps editions" in gone.text
    assert kept.status_code == 200
    assert never.status_code == 404 and "no edition of" in never.text
