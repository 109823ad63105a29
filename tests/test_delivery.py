"""The delivery engine against real SMTP servers on loopback that refuse, defer, drop and stall."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta
from typing import cast

import pytest
from sqlmodel import Session, select

from newsletter import db
from newsletter.clock import today, utcnow
from newsletter.delivery import ledger
from newsletter.delivery.send import retry_delay, send_edition
from newsletter.editions import plan_edition
from newsletter.models import Delivery, Event, Subscriber, SubscriberStatus
from tests.conftest import scratch_postgres
from tests.helpers import configured, deliveries, planned, status_of
from tests.scripted_smtp import ScriptedSmtp


def test_one_connection_carries_every_message(session, settings, scripted_smtp):
    edition = planned(session, settings, *(f"reader{i}@example.org" for i in range(5)))
    report = send_edition(session, edition, configured(settings, scripted_smtp))
    assert (report.sent, report.failed, report.retries) == (5, 0, 0)
    assert scripted_smtp.handler.ehlos == 1
    sent_ids = [cast(str, d.message_id) for d in deliveries(session).values()]  # every row was sent: all set
    assert sorted(scripted_smtp.handler.message_ids()) == sorted(sent_ids)


@pytest.mark.parametrize("pipelining", [True, False])
def test_temporary_failures_are_retried_with_backoff_and_sent_once(session, settings, tmp_path, pipelining):
    with ScriptedSmtp(tmp_path / "s", pipelining=pipelining) as scripted_smtp:
        edition = planned(session, settings, "ada@example.org")
        scripted_smtp.handler.next_data("451", "421")
        report = send_edition(session, edition, configured(settings, scripted_smtp), wait_for_retries=5)
    assert (report.sent, report.retries, report.deferred, report.failed) == (1, 2, 0, 0)
    delivery = deliveries(session)["ada@example.org"]
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("sent", 3, None)
    assert scripted_smtp.handler.data_attempts == 3
    assert scripted_smtp.handler.message_ids() == [delivery.message_id]  # no duplicate


def test_message_ids_never_repeat_across_databases_and_stay_the_same_across_retries(
        session, settings, tmp_path, migrated_template, scripted_smtp):
    """Two installs (or a staging copy) count editions and deliveries alike; the random key keeps their
    Message-IDs apart. A retry of one delivery sends the same Message-ID again."""
    other_url = f"sqlite:///{tmp_path / 'other.db'}"
    (tmp_path / "other.db").write_bytes(migrated_template.read_bytes())
    ids = []
    for url in (settings.database_url, other_url):
        local = configured(settings.model_copy(update={"database_url": url}), scripted_smtp)
        with Session(db.get_engine(local.sqlalchemy_url)) as other:
            planned(other, local, "ada@example.org")
            row = deliveries(other)["ada@example.org"]
            ids.append((row.edition_id, row.id, row.message_key))
    assert ids[0][2] != ids[1][2] and len(ids[0][2]) == 24

    edition = ids[0][0]
    scripted_smtp.handler.next_data("451")
    first = send_edition(session, edition, configured(settings, scripted_smtp))
    assert (first.sent, first.deferred) == (0, 1)
    time.sleep(0.3)  # past its retry time (backoff capped at 0.2 s by `configured`)
    second = send_edition(session, edition, configured(settings, scripted_smtp))
    assert second.sent == 1
    sent = deliveries(session)["ada@example.org"]
    assert sent.message_key == ids[0][2]
    assert scripted_smtp.handler.message_ids() == [sent.message_id]
    assert sent.message_id == f"<edition-{sent.edition_id}.delivery-{sent.id}.{ids[0][2]}@example.org>"


def test_planning_draws_a_key_of_its_own_for_each_delivery(session, settings):
    planned(session, settings, "ada@example.org", "bob@example.org", "cy@example.org")  # one bulk insert
    keys = [row.message_key for row in deliveries(session).values()]
    assert len(set(keys)) == 3 and all(len(key) == 24 for key in keys), keys


def test_a_deferred_row_waits_for_its_retry_time(session, settings, scripted_smtp):
    edition = planned(session, settings, "ada@example.org")
    local = configured(settings, scripted_smtp, retry_base_delay=0.6, retry_max_delay=10)
    scripted_smtp.handler.next_data("451")
    before = utcnow()
    first = send_edition(session, edition, local)
    assert (first.sent, first.deferred) == (0, 1)
    delivery = deliveries(session)["ada@example.org"]
    assert delivery.next_attempt_at is not None and delivery.error is not None
    wait = (delivery.next_attempt_at - before).total_seconds()
    assert delivery.status == "pending" and "451" in delivery.error and 0.3 <= wait <= 0.7
    too_early = send_edition(session, edition, local)
    assert (too_early.sent, scripted_smtp.handler.data_attempts) == (0, 1)
    time.sleep(max(0.0, (delivery.next_attempt_at - utcnow()).total_seconds()) + 0.05)
    assert send_edition(session, edition, local).sent == 1
    assert len(scripted_smtp.handler.accepted) == 1


def test_backoff_doubles_up_to_the_cap_with_jitter(settings):
    local = settings.model_copy(update={"retry_base_delay": 60, "retry_max_delay": 600})
    for attempts, full in [(1, 60), (2, 120), (3, 240), (4, 480), (5, 600), (9, 600)]:
        delays = [retry_delay(attempts, local) for _ in range(50)]
        assert all(full / 2 <= d <= full for d in delays) and len(set(delays)) > 1


def test_out_of_attempts_fails_without_suppressing(session, settings, scripted_smtp):
    edition = planned(session, settings, "ada@example.org")
    scripted_smtp.handler.next_data("451", "451")
    report = send_edition(session, edition, configured(settings, scripted_smtp, max_attempts=2), wait_for_retries=5)
    assert (report.sent, report.failed, report.retries) == (0, 1, 2)
    delivery = deliveries(session)["ada@example.org"]
    assert delivery.error is not None
    assert delivery.status == "failed" and "gave up after 2 attempts" in delivery.error
    assert status_of(session, "ada@example.org") == "active"


def test_refused_recipient_fails_and_is_suppressed_while_others_go_on(session, settings, scripted_smtp):
    edition = planned(session, settings, "ada@example.org", "gone@example.org", "grace@example.org")
    scripted_smtp.handler.refuse_rcpt["gone@example.org"] = "550 5.1.1 No such user"
    report = send_edition(session, edition, configured(settings, scripted_smtp))
    assert (report.sent, report.failed) == (2, 1)
    rows = deliveries(session)
    assert rows["gone@example.org"].error is not None
    assert rows["gone@example.org"].status == "failed" and "550" in rows["gone@example.org"].error
    assert status_of(session, "gone@example.org") == "bounced"
    bounce = session.exec(select(Event).where(Event.kind == "bounce")).one()
    assert bounce.detail["code"] == 550 and bounce.detail["delivery_id"] == rows["gone@example.org"].id
    assert scripted_smtp.handler.ehlos == 1  # the refusal did not cost the connection

    later = plan_edition(session, today() + timedelta(days=1), settings)
    session.commit()
    planned_for = session.exec(select(Subscriber.email).join(Delivery)
                               .where(Delivery.edition_id == later.edition_id)).all()
    assert sorted(planned_for) == ["ada@example.org", "grace@example.org"]


def test_content_rejected_with_5xx_is_a_hard_bounce(session, settings, scripted_smtp):
    edition = planned(session, settings, "ada@example.org")
    scripted_smtp.handler.next_data("554")
    report = send_edition(session, edition, configured(settings, scripted_smtp))
    assert report.failed == 1 and status_of(session, "ada@example.org") == "bounced"


def test_connection_dropped_mid_data_is_retried_on_a_new_connection(session, settings, scripted_smtp):
    edition = planned(session, settings, "ada@example.org", "grace@example.org", "alan@example.org")
    scripted_smtp.handler.next_data("accept", "drop")  # the second message loses the connection before its reply
    report = send_edition(session, edition, configured(settings, scripted_smtp), wait_for_retries=5)
    assert (report.sent, report.retries, report.failed) == (3, 1, 0)
    assert scripted_smtp.handler.ehlos == 2
    ids = scripted_smtp.handler.message_ids()
    assert len(ids) == len(set(ids)) == 3


def test_server_stalling_past_the_timeout_is_a_temporary_failure(session, settings, scripted_smtp):
    edition = planned(session, settings, "ada@example.org")
    scripted_smtp.handler.next_data("stall")
    started = time.monotonic()
    report = send_edition(session, edition, configured(settings, scripted_smtp, smtp_timeout=0.3), wait_for_retries=5)
    assert (report.sent, report.retries) == (1, 1)
    assert time.monotonic() - started < 5
    assert "TimeoutError" in report.errors[0] or "timed out" in report.errors[0]
    assert scripted_smtp.handler.message_ids() == [deliveries(session)["ada@example.org"].message_id]


def test_reused_connection_closed_by_the_server_is_reopened_at_once(session, settings, scripted_smtp):
    edition = planned(session, settings, "ada@example.org", "grace@example.org")
    scripted_smtp.handler.close_after_next_accept = True
    report = send_edition(session, edition, configured(settings, scripted_smtp))
    assert (report.sent, report.retries) == (2, 0)  # nothing of the second message had been sent: no retry
    assert scripted_smtp.handler.ehlos == 2


def test_unreachable_server_stops_the_run_and_leaves_rows_pending(session, settings):
    edition = planned(session, settings, *(f"reader{i}@example.org" for i in range(7)))
    local = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": _closed_port(), "smtp_timeout": 0.5})
    report = send_edition(session, edition, local)
    assert (report.sent, report.retries, report.deferred) == (0, 5, 5)
    assert report.stopped == "5 temporary failures in a row"
    assert Counter(d.status for d in deliveries(session).values()) == {"pending": 7}
    assert {d.attempts for d in deliveries(session).values()} == {0}  # no server, no attempt: an outage fails nobody


def test_refused_envelope_sender_stops_and_blames_no_recipient(session, settings, scripted_smtp):
    edition = planned(session, settings, "ada@example.org", "grace@example.org")
    scripted_smtp.handler.mail_reply = "553 5.7.1 Sender address rejected"
    report = send_edition(session, edition, configured(settings, scripted_smtp))
    assert (report.sent, report.failed) == (0, 0)
    assert "refused the envelope sender" in report.stopped
    assert {status_of(session, e) for e in ("ada@example.org", "grace@example.org")} == {"active"}
    assert {(d.status, d.attempts) for d in deliveries(session).values()} == {("pending", 0)}


@pytest.mark.parametrize("change", [{"status": "unsubscribed"}, {"status": "bounced"}, {"status": "complained"},
                                    {"paused": True}])
def test_suppressed_at_send_time(session, settings, scripted_smtp, change):
    edition = planned(session, settings, "ada@example.org", "grace@example.org")
    subscriber = session.exec(select(Subscriber).where(Subscriber.email == "ada@example.org")).one()
    for name, value in change.items():
        setattr(subscriber, name, value)
    session.commit()
    report = send_edition(session, edition, configured(settings, scripted_smtp))
    assert (report.sent, report.skipped) == (1, 1)
    assert [e.rcpt_tos for e in scripted_smtp.handler.accepted] == [["grace@example.org"]]
    assert deliveries(session)["ada@example.org"].status == "skipped"


def test_a_success_resets_the_soft_bounce_count(session, settings, scripted_smtp):
    edition = planned(session, settings, "ada@example.org")
    subscriber = session.exec(select(Subscriber)).one()
    subscriber.soft_bounces = 2
    session.commit()
    send_edition(session, edition, configured(settings, scripted_smtp))
    session.expire_all()
    assert session.get(Subscriber, subscriber.id).soft_bounces == 0


def send_from_two_threads(engine, edition: int, settings) -> list:
    """Two senders, each with its own session, started together on the same edition; their reports."""
    reports, barrier = [], threading.Barrier(2)

    def sender():
        with Session(engine, expire_on_commit=False) as own:
            barrier.wait()
            reports.append(send_edition(own, edition, settings))

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return reports


def test_two_senders_on_one_edition_never_send_a_row_twice(session, settings, scripted_smtp):
    emails = [f"reader{i}@example.org" for i in range(24)]
    edition = planned(session, settings, *emails)
    local = configured(settings, scripted_smtp)
    scripted_smtp.handler.accept_delay = 0.03  # so that the two senders' runs overlap, even on a busy machine
    reports = send_from_two_threads(db.get_engine(settings.sqlalchemy_url), edition, local)
    ids = scripted_smtp.handler.message_ids()
    assert len(ids) == len(set(ids)) == 24
    # every row was sent once, by one of the two; the other found it taken (skipped) or never listed it
    assert sum(r.sent for r in reports) == 24
    assert all(r.failed == r.deferred == 0 and not r.errors and not r.stopped for r in reports)
    assert all(r.sent for r in reports), "both senders should have taken part"
    assert {d.status for d in deliveries(session).values()} == {"sent"}


def test_stale_claims_go_back_to_pending_after_the_lease(session, settings, scripted_smtp):
    edition = planned(session, settings, "ada@example.org")
    delivery = deliveries(session)["ada@example.org"]
    assert ledger.claim(session, delivery.id)  # a sender that crashed right after claiming
    assert send_edition(session, edition, configured(settings, scripted_smtp)).sent == 0
    delivery.claimed_at = utcnow() - ledger.DEFAULT_LEASE - timedelta(seconds=1)
    session.add(delivery)
    session.commit()
    assert send_edition(session, edition, configured(settings, scripted_smtp)).sent == 1


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres_settings(settings):
    """Settings on a throwaway PostgreSQL database (issue5_<random>), migrated; dropped afterwards."""
    with scratch_postgres("issue5") as url:
        yield settings.model_copy(update={"database_url": url})


@pytest.mark.postgres
def test_two_senders_on_postgresql_never_send_a_row_twice(postgres_settings, scripted_smtp):
    local = configured(postgres_settings, scripted_smtp)
    engine = db.get_engine(local.sqlalchemy_url)
    with Session(engine, expire_on_commit=False) as pg:
        edition = planned(pg, local, *(f"reader{i}@example.org" for i in range(16)))
        reader3 = pg.exec(select(Subscriber).where(Subscriber.email == "reader3@example.org")).one()
        reader3.status = SubscriberStatus.unsubscribed
        pg.commit()
    scripted_smtp.handler.accept_delay = 0.03  # the two senders overlap, even on a busy machine
    reports = send_from_two_threads(engine, edition, local)
    ids = scripted_smtp.handler.message_ids()
    assert len(ids) == len(set(ids)) == 15
    assert sum(r.sent for r in reports) == 15 and all(r.sent for r in reports)
    with Session(engine) as pg:
        statuses = Counter(pg.exec(select(Delivery.status)).all())
    assert statuses == {"sent": 15, "skipped": 1}
