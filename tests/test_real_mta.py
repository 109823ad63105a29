"""A real MTA in the loop: editions sent through a throwaway Postfix instance on loopback (tests/support/postfix.py).

Debian's Postfix, not a Python server playing one: its own RCPT-time refusals, its queue, its virtual(8) Maildir
delivery, its DSNs (written by Postfix's bounce daemon, returned to our VERP address), its STARTTLS and Cyrus
SASL AUTH, its size limit and a greylisting policy service. The product is driven through the `newsletter` CLI
in a subprocess configured by NEWSLETTER_* variables made from the test's settings (tests.helpers.run_cli), and
`send_edition` where a test needs to shape the message or the dates.

Each test starts its own instance (about 2 s) and stops it. Without Postfix (or not as root) they are skipped,
except under CI, where they fail: `bash scripts/setup.sh` installs the Debian packages.
"""

from __future__ import annotations

import json
import re
import time
from contextlib import contextmanager
from datetime import timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import cast

import pytest
from sqlmodel import col, select

from newsletter.clock import today
from newsletter.delivery.bounces import process_mailbox
from newsletter.delivery.envelope import envelope_sender
from newsletter.delivery.send import send_edition
from newsletter.delivery.smtp import SmtpSender
from newsletter.editions import plan_edition
from newsletter.ingest import ingest
from newsletter.models import Event, Subscriber
from tests.conftest import FIXTURES, service_unavailable
from tests.helpers import add_active, deliveries, ingest_sample, run_cli, status_of
from tests.support.postfix import PostfixInstance, unavailable_reason

pytestmark = pytest.mark.slow

READERS = ["ada@inbox.example.com", "grace@inbox.example.com", "alan@inbox.example.com"]
GHOST = "ghost@inbox.example.com"  # accepted, then returned by transport_maps error:5.1.1 (a DSN)
STRANGER = "stranger@inbox.example.com"  # in no table: accepted, then returned by virtual(8) as "unknown user" (a DSN)
SLOW = "slow@inbox.example.com"  # accepted, deferred (retry:4.4.1) until the queue lifetime ends, then returned (a DSN)
GONE = "gone@inbox.example.com"  # refused at RCPT: 550 5.1.1 User unknown
GREY = "grey@inbox.example.com"  # greylisted: 450 4.7.1 at RCPT to the first attempt


@pytest.fixture
def postfix_ready():
    reason = unavailable_reason()
    if reason:
        service_unavailable(f"no throwaway Postfix here: {reason}")


@contextmanager
def postfix(**options):
    """A PostfixInstance whose log is printed (so pytest shows it) when the block fails."""
    with PostfixInstance(**options) as mta:
        try:
            yield mta
        except BaseException:
            print(mta.log_tail(120))
            raise


@pytest.fixture
def settings(settings):
    """The test's settings (conftest) with lexical ranking: these tests are about mail, not the embedding model."""
    return settings.model_copy(update={"semantic": "off"})


def readers(session, settings, *emails: str) -> None:
    """Active subscribers interested in language models, and a small corpus that gives each of them papers."""
    ingest(session, str(FIXTURES / "hf_daily_papers.json"), settings)
    session.commit()
    for email in emails:
        add_active(session, email, "language models")


def through(settings, mta: PostfixInstance, *, submission: bool = False, username: str | None = None,
            password: str | None = None, **updates):
    """`settings` sending through the instance: plain SMTP to its MX-style port, or STARTTLS + AUTH to its
    submission port (the certificate verified against the instance's own); VERP bounces to its bounce mailbox."""
    values = {"smtp_host": "127.0.0.1", "smtp_port": mta.port, "smtp_timeout": 10, "verp": True,
              "bounce_address": mta.bounce_address, "log_format": "json"}
    if submission:
        values.update({"smtp_port": mta.submission_port, "smtp_security": "starttls", "smtp_ca_file": mta.ca_file,
                       "smtp_username": mta.username if username is None else username,
                       "smtp_password": mta.password if password is None else password})
    return settings.model_copy(update={**values, **updates})


