"""`newsletter send`, `test-send` and `editions ...` against a real SMTP server on loopback (and real Redis)."""

import asyncio
import base64
import json
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from email import message_from_bytes
from email.policy import default

import pytest
import redis
from sqlmodel import col, select

from newsletter import db
from newsletter.clock import today
from newsletter.delivery.send import send_edition
from newsletter.edition_control import find_edition, pause_edition
from newsletter.editions import plan_edition
from newsletter.models import Delivery, DeliveryStatus, Edition, Subscriber
from newsletter.sink import SaveToFolder, SmtpSink
from tests.helpers import add_active, ingest_sample, process_environment, wait_until

EMAILS = [f"reader{n}@example.org" for n in range(1, 9)]




@pytest.fixture
def readers(session):
    ingest_sample(session)
    for number, email in enumerate(EMAILS):
        add_active(session, email, keywords=["LLM", "diffusion", "reinforcement learning", "robotics"][number % 4])
    return EMAILS


def deliveries(session) -> list[Delivery]:
    session.expire_all()
    return list(session.exec(select(Delivery).order_by(col(Delivery.id))))


def received(sink) -> list:
    return [message_from_bytes(e.original_content, policy=default) for e in sink.handler.envelopes]


def unsigned(text: str) -> list[str]:
    """The lines of a text part with signed tokens blanked (they embed the second they were made)."""
    return re.sub(r"(https://digest\.example\.org/[a-z]+/)\S+", r"\1TOKEN", text.strip()).splitlines()


