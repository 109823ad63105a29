"""The send tick's rules (who is due, what is lost) and the ledger's claims, without Celery."""

from __future__ import annotations

import threading
import time as clock
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text, update
from sqlmodel import Session, col, select

from newsletter import db, dispatch
from newsletter.clock import today, utc
from newsletter.delivery import ledger
from newsletter.editions import get_or_create_edition, plan_edition
from newsletter.errors import InvalidInput
from newsletter.models import Delivery, Edition, Subscriber, SubscriberStatus
from tasks.schedule import beat_schedule, cron
from tests.helpers import ingest_sample

MONDAY_NOON_UTC = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def add(session, email: str, **profile) -> Subscriber:
    subscriber = Subscriber(email=email, status=profile.pop("status", "active"), **profile)
    session.add(subscriber)
    session.commit()
    return subscriber


def due_emails(session, now, settings) -> dict[str, list[str]]:
    due = dispatch.due_subscribers(session, now, settings)
    return {day.isoformat(): sorted(session.get(Subscriber, i).email for i in ids) for day, ids in due.items()}


def test_due_means_local_send_hour_has_come_on_the_local_date(session, settings):
    add(session, "london-noon@x.org", timezone="Europe/London", send_hour=12)  # 12:00 local: due
    add(session, "berlin-14@x.org", timezone="Europe/Berlin", send_hour=14)  # 13:00 local: not yet
    add(session, "berlin-9@x.org", timezone="Europe/Berlin", send_hour=9)  # missed tick: caught up the same day
    add(session, "tokyo-21@x.org", timezone="Asia/Tokyo", send_hour=21)  # 21:00 local
    add(session, "apia-7@x.org", timezone="Pacific/Apia", send_hour=7)  # UTC+13: already Tuesday 01:00
    add(session, "honolulu-2@x.org", timezone="Pacific/Honolulu", send_hour=2)  # 02:00 local
    add(session, "paused@x.org", send_hour=0, paused=True)
    add(session, "pending@x.org", send_hour=0, status="pending")
    assert due_emails(session, MONDAY_NOON_UTC, settings) == {
        "2026-11-30": ["berlin-9@x.org", "honolulu-2@x.org", "london-noon@x.org", "tokyo-21@x.org"]}
    assert due_emails(session, MONDAY_NOON_UTC + timedelta(hours=6), settings)["2026-12-01"] == ["apia-7@x.org"]


def test_weekly_subscribers_are_due_on_the_configured_local_weekday(session, settings):
    add(session, "weekly-utc@x.org", send_hour=7, frequency="weekly")  # Monday in UTC
    add(session, "weekly-la@x.org", timezone="America/Los_Angeles", send_hour=0, frequency="weekly")  # Monday 04:00
    add(session, "weekly-apia@x.org", timezone="Pacific/Apia", send_hour=0, frequency="weekly")  # already Tuesday
    assert due_emails(session, MONDAY_NOON_UTC, settings) == {"2026-11-30": ["weekly-la@x.org", "weekly-utc@x.org"]}
    tuesday = settings.model_copy(update={"weekly_weekday": 1})
    assert due_emails(session, MONDAY_NOON_UTC, tuesday) == {"2026-12-01": ["weekly-apia@x.org"]}


def test_a_planned_subscriber_is_not_due_again_that_local_day(session, settings):
    ingest_sample(session)
    subscriber = add(session, "ada@x.org", send_hour=6, interests="language models")
    day = MONDAY_NOON_UTC.date()
    plan_edition(session, day, settings, only=[subscriber.id])
    session.commit()
    assert dispatch.due_subscribers(session, MONDAY_NOON_UTC, settings) == {}
    assert list(dispatch.due_subscribers(session, MONDAY_NOON_UTC + timedelta(hours=18), settings)) == \
        [day + timedelta(days=1)]


def test_an_unknown_time_zone_is_reported_and_the_others_are_still_scheduled(session, settings, caplog):
    add(session, "ok@x.org", send_hour=0)
    add(session, "bad@x.org", timezone="Mars/Olympus_Mons", send_hour=0)
    assert due_emails(session, MONDAY_NOON_UTC, settings) == {"2026-11-30": ["ok@x.org"]}
    record = next(r for r in caplog.records if "unknown time zone" in r.getMessage())
    assert record.fields == {"timezone": "Mars/Olympus_Mons"}