def newsletter(tmp_path, settings, *args: str):
    """The `newsletter` CLI in a subprocess, configured by `settings` as NEWSLETTER_* variables."""
    return run_cli(settings, tmp_path, *args)


def send_json(tmp_path, settings) -> dict:
    result = newsletter(tmp_path, settings, "send", "--json")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout)["send"]


def delivered(mta: PostfixInstance, address: str) -> list[EmailMessage]:
    return [message_from_bytes(raw, policy=default) for raw in mta.delivered(address)]


def verp_of(settings, mta: PostfixInstance, delivery_id: int) -> str:
    return envelope_sender(delivery_id, settings.model_copy(update={"verp": True,
                                                                    "bounce_address": mta.bounce_address}))


def dsn_fields(message: EmailMessage) -> list[dict[str, str]]:
    """The per-recipient fields of a DSN's message/delivery-status part, as Postfix wrote them."""
    part = next(p for p in message.walk() if p.get_content_type() == "message/delivery-status")
    # A message/delivery-status payload is a list of header blocks (per message, then per recipient).
    blocks = cast(list[EmailMessage], part.get_payload())
    return [{k: str(v) for k, v in block.items()} for block in blocks[1:]]


def suppressed(session) -> set[str]:
    session.expire_all()
    return {s.email for s in session.exec(select(Subscriber).where(Subscriber.status != "active"))}


def test_edition_lands_in_maildirs_and_postfix_dsns_suppress_the_unknown_users(session, settings, tmp_path,
                                                                                  postfix_ready):
    """Plain SMTP to Postfix: readers' Maildirs get their email; Postfix's own DSNs come back to each delivery's
    VERP address and `newsletter bounces process` on that Maildir suppresses exactly the unknown users."""
    readers(session, settings, *READERS, GHOST, STRANGER, SLOW, GONE)
    with postfix(mailboxes=READERS, unknown=[GHOST], deferred=[SLOW], rejected=[GONE], queue_lifetime=6,
                 delay_warning=1) as mta:
        report = send_json(tmp_path, through(settings, mta))
        assert (report["sent"], report["failed"], report["deferred"], report["stopped"]) == (6, 1, 0, "")
        assert [e for e in report["errors"] if GONE in e and "550 5.1.1" in e and "User unknown" in e]
        assert suppressed(session) == {GONE}  # refused at RCPT: suppressed at once

        rows = deliveries(session)
        mta.wait_for_mail(READERS)
        for email in READERS:  # virtual(8) put each reader's one message in their Maildir
            [message] = delivered(mta, email)
            assert message["To"].addresses[0].addr_spec == email
            assert message["Message-ID"] == rows[email].message_id
            assert message["Return-Path"] == f"<{verp_of(settings, mta, rows[email].id)}>"
            assert message.get_body(("html",)) is not None and message.get_body(("plain",)) is not None

        # Postfix returns GHOST and STRANGER at once, SLOW when its queue lifetime (6 s) has passed, and warns
        # about SLOW's delay first (delay_warning_time 1 s): four DSNs in the bounce Maildir.
        mta.wait_until(lambda: mta.queued() == 0 and mta.count_delivered(mta.bounce_address) >= 4, 60,
                       "Postfix to return GHOST, STRANGER and (after its queue lifetime) SLOW")
        dsns = delivered(mta, mta.bounce_address)
        assert len(dsns) == 4
        reports = {(fields["Final-Recipient"].split(";")[1].strip(), fields["Action"], fields["Status"])
                   for dsn in dsns for fields in dsn_fields(dsn)}
        assert reports == {(GHOST, "failed", "5.1.1"), (STRANGER, "failed", "5.1.1"),
                           (SLOW, "delayed", "4.4.1"), (SLOW, "failed", "4.4.1")}
        assert sorted(dsn["Delivered-To"] for dsn in dsns) == sorted(  # each to the VERP address of its delivery
            verp_of(settings, mta, rows[email].id) for email in (GHOST, STRANGER, SLOW, SLOW))
        assert all(dsn["From"].addresses[0].addr_spec == "MAILER-DAEMON@mta.example.com" for dsn in dsns)

        processed = newsletter(tmp_path, through(settings, mta), "bounces", "process", str(mta.bounce_maildir))
        assert processed.returncode == 0, processed.stderr
        assert suppressed(session) == {GONE, GHOST, STRANGER}  # exactly the unknown users
        # SLOW's expiry DSN carries Postfix's 4.4.1: a soft bounce, counted (NEWSLETTER_SOFT_BOUNCE_LIMIT in a
        # row suppress); the delay warning changes nothing.
        session.expire_all()
        assert session.exec(select(Subscriber.soft_bounces).where(Subscriber.email == SLOW)).one() == 1
        events = session.exec(select(Event, Subscriber.email).join(Subscriber, isouter=True)
                              .where(col(Event.kind).in_(("bounce", "soft_bounce", "report_ignored")))).all()
        from_dsns = [(event.kind, email, event.detail.get("matched_by"), event.detail.get("delivery_id"))
                     for event, email in events if event.detail.get("source") == "dsn"]
        assert sorted(from_dsns) == sorted([
            ("bounce", GHOST, "verp", rows[GHOST].id), ("bounce", STRANGER, "verp", rows[STRANGER].id),
            ("soft_bounce", SLOW, "verp", rows[SLOW].id), ("report_ignored", SLOW, "verp", rows[SLOW].id)])

        before = len(session.exec(select(Event)).all())
        again = newsletter(tmp_path, through(settings, mta), "bounces", "process", str(mta.bounce_maildir))
        assert again.returncode == 0, again.stderr
    session.expire_all()
    assert len(session.exec(select(Event)).all()) == before  # the same mailbox again changes nothing
    assert suppressed(session) == {GONE, GHOST, STRANGER}