def test_dry_run_sends_and_stores_nothing(session, readers, sink, smtp_settings, cli):
    result = cli("send", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["would_send"] == 8 and {row["email"] for row in plan["rows"]} == set(EMAILS)
    assert all(row["papers"] == 10 and row["top_paper"] for row in plan["rows"])
    assert "nothing was sent or stored" in cli("send", "--dry-run").output
    assert sink.handler.envelopes == []
    assert session.exec(select(Edition)).all() == [] and deliveries(session) == []


def test_send_only_and_limit_then_the_rest_exactly_once(session, readers, sink, smtp_settings, cli):
    only = cli("send", "--only", EMAILS[2], "--json")
    assert only.exit_code == 0, only.output
    assert json.loads(only.stdout)["send"]["sent"] == 1 and [m["To"] for m in received(sink)] == [EMAILS[2]]
    limited = cli("send", "--limit", "3")
    assert limited.exit_code == 0 and "sent 3," in limited.output
    rest = cli("send")
    assert rest.exit_code == 0 and "sent 4," in rest.output
    assert cli("send").output.count("sent 0,") == 1
    recipients = [m["To"] for m in received(sink)]
    assert sorted(recipients) == sorted(EMAILS)
    assert len({m["Message-ID"] for m in received(sink)}) == 8
    assert find_edition(session, today().isoformat()).status == "done"


def test_only_refuses_a_subscriber_who_is_not_active(session, readers, sink, smtp_settings, cli):
    cli("subscribers", "add", "waiting@example.org", "--pending")
    result = cli("send", "--only", "waiting@example.org")
    assert result.exit_code == 1 and "is pending" in result.output and "Traceback" not in result.output
    subscriber = session.exec(select(Subscriber).where(Subscriber.email == EMAILS[0])).one()
    subscriber.paused = True
    session.commit()
    paused = cli("send", "--only", EMAILS[0])
    assert paused.exit_code == 1 and "has paused their emails" in paused.output
    assert sink.handler.envelopes == []


def test_test_send_is_the_subscribers_email_marked_and_records_nothing(session, readers, sink, smtp_settings, cli):
    preview_out = cli("preview", EMAILS[0], "--text").stdout
    result = cli("test-send", "qa@example.net", "--as", EMAILS[0])
    assert result.exit_code == 0, result.output
    [message] = received(sink)
    assert sink.handler.envelopes[0].rcpt_tos == ["qa@example.net"] and message["To"] == "qa@example.net"
    assert message["Subject"].startswith("[TEST] ") and message["Subject"].endswith(" +9 more")
    assert message["X-Newsletter-Test"].startswith(f"yes; as={EMAILS[0]}")
    assert message["List-Unsubscribe"] is None and message["Message-ID"].startswith("<test-")
    text = next(p for p in message.walk() if p.get_content_type() == "text/plain").get_content()
    assert unsigned(text) == unsigned(preview_out)  # the same body, the subscriber's own links included
    assert session.exec(select(Edition)).all() == [] and deliveries(session) == []
    bad = cli("test-send", "not an address", "--as", EMAILS[0])
    assert bad.exit_code == 1 and "invalid email address" in bad.output


def test_pause_takes_effect_mid_run_and_resume_sends_everyone_else_once(settings, session, readers, sink,
                                                                         smtp_settings, cli):
    plan = plan_edition(session, today(), smtp_settings)
    session.commit()

    def pause_after_three(report):
        if report.handled == 3:  # an operator in another process
            with db.session_scope(settings.sqlalchemy_url) as other:
                edition = other.get(Edition, plan.edition_id)
                assert edition is not None
                pause_edition(other, edition)

    report = send_edition(session, plan.edition_id, smtp_settings, on_progress=pause_after_three)
    assert (report.sent, report.stopped) == (3, "edition paused")
    assert [d.status for d in deliveries(session)].count(DeliveryStatus.pending) == 5
    refused = cli("send")
    assert refused.exit_code == 1 and "is paused" in refused.output and len(sink.handler.envelopes) == 3
    assert cli("editions", "pause", plan.edition_id).output.strip().endswith("was already paused")
    resumed = cli("editions", "resume", plan.edition_id, "--json")
    assert resumed.exit_code == 0, resumed.output
    outcome = json.loads(resumed.stdout)  # only JSON on stdout
    assert outcome["edition_id"] == plan.edition_id and outcome["resumed"] is True
    assert (outcome["send"]["sent"], outcome["send"]["failed"], outcome["send"]["stopped"]) == (5, 0, "")
    again = cli("editions", "resume", plan.edition_id, "--json")  # done now: nothing to resume, nothing sent
    assert again.exit_code == 1 and "cannot resume" in again.stderr and again.stdout == ""
    messages = received(sink)
    assert sorted(m["To"] for m in messages) == sorted(EMAILS)
    assert len({m["Message-ID"] for m in messages}) == 8
    shown = json.loads(cli("editions", "show", today().isoformat(), "--json").stdout)
    assert shown["status"] == "done" and shown["deliveries"]["sent"] == 8
    listed = json.loads(cli("editions", "list", "--json").stdout)
    assert [(e["id"], e["deliveries"]["sent"]) for e in listed] == [(plan.edition_id, 8)]


def test_cancel_skips_the_unsent_and_refuses_to_send(session, readers, sink, smtp_settings, cli):
    assert cli("send", "--limit", "2").exit_code == 0
    edition_id = find_edition(session, today().isoformat()).id
    result = cli("editions", "cancel", edition_id)
    assert result.exit_code == 0 and "6 unsent deliveries skipped" in result.output
    assert [d.status for d in deliveries(session)].count(DeliveryStatus.skipped) == 6
    assert all(d.error == "edition cancelled" for d in deliveries(session) if d.status == "skipped")
    refused = cli("send")
    assert refused.exit_code == 1 and "is cancelled" in refused.output
    again = cli("editions", "resume", edition_id)
    assert again.exit_code == 1 and "cannot resume" in again.output and len(sink.handler.envelopes) == 2


def test_edition_commands_report_unknown_editions_in_one_line(settings, cli):
    for args in (("editions", "show", "99"), ("editions", "pause", "2020-01-01"), ("editions", "cancel", "x")):
        result = cli(*args)
        assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output
        assert "Traceback" not in result.output


class SlowSink(SaveToFolder):
    """Accepts each message after a pause, so a send is still running when the test interrupts it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.data_started = 0  # messages whose content arrived (the client now waits for the answer)

    async def handle_DATA(self, server, session, envelope):
        self.data_started += 1
        await asyncio.sleep(0.25)
        return await super().handle_DATA(server, session, envelope)


SEND = [sys.executable, "-m", "newsletter", "send"]


def interrupted_send(sink, env: dict, cwd) -> subprocess.Popen:
    """A `newsletter send` process, sent SIGINT once the sink has received two messages."""
    process = subprocess.Popen(SEND, env=env, cwd=cwd,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(sink.handler.envelopes) < 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    return process


def test_interrupted_send_resumes_without_duplicates(session, readers, settings, tmp_path):
    """A real `newsletter send` process gets SIGINT mid-run; a second run finishes the edition."""
    with SmtpSink(tmp_path / "outbox", handler=SlowSink(tmp_path / "outbox")) as sink:
        env = process_environment(settings.model_copy(update={"smtp_host": sink.host, "smtp_port": sink.port,
                                                               "log_format": "json"}))
        first = interrupted_send(sink, env, tmp_path)
        out, err = first.communicate(timeout=60)
        assert first.returncode == 130, err
        assert "interrupted after" in err and "Traceback" not in err
        sent_first = len(sink.handler.envelopes)
        statuses: list[str] = [d.status for d in deliveries(session)]
        assert 2 <= sent_first < 8 and statuses.count("sent") == sent_first  # the message in flight was recorded
        assert statuses.count("pending") == 8 - sent_first and "sending" not in statuses
        log_lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        assert [line["to"] for line in log_lines if line["event"] == "delivery sent"] == \
               [e.rcpt_tos[0] for e in sink.handler.envelopes]

        second = subprocess.run(SEND, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stderr
        assert f"sent {8 - sent_first}," in second.stdout
    messages = received(sink)
    assert sorted(m["To"] for m in messages) == sorted(EMAILS)
    assert len({m["Message-ID"] for m in messages}) == 8
    assert all(d.status == "sent" for d in deliveries(session))


@pytest.mark.redis
def test_via_celery_enqueues_send_batches_in_redis(session, readers, settings, redis_url, cli):
    result = cli("send", "--via-celery", "--json")
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.stdout)
    assert outcome["enqueued"] == 8 and len(outcome["tasks"]) == 1
    [raw] = redis.Redis.from_url(redis_url).lrange(f"{settings.redis_key_prefix}celery", 0, -1)  # Celery's queue
    message = json.loads(raw)
    assert message["headers"]["task"] == "tasks.tasks.send_batch"
    assert message["headers"]["id"] == outcome["tasks"][0]
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    edition_id = find_edition(session, today().isoformat()).id
    assert args[:2] == [edition_id, [d.id for d in deliveries(session)]]
    assert all(d.status == "pending" for d in deliveries(session))  # the workers send them


def test_via_celery_says_so_when_redis_is_unreachable(session, readers, settings, cli):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.redis_url = f"redis://:secret@127.0.0.1:{port}/0"
    result = cli("send", "--via-celery")
    assert result.exit_code == 1 and "cannot reach Redis at redis://:**@127.0.0.1" in result.output
    assert "secret" not in result.output and "Traceback" not in result.output


def test_an_unreachable_smtp_server_stops_the_send_with_one_line(session, readers, settings, cli):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.smtp_port = port
    result = cli("send")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.strip().splitlines()[-1] == \
           "error: stopped after 5 temporary failures in a row; the rest stays pending for the next run"
    assert all(d.status == "pending" for d in deliveries(session))


def test_a_second_ctrl_c_aborts_at_once_and_the_lease_rule_recovers_the_row_in_flight(session, readers, settings,
                                                                                      tmp_path):
    """Documented behaviour of an abort: the row in flight may stay `sending`; once its lease has passed, the next
    run sends it again (with the same Message-ID). No row is lost on the way."""
    from sqlalchemy import update

    from newsletter.clock import utcnow

    slow = SlowSink(tmp_path / "outbox")
    with SmtpSink(tmp_path / "outbox", handler=slow) as sink:
        env = process_environment(settings.model_copy(update={"smtp_host": sink.host, "smtp_port": sink.port}))
        first = subprocess.Popen(SEND, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_until(lambda: slow.data_started >= 3 or first.poll() is not None, 120, "the third message")
        first.send_signal(signal.SIGINT)  # while the third message waits for the server's answer:
        time.sleep(0.05)
        first.send_signal(signal.SIGINT)  # the second Ctrl-C aborts that wait
        _, err = first.communicate(timeout=60)
        # It aborted (exit 130, no "interrupted after" report of the graceful stop one Ctrl-C makes), mid-message:
        assert first.returncode == 130 and "interrupted after" not in err, err
        statuses: list[str] = [d.status for d in deliveries(session)]
        assert statuses.count("sending") == 1 and statuses.count("sent") == 2  # the row in flight stays `sending`
        assert statuses.count("pending") == 5
        in_flight = [f"<edition-{d.edition_id}.delivery-{d.id}.{d.message_key}@"
                     for d in deliveries(session) if d.status == "sending"]
        session.exec(update(Delivery).where(col(Delivery.status) == "sending")
                     .values(claimed_at=utcnow() - timedelta(days=1)))  # its lease has long passed
        session.commit()
        second = subprocess.run(SEND, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stderr
    messages = received(sink)
    assert sorted({m["To"] for m in messages}) == sorted(EMAILS)
    counts = Counter(m["Message-ID"] for m in messages)
    duplicated = [mid for mid, n in counts.items() if n > 1]
    assert len(duplicated) <= len(in_flight)  # only the message in flight at the abort can arrive twice
    assert all(any(mid.startswith(prefix) for prefix in in_flight) for mid in duplicated)
    assert all(d.status == "sent" for d in deliveries(session))