def planned_edition(session, settings, count: int) -> int:
    ingest_sample(session)
    session.add_all([Subscriber(email=f"r{n}@x.org", status=SubscriberStatus.active, interests="language models")
                     for n in range(count)])
    session.commit()
    edition_id = plan_edition(session, today(), settings).edition_id
    session.commit()
    return edition_id


def test_lost_rows_are_handed_out_again_after_a_lease_and_retry_times_are_respected(session, settings):
    edition_id = planned_edition(session, settings, 4)
    now = datetime.now(UTC)
    first = dispatch.take_lost(session, now, settings)
    session.commit()
    assert list(first) == [edition_id] and len(first[edition_id]) == 4
    assert dispatch.take_lost(session, now + timedelta(seconds=5), settings) == {}  # its task still holds them
    waiting = first[edition_id][0]
    session.exec(update(Delivery).where(col(Delivery.id) == waiting).values(next_attempt_at=now + timedelta(hours=1)))
    session.commit()
    later = now + settings.delivery_lease + timedelta(seconds=1)
    assert dispatch.take_lost(session, later, settings) == {edition_id: first[edition_id][1:]}
    edition = session.get(Edition, edition_id)
    edition.status = "paused"
    session.commit()
    assert dispatch.take_lost(session, later + settings.delivery_lease * 2, settings) == {}


def test_stale_sending_rows_go_back_to_pending_after_the_configured_lease(session, settings):
    edition_id = planned_edition(session, settings, 3)
    ids = ledger.pending_ids(session, edition_id)
    assert all(ledger.claim(session, i) for i in ids)
    assert not any(ledger.claim(session, i) for i in ids)  # nobody claims a claimed row
    assert ledger.release_stale(session, None, timedelta(minutes=5)) == 0
    clock.sleep(0.05)
    assert ledger.release_stale(session, None, timedelta(seconds=0.01)) == 3
    assert ledger.pending_ids(session, edition_id) == ids


@pytest.mark.postgres
def test_postgres_claims_skip_rows_locked_by_another_sender_instead_of_waiting(postgres_url, tmp_path):
    engine = db.get_engine(postgres_url)
    with Session(engine) as session:
        session.connection().execute(text("TRUNCATE delivery, pick, edition, subscriber RESTART IDENTITY CASCADE"))
        edition = get_or_create_edition(session, today())
        session.add_all([Subscriber(email=f"r{n}@x.org", status=SubscriberStatus.active) for n in range(20)])
        session.flush()
        session.add_all([Delivery(edition_id=edition.id, subscriber_id=n + 1) for n in range(20)])
        session.commit()
        ids = ledger.pending_ids(session, edition.id)
    holding, taken = threading.Event(), threading.Event()

    def slow_sender():  # holds row locks on the first five rows in an open transaction
        with Session(engine) as other:
            other.connection().execute(text("SELECT id FROM delivery WHERE id <= 5 FOR UPDATE"))
            holding.set()
            taken.wait(10)
            other.rollback()

    thread = threading.Thread(target=slow_sender)
    thread.start()
    try:
        holding.wait(10)
        with Session(engine) as session:
            session.connection().execute(text("SET lock_timeout = '2s'"))
            started = clock.monotonic()
            claimed = [i for i in ids if ledger.claim(session, i)]
            elapsed = clock.monotonic() - started
    finally:
        taken.set()
        thread.join()
    assert claimed == ids[5:] and elapsed < 1.5


def test_beat_schedule_comes_from_settings(settings):
    custom = settings.model_copy(update={"ingest_schedule": "15 4 * * 1-5", "send_tick_seconds": 60})
    schedule = beat_schedule(custom)
    assert schedule["send-tick"]["schedule"] == 60 and schedule["send-tick"]["task"] == "tasks.tasks.send_tick"
    assert schedule["ingest"]["schedule"] == cron("15 4 * * 1-5")
    assert "process-bounces" not in schedule
    with_mailbox = beat_schedule(custom.model_copy(update={"bounce_mailbox": "/var/mail/bounces",
                                                           "bounce_check_seconds": 120}))
    assert with_mailbox["process-bounces"]["task"] == "tasks.tasks.process_bounces"
    assert with_mailbox["process-bounces"]["schedule"] == 120
    for bad in ("15 4 * *", "75 4 * * *"):
        with pytest.raises(InvalidInput, match="NEWSLETTER_INGEST_SCHEDULE"):
            cron(bad)