def test_same_edition_through_starttls_with_auth(session, settings, tmp_path, postfix_ready):
    """NEWSLETTER_SMTP_SECURITY=starttls with AUTH to the submission port: the certificate is verified against
    NEWSLETTER_SMTP_CA_FILE, Postfix records the session as TLS + authenticated, every reader gets the email."""
    readers(session, settings, *READERS)
    with postfix(mailboxes=READERS) as mta:
        report = send_json(tmp_path, through(settings, mta, submission=True))
        assert (report["sent"], report["failed"], report["deferred"]) == (3, 0, 0)
        rows = deliveries(session)
        mta.wait_for_empty_queue(30)
        for email in READERS:
            [message] = delivered(mta, email)
            received_headers = message.get_all("Received")
            assert received_headers is not None
            received = received_headers[0]
            assert "(using TLSv1." in received and "with ESMTPSA" in received  # TLS, and SMTP AUTH
            assert message["Message-ID"] == rows[email].message_id
        assert f"sasl_method=PLAIN, sasl_username={mta.username}@{mta.hostname}" in mta.log()
        # One session for the whole edition: STARTTLS, one AUTH, three transactions (Postfix's own summary).
        session_summary = re.compile(r"submission/smtpd\[\d+\]: disconnect from \S+ "
                                     r"ehlo=2 starttls=1 auth=1 mail=3 rcpt=3 data=3 quit=1 commands=14\n")
        mta.wait_until(lambda: session_summary.search(mta.log()), 10, "Postfix to log the SMTP session")


def test_wrong_password_stops_the_send_and_blames_nobody(session, settings, tmp_path, postfix_ready):
    """Postfix refuses the login (535 5.7.8): one clear error line, exit 1, every row still pending, nobody
    suppressed; with the right password the same command then sends the edition."""
    readers(session, settings, *READERS)
    with postfix(mailboxes=READERS) as mta:
        result = newsletter(tmp_path, through(settings, mta, submission=True, password="not-the-password"), "send")
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert f"SMTP login to 127.0.0.1:{mta.submission_port} as 'digest' refused: 535 5.7.8" in error
        assert "authentication failed" in error
        assert {d.status for d in deliveries(session).values()} == {"pending"}
        assert {d.attempts for d in deliveries(session).values()} == {0}
        assert suppressed(session) == set()
        assert session.exec(select(Event).where(Event.kind == "bounce")).all() == []
        assert all(mta.count_delivered(email) == 0 for email in READERS)

        report = send_json(tmp_path, through(settings, mta, submission=True))
        assert report["sent"] == 3
        mta.wait_for_empty_queue(30)
        assert all(mta.count_delivered(email) == 1 for email in READERS)


