"""The distributed pipeline with real Celery worker processes, a real Redis and a real SMTP server on loopback."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from time import monotonic
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, func, select

from newsletter.clock import today
from newsletter.editions import plan_edition
from newsletter.models import Delivery, DeliveryStatus, Subscriber, SubscriberStatus
from tasks.celery_app import create_celery
from tests.helpers import WorkerProcess, ingest_sample, wait_until

pytestmark = pytest.mark.redis

ZONES = ["America/Anchorage", "America/New_York", "UTC", "Europe/Berlin", "Asia/Kolkata", "Asia/Tokyo",
         "Pacific/Kiritimati"]
PER_ZONE = 40


@pytest.fixture
def client(redis_url, smtp_settings):
    """A Celery app in the test process that enqueues to, and reads results from, this test's Redis keys."""
    app = create_celery(smtp_settings)
    yield app
    app.close()


def run(client, name: str, workers, timeout: float = 60, **kwargs):
    result = client.send_task(name, kwargs=kwargs)
    wait_until(result.ready, timeout, f"{name}{kwargs}", workers)
    return result.get()


def wait_all(client, task_ids: list[str], workers, timeout: float = 90) -> list[dict]:
    results = [client.AsyncResult(task_id) for task_id in task_ids]
    wait_until(lambda: all(r.ready() for r in results), timeout, f"{len(results)} tasks", workers)
    return [r.get() for r in results]


def recipients(sink) -> list[str]:
    return [envelope.rcpt_tos[0] for envelope in sink.handler.envelopes]


def message_ids(sink) -> Counter:
    return Counter(m["Message-ID"] for m in sink.messages())


def test_daily_flow_each_subscriber_gets_one_email_at_their_local_hour(session, settings, sink, client, tmp_path):
    """A frozen day of hourly ticks (some enqueued twice) over seven time zones, with a real worker and sink."""
    start = datetime.combine(today() + timedelta(days=2), time(), tzinfo=UTC)  # papers are still candidates
    settings.weekly_weekday = start.weekday()  # some zones are still on the day before
    ingest_sample(session)
    rng = random.Random(6)
    subscribers = []
    for zone in ZONES:
        first_hour = start.astimezone(ZoneInfo(zone)).hour  # no one is already late at the first tick
        for n in range(PER_ZONE):
            subscribers.append(Subscriber(
                email=f"{zone.replace('/', '.').lower()}.{n}@example.org", status=SubscriberStatus.active,
                timezone=zone, send_hour=rng.randrange(first_hour, 24), frequency="weekly" if n % 5 == 0 else "daily",
                paused=n % 13 == 0, interests=rng.choice(["language models", "3D vision", "robot learning"])))
    subscribers[1].status = SubscriberStatus.unsubscribed
    session.add_all(subscribers)
    session.commit()

    ticks = [start + timedelta(hours=h) for h in range(24)]
    sent_at_tick: dict[str, list[int]] = {}
    with WorkerProcess("daily", tmp_path, settings) as worker:
        for index, now in enumerate(ticks):
            before = len(sink.handler.envelopes)
            copies = 2 if index % 4 == 0 else 1  # as a redelivered or doubled tick would be
            ticks_sent = [client.send_task("tasks.tasks.send_tick", kwargs={"now": now.isoformat()}).id
                          for _ in range(copies)]
            reports = wait_all(client, ticks_sent, [worker])
            plans = wait_all(client, [p for r in reports for p in r["plan_batches"]], [worker])
            wait_all(client, [s for r in reports + plans for s in r["send_batches"]], [worker])
            for address in recipients(sink)[before:]:
                sent_at_tick.setdefault(address, []).append(index)

    expected = {}
    for subscriber in subscribers:
        if subscriber.status != "active" or subscriber.paused:
            continue
        for index, now in enumerate(ticks):
            local = now.astimezone(ZoneInfo(subscriber.timezone))
            weekday_ok = subscriber.frequency == "daily" or local.weekday() == start.weekday()
            if local.hour == subscriber.send_hour and weekday_ok:
                expected[subscriber.email] = [index]
    assert sent_at_tick == expected
    assert len(expected) > 200 and {s.frequency for s in subscribers if s.email in expected} == {"daily", "weekly"}
    assert any(s.frequency == "weekly" and s.email not in expected and not s.paused for s in subscribers)
    assert max(message_ids(sink).values()) == 1


