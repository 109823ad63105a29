"""Returned mail, in the real formats (tests/fixtures/returned/), read from a Maildir or an mbox."""

from __future__ import annotations

import mailbox
import re
from email import message_from_bytes
from email.policy import default
from pathlib import Path

import pytest
from sqlmodel import select

from newsletter.delivery.bounces import process_mailbox
from newsletter.delivery.send import send_edition
from newsletter.errors import InvalidInput
from newsletter.models import Event, Subscriber
from tests.conftest import FIXTURES
from tests.helpers import configured, planned, status_of
from tests.scripted_smtp import ScriptedSmtp

RETURNED = FIXTURES / "returned"
READERS = ("ada@example.org", "grace@example.org", "alan@example.org")


@pytest.fixture
def delivered(session, settings, tmp_path):
    """Each reader got one message (sent with VERP); returns (settings, {address: envelope at the server})."""
    with ScriptedSmtp(tmp_path / "scripted") as smtp:
        local = configured(settings, smtp, bounce_address="bounces@example.org", verp=True)
        edition = planned(session, settings, *READERS)
        assert send_edition(session, edition, local).sent == 3
    return local, {e.rcpt_tos[0]: e for e in smtp.handler.accepted}


def returned(name: str, envelope, **changes) -> bytes:
    """A fixture filled in for one delivered message."""
    original = envelope.original_content.replace(b"\r\n", b"\n").decode()
    message = message_from_bytes(envelope.original_content, policy=default)
    token = re.search(r"/unsubscribe/([^>]+)>", message["List-Unsubscribe"])
    assert token is not None, message["List-Unsubscribe"]
    values = {
        "VERP": envelope.mail_from,
        "RECIPIENT": envelope.rcpt_tos[0],
        "ORIGINAL_HEADERS": original.split("\n\n", 1)[0] + "\n",
        "ORIGINAL_MESSAGE": original,
        "TOKEN": token.group(1),
        **changes,
    }
    text = (RETURNED / name).read_text()
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text.encode()


def maildir(tmp_path: Path, *messages: bytes) -> Path:
    box = mailbox.Maildir(str(tmp_path / "Maildir"), create=True)
    for raw in messages:
        box.add(raw)
    return tmp_path / "Maildir"


def mbox(tmp_path: Path, *messages: bytes) -> Path:
    box = mailbox.mbox(str(tmp_path / "returned.mbox"), create=True)
    for raw in messages:
        box.add(raw)
    box.flush()
    return tmp_path / "returned.mbox"


def events(session, kind):
    session.expire_all()
    return session.exec(select(Event).where(Event.kind == kind)).all()


def test_hard_bounce_dsn_suppresses_the_address_matched_by_verp(session, delivered, tmp_path):
    local, sent = delivered
    path = maildir(tmp_path, returned("dsn-hard-user-unknown.eml", sent["ada@example.org"]))
    report = process_mailbox(session, path, local)
    assert (report.messages, report.hard_bounces, report.suppressed, report.unmatched) == (1, 1, 1, 0)
    assert status_of(session, "ada@example.org") == "bounced"
    [bounce] = events(session, "bounce")
    detail = bounce.detail
    assert (detail["status"], detail["matched_by"], detail["action"]) == ("5.1.1", "verp", "failed")
    assert "User unknown" in bounce.detail["diagnostic"]
    assert {status_of(session, e) for e in READERS[1:]} == {"active"}


def test_arf_complaint_suppresses_the_address_matched_by_message_id(session, delivered, tmp_path):
    local, sent = delivered
    path = mbox(tmp_path, returned("arf-abuse-complaint.eml", sent["grace@example.org"]))
    report = process_mailbox(session, path, local)
    assert (report.complaints, report.suppressed) == (1, 1)
    assert status_of(session, "grace@example.org") == "complained"
    [complaint] = events(session, "complaint")
    assert (complaint.detail["feedback_type"], complaint.detail["matched_by"]) == ("abuse", "message-id")


def test_soft_bounces_count_until_the_threshold_suppresses(session, delivered, tmp_path):
    local, sent = delivered
    soft = [returned("dsn-soft-mailbox-full.eml", sent["alan@example.org"]).replace(
        b"E1tFzQe-00071b-2J@", f"E1tFzQe-0000{n}@".encode()) for n in range(3)]
    path = maildir(tmp_path, *soft[:2])
    assert process_mailbox(session, path, local).soft_bounces == 2
    subscriber = session.exec(select(Subscriber).where(Subscriber.email == "alan@example.org")).one()
    session.refresh(subscriber)
    assert (subscriber.soft_bounces, subscriber.status) == (2, "active")
    mailbox.Maildir(str(path)).add(soft[2])
    report = process_mailbox(session, path, local)
    assert (report.soft_bounces, report.already_processed, report.suppressed) == (1, 2, 1)
    assert status_of(session, "alan@example.org") == "bounced"
    assert [e.detail["count"] for e in events(session, "soft_bounce")] == [1, 2, 3]
    assert "3 soft bounces in a row" in events(session, "bounce")[0].detail["reason"]


