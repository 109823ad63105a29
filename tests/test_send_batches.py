"""Sending at scale: batched claims and marks, parallel SMTP connections, profiles prepared at import.

The rules under test are the ledger's (newsletter/delivery/ledger.py): a batched claim moves each row it returns
pending -> sending in that one statement, so two racing senders claim each row exactly once; rows a run claimed
and never handed over go back to pending when it stops; a pool of connections sends each row once.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from sqlmodel import Session, select

from newsletter import db
from newsletter.delivery import ledger
from newsletter.delivery.send import send_edition
from newsletter.edition_control import pause_edition
from newsletter.models import Delivery, Edition, Subscriber
from tests.conftest import scratch_postgres
from tests.helpers import configured, deliveries, planned


def test_parallel_connections_send_each_row_once(session, settings, scripted_smtp):
    emails = [f"reader{i}@example.org" for i in range(40)]
    edition = planned(session, settings, *emails)
    scripted_smtp.handler.accept_delay = 0.02  # answers take a while: the other connections are used meanwhile
    report = send_edition(session, edition, configured(settings, scripted_smtp, smtp_connections=4))
    assert (report.sent, report.failed, report.skipped, report.stopped) == (40, 0, 0, "")
    ids = scripted_smtp.handler.message_ids()
    assert len(ids) == len(set(ids)) == 40
    assert 2 <= scripted_smtp.handler.ehlos <= 4, "several connections, never more than configured"
    rows = deliveries(session)
    assert {d.status for d in rows.values()} == {"sent"} and {d.attempts for d in rows.values()} == {1}
    assert sorted(str(d.message_id) for d in rows.values()) == sorted(ids)  # every accepted message recorded


def test_a_pause_gives_back_the_claimed_rows_at_once(session, settings, scripted_smtp):
    edition = planned(session, settings, *(f"reader{i}@example.org" for i in range(20)))
    scripted_smtp.handler.accept_delay = 0.01

    def pause_after_five(report):
        if report.handled == 5:
            with db.session_scope(settings.sqlalchemy_url) as other:
                pause_edition(other, other.get_one(Edition, edition))

    report = send_edition(session, edition, configured(settings, scripted_smtp, smtp_connections=3),
                          on_progress=pause_after_five)
    assert report.stopped == "edition paused"
    sent = len(scripted_smtp.handler.message_ids())
    assert 5 <= report.sent == sent <= 5 + 3  # at most the messages in flight when the pause was seen
    rows = deliveries(session).values()
    assert Counter(d.status for d in rows) == {"sent": sent, "pending": 20 - sent}  # nothing left in `sending`
    assert all(d.attempts == 0 for d in rows if d.status == "pending")  # the claims' attempts taken back


def race_claims(engine, ids: list[int], batch: int) -> list[list[int]]:
    """Two threads claim the same rows in batches (one in order, one in reverse) at the same time."""
    claimed: list[list[int]] = [[], []]
    barrier = threading.Barrier(2)

    def claimer(n: int):
        order = ids if n == 0 else ids[::-1]
        with engine.connect() as connection:
            barrier.wait()
            for start in range(0, len(order), batch):
                claimed[n].extend(ledger.claim_batch(connection, order[start:start + batch]))

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return claimed


def check_race(settings) -> None:
    engine = db.get_engine(settings.sqlalchemy_url)
    with Session(engine, expire_on_commit=False) as session:
        edition = planned(session, settings, *(f"reader{i}@example.org" for i in range(120)))
        ids = list(session.exec(select(Delivery.id).where(Delivery.edition_id == edition)))
    first, second = race_claims(engine, ids, batch=7)
    assert not set(first) & set(second), "a row claimed by both senders"
    assert sorted(first + second) == sorted(ids) and len(first + second) == len(ids)
    with Session(engine) as session:
        rows = session.exec(select(Delivery)).all()
    assert {(d.status, d.attempts) for d in rows} == {("sending", 1)}
    assert ledger.claim_batch(engine.connect(), ids) == {}  # nothing left to claim


def test_batched_claims_of_two_racing_senders_take_each_row_once(session, settings):
    check_race(settings)


@pytest.mark.postgres
def test_batched_claims_of_two_racing_senders_take_each_row_once_on_postgresql(settings):
    with scratch_postgres("scale") as url:
        check_race(settings.model_copy(update={"database_url": url}))


def test_a_batched_claim_returns_the_send_time_state_and_skips_closed_editions(session, settings):
    edition = planned(session, settings, "ada@example.org", "grace@example.org")
    rows = deliveries(session)
    grace = session.exec(select(Subscriber).where(Subscriber.email == "grace@example.org")).one()
    grace.status = "unsubscribed"  # after planning: the claim must report it
    session.add(grace)
    session.commit()
    with db.get_engine(settings.sqlalchemy_url).connect() as connection:
        claimed = ledger.claim_batch(connection, [rows["ada@example.org"].id, rows["grace@example.org"].id])
        assert {row.email: row.status for row in claimed.values()} == {"ada@example.org": "active",
                                                                        "grace@example.org": "unsubscribed"}
        ledger.release(connection, list(claimed))
    assert {(d.status, d.attempts) for d in deliveries(session).values()} == {("pending", 0)}
    pause_edition(session, session.get_one(Edition, edition))
    session.commit()
    with db.get_engine(settings.sqlalchemy_url).connect() as connection:
        assert ledger.claim_batch(connection, [d.id for d in deliveries(session).values()]) == {}


def test_import_prepares_profile_vectors_and_facets(session, settings, cli, tmp_path):
    path = tmp_path / "readers.jsonl"
    path.write_text('{"email": "ada@example.org", "interests": "robot learning from demonstrations"}\n'
                    '{"email": "grace@example.org", "interests": "sparse attention; long-context inference"}\n')
    result = cli("subscribers", "import", str(path), "--confirmed")
    assert result.exit_code == 0, result.output
    session.expire_all()
    subscribers = session.exec(select(Subscriber)).all()
    assert len(subscribers) == 2
    assert all(s.profile_embedding and s.profile_key and s.profile_facets.get("facets") for s in subscribers)
