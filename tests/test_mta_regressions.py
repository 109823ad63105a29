"""What sending through a real Postfix (tests/test_real_mta.py) showed the SMTP client got wrong, replayed here
against the scripted server so it holds on machines without Postfix too:

- over `message_size_limit` Postfix answers `MAIL FROM:<...> SIZE=n` with "552 5.3.4 Message size exceeds fixed
  limit": that message failed, but the envelope sender is fine (the run goes on) and so is the recipient (not
  suppressed);
- without AUTH, a submission service reports its client restriction at RCPT ("554 5.7.1 <host[ip]>: Client host
  rejected: Access denied"), as it does relay refusals: the server refuses us, so sending stops and no
  recipient is suppressed;
- under TLS each message leaves as several records, one write each, and Nagle's algorithm held every write after
  the first until the server's delayed ACK (~40 ms): STARTTLS sending ran at ~20 messages/s. The client's
  socket now has TCP_NODELAY;
- a relay accepts every edition and returns a DSN only after its queue lifetime, by which time it has accepted
  the next editions: each acceptance reset the soft-bounce count, so soft bounces behind a relay never reached
  NEWSLETTER_SOFT_BOUNCE_LIMIT. The row is now counted over the subscriber's deliveries.
"""

from __future__ import annotations

import mailbox
import socket
from datetime import timedelta

import pytest
from sqlmodel import col, select

from newsletter.clock import today
from newsletter.delivery.bounces import process_mailbox
from newsletter.delivery.envelope import envelope_sender
from newsletter.delivery.send import send_edition
from newsletter.delivery.smtp import MessageTooLarge, PermanentFailure, SenderRejected, SmtpSender
from newsletter.editions import plan_edition
from newsletter.ingest import ingest
from newsletter.models import Delivery, Event, Subscriber
from tests.conftest import FIXTURES
from tests.helpers import add_active, deliveries, ingest_sample, status_of


@pytest.fixture
def settings(settings):
    """The test's settings (conftest) with lexical ranking: these tests are about mail, not the embedding model."""
    return settings.model_copy(update={"semantic": "off"})


def configured(settings, smtp, **extra):
    """Settings pointing at the SMTP server `smtp`, with short timeouts and backoff so the tests stay fast."""
    return settings.model_copy(update={"smtp_host": smtp.host, "smtp_port": smtp.port, "smtp_timeout": 0.5,
                                       "retry_base_delay": 0.05, "retry_max_delay": 0.2, **extra})


def planned(session, settings, *emails) -> int:
    """Today's edition planned for these (new, active) readers from the small fixture corpus; its id."""
    ingest(session, str(FIXTURES / "hf_daily_papers.json"), settings)
    for email in emails:
        add_active(session, email, "language models")
    plan = plan_edition(session, today(), settings)
    session.commit()
    return plan.edition_id


READERS = ("ada@example.org", "grace@example.org", "alan@example.org")
MESSAGE = b"From: digest@example.org\r\nTo: ada@example.org\r\nSubject: hi\r\nMessage-ID: <t@example.org>\r\n\r\nhi\r\n"


def test_size_refused_at_mail_fails_each_message_without_stopping_or_suppressing(session, settings, scripted_smtp):
    edition = planned(session, settings, *READERS)
    scripted_smtp.handler.mail_reply = "552 5.3.4 Message size exceeds fixed limit"
    report = send_edition(session, edition, configured(settings, scripted_smtp))
    assert (report.sent, report.failed, report.stopped) == (0, 3, "")  # not "refused the envelope sender"
    rows = deliveries(session)
    assert all(row.status == "failed" and row.error is not None
               and row.error.startswith("message too large for the server (")
               and row.error.endswith("552 5.3.4 Message size exceeds fixed limit") for row in rows.values())
    assert {status_of(session, email) for email in READERS} == {"active"}
    assert session.exec(select(Event).where(Event.kind == "bounce")).all() == []


def test_size_refused_after_the_content_fails_that_message_only(session, settings, scripted_smtp):
    edition = planned(session, settings, *READERS)
    scripted_smtp.handler.next_data("552 5.3.4 Message size exceeds fixed maximum message size")
    report = send_edition(session, edition, configured(settings, scripted_smtp))
    assert (report.sent, report.failed, report.stopped) == (2, 1, "")
    [failed] = [row for row in deliveries(session).values() if row.status == "failed"]
    assert failed.error is not None
    assert failed.error.startswith("message too large for the server (")
    assert {status_of(session, email) for email in READERS} == {"active"}


def test_too_large_names_the_size_and_the_servers_limit(settings, scripted_smtp):
    scripted_smtp.handler.mail_reply = "552 5.3.4 Message size exceeds fixed limit"
    with SmtpSender(configured(settings, scripted_smtp)) as sender, pytest.raises(MessageTooLarge) as raised:
        sender.send("ada@example.org", MESSAGE)
    assert not raised.value.blames_recipient
    assert str(raised.value) == (f"message too large for the server ({len(MESSAGE) + 3} bytes, its limit is "
                                 f"33554432 bytes): 552 5.3.4 Message size exceeds fixed limit")  # aiosmtpd's SIZE