def test_a_send_task_run_twice_sends_nothing_twice(session, settings, sink, client, tmp_path):
    ingest_sample(session)
    session.add_all([Subscriber(email=f"reader{n}@example.org", status=SubscriberStatus.active,
                                interests="language models") for n in range(30)])
    session.commit()
    planned = plan_edition(session, today(), settings)
    session.commit()
    ids = list(session.exec(select(Delivery.id).order_by(col(Delivery.id))))
    with WorkerProcess("twice", tmp_path, settings) as worker:
        first, second = (client.send_task("tasks.tasks.send_batch", args=[planned.edition_id, ids]) for _ in "12")
        reports = wait_all(client, [first.id, second.id], [worker])
    assert [(r["sent"], r["skipped"]) for r in reports] == [(30, 0), (0, 30)]
    assert sorted(recipients(sink)) == sorted(f"reader{n}@example.org" for n in range(30))


CRASH_SUBSCRIBERS = 2000
LEASE_SECONDS = 4
CRASH_BUDGET = 420  # seconds from the first tick to the last delivery: the test fails rather than hang


def test_a_worker_killed_mid_send_loses_nothing_and_duplicates_at_most_its_message_in_flight(
        session, settings, sink, client, tmp_path):
    """Two workers send an edition; one is SIGKILLed mid-send; a fresh worker and the tick finish the edition."""
    settings.delivery_lease_seconds, settings.send_batch_size = LEASE_SECONDS, 100
    ingest_sample(session)
    topics = ["language models", "3D vision", "robot learning", "diffusion", "reinforcement learning"]
    session.add_all([Subscriber(email=f"reader{n}@example.org", status=SubscriberStatus.active, send_hour=0,
                                interests=topics[n % len(topics)]) for n in range(CRASH_SUBSCRIBERS)])
    session.add(Subscriber(email="gone@example.org", status=SubscriberStatus.unsubscribed, send_hour=0))
    session.commit()

    started = monotonic()
    with WorkerProcess("a", tmp_path, settings) as doomed, WorkerProcess("b", tmp_path, settings) as survivor:
        tick = client.send_task("tasks.tasks.send_tick")
        wait_until(lambda: len(sink.handler.envelopes) >= CRASH_SUBSCRIBERS // 4, CRASH_BUDGET / 2,
                   "a quarter of the edition", [doomed, survivor])
        doomed.kill()
        killed_at, kill_time = len(sink.handler.envelopes), monotonic() - started
        assert tick.ready() and tick.get()["due"] == CRASH_SUBSCRIBERS
        with WorkerProcess("c", tmp_path, settings) as fresh:
            def finished() -> bool:  # what beat does: a tick now and then re-queues what the dead worker held
                client.send_task("tasks.tasks.send_tick")
                return unfinished(session) == 0
            wait_until(finished, CRASH_BUDGET - (monotonic() - started), "every delivery to be sent",
                       [survivor, fresh], interval=LEASE_SECONDS)

    counts = Counter(recipients(sink))
    duplicates = {mid: n for mid, n in message_ids(sink).items() if n > 1}
    print(f"\ncrash test: worker a killed after {kill_time:.1f} s with {killed_at} delivered; all "
          f"{len(sink.handler.envelopes)} delivered after {monotonic() - started:.1f} s; "
          f"duplicate Message-IDs: {duplicates or 'none'}")
    assert killed_at < CRASH_SUBSCRIBERS, "the kill came after the edition was already sent"
    assert set(counts) == {f"reader{n}@example.org" for n in range(CRASH_SUBSCRIBERS)}
    assert len(duplicates) <= 1, "only the message in flight in the killed worker may be sent twice"
    assert sum(counts.values()) == CRASH_SUBSCRIBERS + len(duplicates)


def unfinished(session) -> int:
    session.expire_all()
    return session.exec(select(func.count()).select_from(Delivery)
                        .where(col(Delivery.status).in_([DeliveryStatus.pending, DeliveryStatus.sending]))).one()