def test_the_tick_parses_its_frozen_clock():
    assert utc("2026-11-30T07:00:00") == datetime(2026, 11, 30, 7, tzinfo=UTC)
    assert utc("2026-11-30T08:00:00+01:00") == datetime(2026, 11, 30, 7, tzinfo=UTC)
    assert utc(None).tzinfo is not None


def test_the_bounce_task_reads_the_configured_mailbox(settings, tmp_path, monkeypatch):
    from tasks import tasks

    mailbox = tmp_path / "Maildir"
    for folder in ("cur", "new", "tmp"):
        (mailbox / folder).mkdir(parents=True)
    settings.bounce_mailbox = str(mailbox)
    monkeypatch.setattr(tasks, "_settings", lambda: settings)  # what a worker reads from its environment
    report = tasks.process_bounces.apply().get()
    assert report["messages"] == 0 and report["hard_bounces"] == 0


@pytest.mark.parametrize("day, zone", [("2026-03-29", "Europe/Berlin"),  # spring forward: 02:00 -> 03:00
                                        ("2026-10-25", "Europe/Berlin"),  # fall back: 02:00-03:00 twice
                                        ("2026-03-08", "America/New_York")])  # US spring forward: no 02:00
def test_a_daylight_saving_changeover_day_sends_each_reader_once_at_the_first_tick_at_or_after_their_hour(
        session, settings, day, zone):
    from zoneinfo import ZoneInfo

    hours = {send_hour: add(session, f"h{send_hour}@x.org", timezone=zone, send_hour=send_hour)
             for send_hour in (0, 1, 2, 3, 7, 23)}
    local_midnight = datetime.fromisoformat(day).replace(tzinfo=ZoneInfo(zone))
    first_due: dict[int, datetime] = {}
    tick = local_midnight.astimezone(UTC)
    while tick < (local_midnight + timedelta(days=1, hours=2)).astimezone(UTC):  # hourly ticks over the local day
        for edition_day, ids in dispatch.due_subscribers(session, tick, settings).items():
            if edition_day.isoformat() == day:
                plan_edition(session, edition_day, settings, only=ids)  # what the plan batch does
                session.commit()
                for subscriber_id in ids:
                    assert subscriber_id not in first_due, "a reader was due twice on one local day"
                    first_due[subscriber_id] = tick.astimezone(ZoneInfo(zone))
        tick += timedelta(hours=1)
    assert set(first_due) == {s.id for s in hours.values()}  # everyone once, the hour that does not exist included
    ticks = [(local_midnight.astimezone(UTC) + timedelta(hours=h)).astimezone(ZoneInfo(zone)) for h in range(26)]
    for send_hour, subscriber in hours.items():  # the first hourly tick of that local date at or after the hour
        expected = next(t for t in ticks if t.date().isoformat() == day and t.hour >= send_hour)
        assert first_due[subscriber.id] == expected, send_hour


def test_a_send_tick_after_cancel_plans_nothing_into_the_edition(session, settings, monkeypatch):
    """An operator cancels the day's edition; a reader who becomes due afterwards is found by the tick, but the
    plan task refuses the cancelled edition: no row is planned that nothing would ever send."""
    from newsletter.edition_control import cancel_edition
    from tasks import tasks

    ingest_sample(session)
    early = add(session, "early@x.org", send_hour=6, interests="language models")
    day = MONDAY_NOON_UTC.date()
    plan_edition(session, day, settings, only=[early.id])
    session.commit()
    edition = get_or_create_edition(session, day)
    cancel_edition(session, edition)
    session.commit()
    late = add(session, "late@x.org", send_hour=11, interests="language models")

    monkeypatch.setattr(tasks, "_settings", lambda: settings)  # what a worker reads from its environment
    monkeypatch.setattr(tasks.plan_batch, "delay", lambda *args: tasks.plan_batch.apply(args))  # run it here
    tick = tasks.send_tick.apply(kwargs={"now": MONDAY_NOON_UTC.isoformat()}).get()
    assert tick["due"] == 1 and tick["send_batches"] == []  # the late reader is due; nothing to send
    planned = tasks.plan_batch.apply((day.isoformat(), [late.id])).get()
    assert planned["closed"] and planned["send_batches"] == []
    session.expire_all()
    rows = session.exec(select(Delivery).where(col(Delivery.edition_id) == edition.id)).all()
    assert [(row.subscriber_id, row.status) for row in rows] == [(early.id, "skipped")]