@pytest.mark.parametrize("reply", [
    "554 5.7.1 <localhost[127.0.0.1]>: Client host rejected: Access denied",
    "554 5.7.1 <ada@example.org>: Relay access denied",
    "530 5.7.0 Authentication required",
    "553 5.7.1 <digest@example.org>: Sender address rejected: not logged in",
])
def test_rcpt_refusal_of_the_client_stops_and_blames_no_recipient(session, settings, scripted_smtp, reply):
    edition = planned(session, settings, *READERS)
    for email in READERS:
        scripted_smtp.handler.refuse_rcpt[email] = reply
    report = send_edition(session, edition, configured(settings, scripted_smtp))
    assert (report.sent, report.failed) == (0, 0)
    assert report.stopped == f"the server refused mail from us, not the recipient: {reply}"
    assert {status_of(session, email) for email in READERS} == {"active"}
    assert {(row.status, row.attempts) for row in deliveries(session).values()} == {("pending", 0)}


def test_a_refused_recipient_is_still_that_recipients_failure(settings, scripted_smtp):
    scripted_smtp.handler.refuse_rcpt["ada@example.org"] = "550 5.1.1 <ada@example.org>: Recipient address " \
                                                           "rejected: User unknown in virtual mailbox table"
    with SmtpSender(configured(settings, scripted_smtp)) as sender:
        with pytest.raises(Exception) as raised:
            sender.send("ada@example.org", MESSAGE)
    assert not isinstance(raised.value, (SenderRejected, MessageTooLarge))
    assert isinstance(raised.value, PermanentFailure)  # the only error with blames_recipient and code
    assert raised.value.blames_recipient and raised.value.code == 550


def test_the_client_socket_does_not_wait_for_acks_between_writes(settings, scripted_smtp):
    with SmtpSender(configured(settings, scripted_smtp)) as sender:
        sender.send("ada@example.org", MESSAGE)
        connection = sender._connection
        assert connection is not None and connection.sock is not None
        assert connection.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def soft_dsn(verp: str, recipient: str, number: int) -> bytes:
    """A relay's DSN for a message it gave up on after its queue lifetime (Postfix words it so: failed, 4.x.x)."""
    return (f"From: Mail Delivery System <MAILER-DAEMON@relay.example.net>\r\nTo: {verp}\r\nDelivered-To: {verp}\r\n"
            f"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn-{number}@relay.example.net>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n"
            "\r\n--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
            "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; relay.example.net\r\n\r\n"
            f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 4.4.1\r\n"
            f"Diagnostic-Code: X-Postfix; connect to {recipient.split('@')[1]}: Connection timed out\r\n"
            "\r\n--B--\r\n").encode()


def test_soft_bounces_in_a_row_suppress_although_the_relay_accepted_each_next_edition(session, settings,
                                                                                      scripted_smtp, tmp_path):
    """A relay accepts every edition at once and returns a DSN only when its queue lifetime is over, days later,
    after it accepted the following editions. Each acceptance used to reset the soft-bounce count, so behind a
    relay NEWSLETTER_SOFT_BOUNCE_LIMIT was never reached. Now the row is counted over the deliveries."""
    ingest_sample(session)
    add_active(session, "far@example.org", "language models")
    local = configured(settings, scripted_smtp, bounce_address="bounces@example.org", verp=True)
    box = mailbox.Maildir(str(tmp_path / "bounces"), create=True)

    def edition(offset: int) -> int:
        plan = plan_edition(session, today() + timedelta(days=offset), settings)
        session.commit()
        assert send_edition(session, plan.edition_id, local).sent == 1  # accepted by the relay
        return deliveries_of(session, plan.edition_id)

    def returned(delivery_id: int) -> None:
        box.add(soft_dsn(envelope_sender(delivery_id, local), "far@example.org", delivery_id))
        process_mailbox(session, tmp_path / "bounces", local)

    first, second = edition(0), edition(1)
    returned(first)
    returned(second)
    third = edition(2)  # accepted: proves nothing about delivery
    assert status_of(session, "far@example.org") == "active"
    returned(third)
    assert status_of(session, "far@example.org") == "bounced"
    counts = [e.detail["count"] for e in session.exec(select(Event).where(Event.kind == "soft_bounce")
                                                       .order_by(col(Event.id)))]
    assert counts == [1, 2, 3]
    assert "3 soft bounces in a row" in session.exec(select(Event).where(Event.kind == "bounce")).one().detail["reason"]


def test_a_delivery_that_never_bounced_ends_the_row(session, settings, scripted_smtp, tmp_path):
    ingest_sample(session)
    add_active(session, "far@example.org", "language models")
    local = configured(settings, scripted_smtp, bounce_address="bounces@example.org", verp=True)
    box = mailbox.Maildir(str(tmp_path / "bounces"), create=True)
    sent = []
    for offset in range(4):
        plan = plan_edition(session, today() + timedelta(days=offset), settings)
        session.commit()
        assert send_edition(session, plan.edition_id, local).sent == 1
        sent.append(deliveries_of(session, plan.edition_id))
    for delivery_id in (sent[0], sent[1], sent[3]):  # the third edition was delivered: no DSN for it
        box.add(soft_dsn(envelope_sender(delivery_id, local), "far@example.org", delivery_id))
    process_mailbox(session, tmp_path / "bounces", local)  # read in whatever order the Maildir lists them
    assert status_of(session, "far@example.org") == "active"
    session.expire_all()
    assert session.exec(select(Subscriber.soft_bounces)).one() in (1, 2)  # depends on the order read; never 3


def deliveries_of(session, edition_id: int) -> int:
    session.expire_all()
    return session.exec(select(Delivery.id).where(Delivery.edition_id == edition_id)).one()
