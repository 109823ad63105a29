"""Returned mail: RFC 3464 delivery-status reports, RFC 5965 (ARF) complaints and mailto: unsubscribes.

`process_mailbox(session, path, settings)` reads a Maildir or an mbox and, for each message:

- a DSN whose recipient failed with a 5.x.x status is a hard bounce (address suppressed); a failure with a
  4.x.x status is a soft bounce (counted; `soft_bounce_limit` in a row suppress the address); "delayed",
  "delivered", "relayed" and "expanded" reports change nothing;
- an ARF report (Feedback-Type abuse, fraud or virus) is a complaint (address suppressed);
- a message carrying one of our signed unsubscribe tokens in its subject or body (the mailto: target of
  List-Unsubscribe) unsubscribes its subscriber.

A report is matched to its delivery by, in order: our signed VERP bounce address (the report's recipient
headers), our Message-ID in the returned original message, then the original's headers (the List-Unsubscribe
token, the To address) or the DSN's Final-/Original-Recipient. Each handled message is recorded in an Event with
a digest of its bytes, so processing the same mailbox again changes nothing.
"""

from __future__ import annotations

import hashlib
import mailbox
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage as Message  # what the default policy parses into
from email.parser import BytesHeaderParser, HeaderParser
from email.policy import default
from email.utils import getaddresses
from pathlib import Path

from sqlmodel import Session, col, select

from newsletter.config import Settings
from newsletter.delivery.envelope import delivery_from_bounce_address
from newsletter.delivery.message import delivery_of_message_id
from newsletter.delivery.suppression import record_complaint, record_hard_bounce, record_soft_bounce
from newsletter.errors import BadToken, InvalidInput
from newsletter.models import Delivery, Event, Subscriber
from subscribers.consent import subscriber_for_token, unsubscribe
from subscribers.profiles import find_subscriber

RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To")
COMPLAINT_TYPES = {"abuse", "fraud", "virus"}
HANDLED_KINDS = ("bounce", "soft_bounce", "complaint", "unsubscribe", "report_ignored")
_UNSUBSCRIBE_TOKEN = re.compile(r"unsubscribe\s+([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)", re.I)
_TOKEN_IN_URL = re.compile(r"/unsubscribe/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)")
_STATUS = re.compile(r"\b([245])\.\d{1,3}\.\d{1,3}\b")


@dataclass
class BounceReport:
    messages: int = 0
    hard_bounces: int = 0
    soft_bounces: int = 0
    complaints: int = 0
    unsubscribes: int = 0
    suppressed: int = 0  # addresses newly suppressed by this run
    ignored: int = 0  # reports that change nothing (delayed, delivered, not-spam) and other mail
    unmatched: int = 0  # reports we could not tie to a subscriber of ours
    already_processed: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class Finding:
    kind: str  # hard | soft | complaint | unsubscribe | ignored
    detail: dict
    subscriber: Subscriber | None = None


def read_mailbox(path: Path) -> Iterator[tuple[str, bytes]]:
    """(key, raw bytes) of each message in a Maildir (a folder with cur/ and new/) or an mbox file."""
    if path.is_dir():
        if not (path / "cur").is_dir() and not (path / "new").is_dir():
            raise InvalidInput(f"{path} is a folder but not a Maildir (no cur/ or new/)")
        box: mailbox.Mailbox = mailbox.Maildir(str(path), factory=None, create=False)
    elif path.is_file():
        with path.open("rb") as handle:
            if not handle.read(5) == b"From ":
                raise InvalidInput(f"{path} is not an mbox file (it does not start with a 'From ' line)")
        box = mailbox.mbox(str(path), factory=None, create=False)
    else:
        raise InvalidInput(f"{path}: no such Maildir or mbox")
    for key in box.keys():
        yield str(key), box.get_bytes(key)


def process_mailbox(session: Session, path: Path, settings: Settings) -> BounceReport:
    report = BounceReport()
    seen = _processed_digests(session)
    for key, raw in read_mailbox(Path(path)):
        report.messages += 1
        digest = hashlib.sha256(raw).hexdigest()[:24]
        if digest in seen:
            report.already_processed += 1
            continue
        seen.add(digest)
        try:
            finding = classify(session, message_from_bytes(raw, policy=default), settings)
        except Exception as error:  # a malformed message must not stop the rest of the mailbox
            report.problems.append(f"{key}: cannot parse: {error.__class__.__name__}: {error}")
            continue
        _apply(session, finding, digest, settings, report)
        session.commit()
    return report


