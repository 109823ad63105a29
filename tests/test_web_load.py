"""Issue 14 item 19: under concurrent load (a real uvicorn on loopback, httpx clients in threads, keep-alive
connections) every sign-up, one-click unsubscribe and preference save is answered 2xx and recorded exactly once,
on SQLite (writes take the write lock up front) as on PostgreSQL."""

from __future__ import annotations

import random
import re
import threading
import time
from collections import Counter

import httpx
import pytest
from sqlmodel import col, func, select

from newsletter.models import Event, Subscriber, SubscriberStatus
from subscribers.tokens import make_token

pytestmark = pytest.mark.slow
EACH = 200  # sign-ups, unsubscribes and preference saves
CONCURRENCY = 20


def test_concurrent_sign_ups_unsubscribes_and_preference_saves_all_succeed(settings, session, sink, live_server):
    settings.subscribe_limit_per_ip = settings.subscribe_limit_per_address = 10**6  # measure the database, not
    readers = [Subscriber(email=f"reader{n:03d}@example.org", status=SubscriberStatus.active)  # the limits
               for n in range(2 * EACH)]
    session.add_all(readers)
    session.commit()
    work = ([("subscribe", f"new{n:03d}@example.org") for n in range(EACH)]
            + [("unsubscribe", make_token("unsubscribe", r.id, r.email, settings)) for r in readers[:EACH]]
            + [("preferences", make_token("preferences", r.id, r.email, settings)) for r in readers[EACH:]])
    random.Random(14).shuffle(work)
    queue = list(reversed(work))
    lock = threading.Lock()
    outcomes: list[tuple[str, int | str]] = []

    def client_thread() -> None:
        with httpx.Client(base_url=live_server.url, timeout=60) as client:
            found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").text)
            assert found is not None
            csrf = found.group(1)  # bound to this client's cookie; every form of the site accepts it
            while True:
                with lock:
                    if not queue:
                        return
                    kind, value = queue.pop()
                try:
                    if kind == "subscribe":
                        response = client.post("/subscribe", data={"csrf_token": csrf, "email": value,
                                                                    "interests": "load", "timezone": "UTC"})
                    elif kind == "unsubscribe":  # RFC 8058, as a mail provider posts it
                        response = client.post(f"/unsubscribe/{value}", data={"List-Unsubscribe": "One-Click"})
                    else:
                        response = client.post(f"/preferences/{value}", data={
                            "csrf_token": csrf, "interests": "saved under load", "keywords": "load, test",
                            "frequency": "weekly", "send_hour": "9", "timezone": "Europe/Paris"})
                    result: int | str = response.status_code
                except httpx.HTTPError as error:  # never answered
                    result = f"{error.__class__.__name__}: {error}"
                with lock:
                    outcomes.append((kind, result))

    started = time.monotonic()
    threads = [threading.Thread(target=client_thread) for _ in range(CONCURRENCY)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    elapsed = time.monotonic() - started
    assert not any(thread.is_alive() for thread in threads), "clients still waiting after 120 s"

    by_kind = Counter((kind, result) for kind, result in outcomes)
    assert by_kind == {("subscribe", 200): EACH, ("unsubscribe", 200): EACH, ("preferences", 200): EACH}, (
        by_kind, elapsed)
    session.expire_all()
    pending = session.exec(select(func.count()).select_from(Subscriber)
                           .where(col(Subscriber.email).like("new%"), col(Subscriber.status) == "pending")).one()
    unsubscribed = session.exec(select(func.count()).select_from(Subscriber)
                                .where(col(Subscriber.status) == "unsubscribed")).one()
    saved = session.exec(select(func.count()).select_from(Subscriber)
                         .where(col(Subscriber.interests) == "saved under load",
                                col(Subscriber.timezone) == "Europe/Paris", col(Subscriber.send_hour) == 9)).one()
    events = Counter(session.exec(select(Event.kind)))
    assert (pending, unsubscribed, saved) == (EACH, EACH, EACH)
    assert (events["subscribe_request"], events["unsubscribe"], events["preferences_update"]) == (EACH, EACH, EACH)