def test_delayed_warning_changes_nothing(session, delivered, tmp_path):
    local, sent = delivered
    report = process_mailbox(session, maildir(tmp_path, returned("dsn-delayed.eml", sent["ada@example.org"])), local)
    assert (report.ignored, report.hard_bounces, report.soft_bounces) == (1, 0, 0)
    assert status_of(session, "ada@example.org") == "active"


def test_mailto_unsubscribe_message_unsubscribes(session, delivered, tmp_path):
    local, sent = delivered
    report = process_mailbox(session, mbox(tmp_path, returned("mailto-unsubscribe.eml", sent["ada@example.org"])),
                             local)
    assert (report.unsubscribes, report.suppressed) == (1, 1)
    assert status_of(session, "ada@example.org") == "unsubscribed"
    assert events(session, "unsubscribe")[0].detail["source"] == "mailto"


def test_forged_unsubscribe_token_does_nothing(session, delivered, tmp_path):
    local, sent = delivered
    forged = returned("mailto-unsubscribe.eml", sent["ada@example.org"], TOKEN="eyJzIjoxfQ.aaaa.bbbb")
    report = process_mailbox(session, maildir(tmp_path, forged), local)
    assert (report.unsubscribes, report.ignored) == (0, 1)
    assert status_of(session, "ada@example.org") == "active"


def test_without_verp_a_dsn_is_matched_by_message_id_then_by_headers(session, delivered, tmp_path):
    local, sent = delivered
    by_message_id = returned("dsn-hard-user-unknown.eml", sent["ada@example.org"], VERP="bounces@example.org")
    headers = returned("dsn-hard-user-unknown.eml", sent["grace@example.org"], VERP="bounces@example.org")
    headers = re.sub(rb"Message-ID: <edition-[^>]+>", b"Message-ID: <rewritten@relay.example.net>", headers)
    assert b"rewritten@relay" in headers
    report = process_mailbox(session, maildir(tmp_path, by_message_id, headers), local)
    assert report.hard_bounces == 2
    assert sorted(e.detail["matched_by"] for e in events(session, "bounce")) == ["list-unsubscribe", "message-id"]
    assert {status_of(session, e) for e in READERS[:2]} == {"bounced"}


def test_forged_verp_address_is_not_trusted(session, delivered, tmp_path):
    local, sent = delivered
    envelope = sent["ada@example.org"]
    forged_verp = re.sub(r"-[a-z2-7]{10}@", "-aaaaaaaaaa@", envelope.mail_from)
    raw = returned("dsn-hard-user-unknown.eml", envelope, VERP=forged_verp, RECIPIENT="stranger@example.net",
                   ORIGINAL_HEADERS="From: someone@example.net\nTo: stranger@example.net\nSubject: hi\n")
    report = process_mailbox(session, maildir(tmp_path, raw), local)
    assert (report.hard_bounces, report.unmatched) == (0, 1)
    assert {status_of(session, e) for e in READERS} == {"active"}


def test_not_a_mailbox_is_a_clear_error(session, settings, tmp_path):
    (tmp_path / "plain.txt").write_text("hello")
    for path in (tmp_path / "missing", tmp_path / "plain.txt", tmp_path):
        with pytest.raises(InvalidInput):
            process_mailbox(session, path, settings)


def test_cli_processes_a_maildir_and_reports(session, delivered, tmp_path, cli):
    local, sent = delivered
    path = maildir(tmp_path, returned("dsn-hard-user-unknown.eml", sent["ada@example.org"]),
                   returned("mailto-unsubscribe.eml", sent["grace@example.org"]))
    result = cli("bounces", "process", path, settings_override=local)
    assert result.exit_code == 0, result.output
    assert "hard bounces" in result.output
    assert status_of(session, "ada@example.org") == "bounced"
    assert status_of(session, "grace@example.org") == "unsubscribed"
    again = cli("bounces", "process", path, settings_override=local)
    assert again.exit_code == 0 and status_of(session, "ada@example.org") == "bounced"
    missing = cli("bounces", "process", tmp_path / "nothing", settings_override=local)
    assert missing.exit_code == 1 and "no such Maildir or mbox" in missing.output