def classify(session: Session, message: Message, settings: Settings) -> Finding:
    report_type = message.get_param("report-type", "", header="content-type")
    if message.get_content_type() == "multipart/report" and str(report_type).lower() == "delivery-status":
        return _classify_dsn(session, message, settings)
    if message.get_content_type() == "multipart/report" and str(report_type).lower() == "feedback-report":
        return _classify_arf(session, message, settings)
    return _classify_unsubscribe(session, message, settings)


def _classify_dsn(session: Session, message: Message, settings: Settings) -> Finding:
    blocks = _delivery_status_blocks(message)
    recipients = [b for b in blocks[1:] if b.get("Action")] or blocks[1:]
    if not recipients:
        return Finding("ignored", {"source": "dsn", "reason": "no per-recipient fields"})
    original = _original_headers(message)
    subscriber, matched_by, delivery_id = _match(session, message, original, settings,
                                                 [_address(b.get("Final-Recipient")) for b in recipients]
                                                 + [_address(b.get("Original-Recipient")) for b in recipients])
    block = next((b for b in recipients if subscriber and _address(b.get("Final-Recipient")) == subscriber.email),
                 recipients[0])
    action = str(block.get("Action", "")).strip().lower()
    status = _status_code(block)
    detail = {"source": "dsn", "action": action, "status": status, "matched_by": matched_by,
              "delivery_id": delivery_id, "diagnostic": _one_line(block.get("Diagnostic-Code", ""))}
    if action != "failed":
        return Finding("ignored", {**detail, "reason": f"action {action or 'missing'}"}, subscriber)
    return Finding("hard" if status.startswith("5") else "soft", detail, subscriber)


def _classify_arf(session: Session, message: Message, settings: Settings) -> Finding:
    fields = _feedback_fields(message)
    feedback_type = str(fields.get("Feedback-Type", "")).strip().lower()
    original = _original_headers(message)
    candidates = [_address(fields.get("Original-Rcpt-To"))]
    subscriber, matched_by, delivery_id = _match(session, message, original, settings, candidates,
                                                 fields.get("Original-Mail-From"))
    detail = {"source": "arf", "feedback_type": feedback_type, "matched_by": matched_by,
              "delivery_id": delivery_id, "user_agent": _one_line(fields.get("User-Agent", ""))}
    if feedback_type in COMPLAINT_TYPES:
        return Finding("complaint", detail, subscriber)
    return Finding("ignored", {**detail, "reason": f"feedback type {feedback_type or 'missing'}"}, subscriber)


def _classify_unsubscribe(session: Session, message: Message, settings: Settings) -> Finding:
    """A mailto: unsubscribe: our signed token in the subject (as the mailto: URL sets it) or in the body."""
    texts = [str(message.get("Subject", ""))]
    body = message.get_body(preferencelist=("plain",)) if message.is_multipart() else message
    if body is not None and body.get_content_maintype() == "text":
        texts.append(body.get_content()[:20000])
    for text in texts:
        for token in _UNSUBSCRIBE_TOKEN.findall(text):
            subscriber = _subscriber_for_token(session, token, settings)
            if subscriber is not None:
                return Finding("unsubscribe", {"source": "mailto", "from": _one_line(str(message.get("From", "")))},
                               subscriber)
    return Finding("ignored", {"source": "mail", "reason": "not a report and no valid unsubscribe token"})


def _match(session: Session, message: Message, original: Message | None, settings: Settings,
           recipient_addresses: list[str], original_mail_from: str | None = None
           ) -> tuple[Subscriber | None, str | None, int | None]:
    """(subscriber, how it was matched, delivery id) for a report, or (None, None, None)."""
    verp_candidates = [a for h in RECIPIENT_HEADERS for _, a in getaddresses(message.get_all(h, []))]
    if original is not None:
        verp_candidates += [_address(original.get("Return-Path"))]
    verp_candidates.append(_address(original_mail_from))
    for address in filter(None, verp_candidates):
        delivery_id = delivery_from_bounce_address(address, settings)
        if delivery_id is not None and (delivery := session.get(Delivery, delivery_id)) is not None:
            return session.get(Subscriber, delivery.subscriber_id), "verp", delivery_id
    if original is not None:
        found = delivery_of_message_id(str(original.get("Message-ID", "")))
        if found:
            delivery = session.get(Delivery, found[0])
            if delivery is not None and delivery.message_id == found[1]:
                return session.get(Subscriber, delivery.subscriber_id), "message-id", delivery.id
        for token in _TOKEN_IN_URL.findall(str(original.get("List-Unsubscribe", ""))):
            subscriber = _subscriber_for_token(session, token, settings)
            if subscriber is not None:
                return subscriber, "list-unsubscribe", None
        recipient_addresses = [_address(original.get("To"))] + recipient_addresses
    for address in filter(None, recipient_addresses):
        subscriber = find_subscriber(session, address)
        if subscriber is not None:
            return subscriber, "address", None
    return None, None, None