def test_missing_login_on_the_submission_port_blames_nobody(session, settings, tmp_path, postfix_ready):
    """Regression: without AUTH, Postfix's submission service answers each RCPT "554 5.7.1 ... Client host
    rejected: Access denied" (it reports client restrictions at RCPT). That refuses us, not the recipient: the
    send used to suppress every subscriber it tried; now it stops at once, blaming nobody."""
    readers(session, settings, *READERS)
    with postfix(mailboxes=READERS) as mta:
        result = newsletter(tmp_path, through(settings, mta, submission=True, username="", password=""), "send")
        assert result.returncode == 1, result.stdout
        [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert "the server refused mail from us, not the recipient: 554 5.7.1" in error
        assert "Client host rejected: Access denied" in error
        assert suppressed(session) == set()
        assert {d.status for d in deliveries(session).values()} == {"pending"}
        assert all(mta.count_delivered(email) == 0 for email in READERS)


def test_message_over_the_size_limit_fails_clearly_and_suppresses_nobody(session, settings, tmp_path, postfix_ready):
    """Regression: Postfix refuses `MAIL FROM:<...> SIZE=n` over message_size_limit with 552 5.3.4. That used to
    read as a refused envelope sender and stop the whole run; now that one delivery fails with a clear reason,
    its subscriber stays active and the others are delivered."""
    big = "big@inbox.example.com"
    readers(session, settings, READERS[0], big, READERS[1])
    limit = 100_000

    def compose(delivery_id: int, subscriber_id: int, message_id: str) -> bytes:
        email = session.get(Subscriber, subscriber_id).email
        lines = 3000 if email == big else 10  # 3000 lines of 78 bytes: about 234 kB
        return (f"From: Paper Digest <digest@example.org>\r\nTo: {email}\r\nSubject: size\r\n"
                f"Message-ID: {message_id}\r\nMIME-Version: 1.0\r\n\r\n").encode() \
            + (b"x" * 76 + b"\r\n") * lines

    with postfix(mailboxes=[READERS[0], big, READERS[1]], message_size_limit=limit) as mta:
        edition_id = plan_edition(session, today(), settings).edition_id
        session.commit()
        local = through(settings, mta)
        report = send_edition(session, edition_id, local, compose=compose)
        assert (report.sent, report.failed, report.deferred, report.stopped) == (2, 1, 0, "")
        row = deliveries(session)[big]
        assert row.status == "failed"
        assert row.error is not None
        assert row.error.startswith("message too large for the server (")
        assert f"its limit is {limit} bytes): 552 5.3.4 Message size exceeds fixed limit" in row.error
        assert status_of(session, big) == "active"
        assert session.exec(select(Event).where(Event.kind == "bounce")).all() == []
        mta.wait_for_empty_queue(30)
        assert [mta.count_delivered(email) for email in (READERS[0], big, READERS[1])] == [1, 0, 1]


def test_greylisted_recipient_is_deferred_then_delivered_once(session, settings, tmp_path, postfix_ready):
    """A greylisting policy service makes Postfix answer 450 4.7.1 to the first RCPT: the send defers that row
    with backoff, the next run after its retry time sends it, and the reader gets exactly one email."""
    readers(session, settings, READERS[0], GREY)
    with postfix(mailboxes=[READERS[0]], greylisted=[GREY], greylist_delay=0.3) as mta:
        local = through(settings, mta, retry_base_delay=1, retry_max_delay=1)
        first = send_json(tmp_path, local)
        assert (first["sent"], first["deferred"], first["failed"]) == (1, 1, 0)
        assert [e for e in first["errors"] if GREY in e and "450 4.7.1" in e and "Greylisted" in e]
        row = deliveries(session)[GREY]
        assert (row.status, row.attempts, row.next_attempt_at is not None) == ("pending", 1, True)

        time.sleep(1.1)  # the retry time (0.5 to 1 s after the failure) and the greylisting delay have passed
        second = send_json(tmp_path, local)
        assert (second["sent"], second["deferred"], second["failed"]) == (1, 0, 0)
        row = deliveries(session)[GREY]
        assert (row.status, row.attempts) == ("sent", 2)
        mta.wait_for_empty_queue(30)
        [message] = delivered(mta, GREY)
        assert message["Message-ID"] == row.message_id
        assert (mta.policy.attempts[GREY], mta.policy.deferred[GREY]) == (2, 1)
        assert status_of(session, GREY) == "active"
        assert mta.count_delivered(READERS[0]) == 1


def test_starttls_sending_is_not_held_back_by_delayed_acks(settings, postfix_ready):
    """Regression: under TLS a ~60 kB message leaves as four records, one write each; with Nagle's algorithm on,
    each write after the first waited for Postfix's delayed ACK (~40 ms), so STARTTLS sending ran at ~20
    messages/s (plain SMTP: ~250). With TCP_NODELAY 30 messages take well under 40 ms each."""
    message = (b"From: digest@example.org\r\nTo: ada@inbox.example.com\r\nSubject: speed\r\n"
               b"Message-ID: <speed@example.org>\r\n\r\n" + (b"x" * 76 + b"\r\n") * 800)
    with postfix(mailboxes=[READERS[0]]) as mta:
        with SmtpSender(through(settings, mta, submission=True)) as sender:
            sender.send(READERS[0], message, mta.bounce_address)  # connect, STARTTLS and AUTH: not timed
            started = time.perf_counter()
            for _ in range(30):
                sender.send(READERS[0], message, mta.bounce_address)
            elapsed = time.perf_counter() - started
        assert elapsed < 30 * 0.040 / 2, f"30 messages over STARTTLS took {elapsed:.2f} s"
        mta.wait_for_mail([READERS[0]], count=31)


def test_a_recipient_postfix_keeps_returning_is_suppressed_after_three_editions_in_a_row(session, settings,
                                                                                        postfix_ready):
    """Regression: Postfix accepts each edition for SLOW at once and returns it (Action: failed, Status: 4.4.1)
    only when its queue lifetime is over, after it has accepted the next edition. Each acceptance used to reset
    the soft-bounce count, so such an address was never suppressed; now three editions returned in a row are
    NEWSLETTER_SOFT_BOUNCE_LIMIT (3) soft bounces in a row, however the sends and the DSNs interleave."""
    ingest_sample(session)
    for email in (READERS[0], SLOW):
        add_active(session, email, "language models")
    with postfix(mailboxes=[READERS[0]], deferred=[SLOW], queue_lifetime=3) as mta:
        local = through(settings, mta)

        def edition(offset: int) -> None:
            plan = plan_edition(session, today() + timedelta(days=offset), settings)
            session.commit()
            assert send_edition(session, plan.edition_id, local).sent == 2

        def returned(count: int) -> None:
            mta.wait_until(lambda: mta.count_delivered(mta.bounce_address) >= count, 60,
                           f"Postfix to return {count} editions for {SLOW}")
            process_mailbox(session, mta.bounce_maildir, local)

        edition(0)
        edition(1)
        returned(2)
        assert status_of(session, SLOW) == "active"
        edition(2)  # accepted at once by Postfix, as every edition was: no proof it will be delivered
        returned(3)
        assert status_of(session, SLOW) == "bounced"
        bounce = session.exec(select(Event).join(Subscriber).where(Subscriber.email == SLOW,
                                                                  Event.kind == "bounce")).one()
        assert bounce.detail["reason"] == "3 soft bounces in a row" and bounce.detail["status"] == "4.4.1"
        assert status_of(session, READERS[0]) == "active"
        assert mta.count_delivered(READERS[0]) == 3