def _apply(session: Session, finding: Finding, digest: str, settings: Settings, report: BounceReport) -> None:
    detail = {**finding.detail, "report": digest}
    subscriber = finding.subscriber
    if finding.kind == "ignored":
        report.ignored += 1
        session.add(Event(subscriber_id=subscriber.id if subscriber else None, kind="report_ignored", detail=detail))
        return
    if subscriber is None:
        report.unmatched += 1
        report.problems.append(f"{finding.kind} report matched no subscriber ({detail.get('source')})")
        session.add(Event(kind="report_ignored", detail={**detail, "reason": "unmatched"}))
        return
    was_suppressed = subscriber.status in ("bounced", "complained", "unsubscribed")
    if finding.kind == "hard":
        report.hard_bounces += 1
        record_hard_bounce(session, subscriber, detail)
    elif finding.kind == "soft":
        report.soft_bounces += 1
        record_soft_bounce(session, subscriber, detail, settings.soft_bounce_limit)
    elif finding.kind == "complaint":
        report.complaints += 1
        record_complaint(session, subscriber, detail)
    elif finding.kind == "unsubscribe":
        if unsubscribe(session, subscriber, **detail):
            report.unsubscribes += 1
        else:  # already unsubscribed: keep the digest so the message counts as processed next time
            report.ignored += 1
            session.add(Event(subscriber_id=subscriber.id, kind="report_ignored",
                              detail={**detail, "reason": "already unsubscribed"}))
    report.suppressed += not was_suppressed and subscriber.status != "active"


def _processed_digests(session: Session) -> set[str]:
    details = session.exec(select(Event.detail).where(col(Event.kind).in_(HANDLED_KINDS))).all()
    return {d["report"] for d in details if isinstance(d, dict) and d.get("report")}


def _subscriber_for_token(session: Session, token: str, settings: Settings) -> Subscriber | None:
    try:
        return subscriber_for_token(session, "unsubscribe", token, settings)[0]
    except BadToken:
        return None


def _delivery_status_blocks(message: Message) -> list[Message]:
    """The field groups of the message/delivery-status part: per-message first, then one per recipient."""
    for part in message.walk():
        if part.get_content_type() == "message/delivery-status":
            payload = part.get_payload()
            if isinstance(payload, list):
                return [block for block in payload if isinstance(block, Message)]
            return [HeaderParser(policy=default).parsestr(group)
                    for group in re.split(r"\r?\n\s*\r?\n", str(payload)) if group]
    return []


def _feedback_fields(message: Message) -> Message:
    for part in message.walk():
        if part.get_content_type() == "message/feedback-report":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
            return HeaderParser(policy=default).parsestr(str(payload))
    return Message()


def _original_headers(message: Message) -> Message | None:
    """The returned original (message/rfc822, or only its headers as text/rfc822-headers)."""
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type == "message/rfc822":
            payload = part.get_payload()
            return payload[0] if isinstance(payload, list) and payload and isinstance(payload[0], Message) else None
        if content_type == "text/rfc822-headers":
            raw = part.get_payload(decode=True)
            return BytesHeaderParser(policy=default).parsebytes(
                raw if isinstance(raw, bytes) else b"")
    return None


def _status_code(block: Message) -> str:
    for value in (block.get("Status", ""), block.get("Diagnostic-Code", "")):
        found = _STATUS.search(str(value))
        if found:
            return found.group(0)
    return ""


def _address(value) -> str:
    """The address of "rfc822; a@b", "<a@b>" or "Name <a@b>", lowercased; empty when there is none."""
    if not value:
        return ""
    text = str(value).split(";", 1)[-1].strip()
    return (getaddresses([text])[0][1] or "").lower()


def _one_line(value, limit: int = 300) -> str:
    return " ".join(str(value).split())[:limit]
