"""The hand-written MIME message: what the `email` package parses back, byte rules, and header safety."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default

import pytest

from newsletter.config import Settings
from newsletter.delivery.mime import build_message, display_address
from newsletter.errors import InvalidInput
from newsletter.render import RenderedEmail, render_edition
from tests.helpers import html_part, text_part
from tests.support.samples import worst_case_edition

LIST_HEADERS = {
    "List-Unsubscribe": "<https://digest.example.org/unsubscribe/eyJzIjoxLCJlIjoiMTRhYzhhNTc1NjY4In0.awcS1w.80K1bYY5>",
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    "List-Id": "Paper Digest <digest.example.org>",
    "Precedence": "bulk",
}


@pytest.fixture(scope="module")
def rendered() -> RenderedEmail:
    settings = Settings(secret_key="mime-tests", base_url="https://digest.example.org", _env_file=None)
    return render_edition(**worst_case_edition(settings))


def build(rendered: RenderedEmail, **overrides) -> bytes:
    arguments = {"sender": "Paper Digest <digest@example.org>", "to": "reader1@example.org",
                 "message_id": "<edition-1.delivery-1@example.org>", "extra_headers": LIST_HEADERS,
                 "when": datetime(2026, 11, 25, 7, 0, tzinfo=UTC), **overrides}
    return build_message(rendered, **arguments)


def parse(raw: bytes):
    return message_from_bytes(raw, policy=default)


def lf(text: str) -> str:
    """Line breaks as the email package returns them after decoding, whatever they were."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def assert_wire_format(raw: bytes) -> None:
    assert b"\n" not in raw.replace(b"\r\n", b"") and b"\r" not in raw.replace(b"\r\n", b""), "CRLF only"
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert raw.isascii() and b"\0" not in raw
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert all(line[:1] in b" \t" or b":" in line for line in head.split(b"\r\n")), "every header line is a header"


def test_the_email_package_reads_back_both_parts_exactly(rendered):
    raw = build(rendered)
    assert_wire_format(raw)
    message = parse(raw)
    assert not message.defects and all(not part.defects for part in message.walk())
    assert message.get_content_type() == "multipart/alternative" and message["MIME-Version"] == "1.0"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert lf(text_part(message)).rstrip("\n") == lf(rendered.text).rstrip("\n")
    assert lf(html_part(message)).rstrip("\n") == lf(rendered.html).rstrip("\n")
    assert message["Subject"] == rendered.subject
    assert message["From"] == "Paper Digest <digest@example.org>" and message["To"] == "reader1@example.org"
    assert message["Date"] == "Wed, 25 Nov 2026 07:00:00 +0000"
    assert message["Message-ID"] == "<edition-1.delivery-1@example.org>"
    for name, value in LIST_HEADERS.items():
        assert message[name] == value


def test_transfer_encodings_fit_the_content(rendered):
    message = parse(build(rendered))
    text, html = message.iter_parts()
    assert html["Content-Transfer-Encoding"] == "7bit"  # ASCII, short lines: no encoding at all
    assert text["Content-Transfer-Encoding"] == "base64"  # the text part holds UTF-8 (李明, ▲, …)
    assert text.get_content_charset() == html.get_content_charset() == "utf-8"
    ascii_text = RenderedEmail("s", "<p>hi</p>", "plain ASCII\r\nlines\r\n")
    assert parse(build(ascii_text)).get_body(("plain",))["Content-Transfer-Encoding"] == "7bit"


@pytest.mark.parametrize("text", [
    "x" * 5000,  # one line longer than 998 octets
    "bare\nLF and bare\rCR and\r\nCRLF",
    "a NUL \0 byte",
    "naïve — résumé",
    "",
])
def test_any_body_is_encoded_correctly(text):
    raw = build(RenderedEmail("Subject", f"<p>{text}</p>", text))
    assert_wire_format(raw)
    message = parse(raw)
    assert lf(text_part(message)).rstrip("\n") == lf(text).rstrip("\n")


def test_non_ascii_subject_and_names_are_rfc2047_encoded():
    subject = "10 papers for you: u-μP — 李明's “Scaling” " + "long " * 40
    raw = build(RenderedEmail(subject, "<p>x</p>", "x"), to="Zoë Müller-Lüdenscheidt <zoe@example.org>",
                sender="Paper Digest · Daily <digest@example.org>")
    assert_wire_format(raw)
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    encoded = [line for line in head.split("\r\n") if "=?utf-8?b?" in line]
    assert len(encoded) >= 4 and all(len(line) <= 78 for line in encoded)
    message = parse(raw)
    assert message["Subject"] == " ".join(subject.split())[:199] + "…"
    assert message["To"].addresses[0].display_name == "Zoë Müller-Lüdenscheidt"
    assert message["To"].addresses[0].addr_spec == "zoe@example.org"
    assert message["From"].addresses[0].display_name == "Paper Digest · Daily"


def test_ascii_names_with_specials_are_quoted():
    raw = build(RenderedEmail("s", "<p>x</p>", "x"), to=display_address('Doe, Jane "JD"', "jane@example.org"))
    address = parse(raw)["To"].addresses[0]
    assert (address.display_name, address.addr_spec) == ('Doe, Jane "JD"', "jane@example.org")


@pytest.mark.parametrize("field", ["subject", "to", "sender", "extra"])
def test_no_value_can_inject_a_header(field):
    evil = "Hello\r\nBcc: victim@example.org\r\n\r\n<script>"
    overrides: dict[str, dict[str, object]] = {
        "subject": {},
        "to": {"to": "Eve\r\nBcc: victim@example.org <eve@example.org>"},
        "sender": {"sender": "Paper Digest\nBcc: victim@example.org <digest@example.org>"},
        "extra": {"extra_headers": {"X-Campaign": evil, "List-Id": "a\rb\x0bc <d.example.org>"}},
    }
    raw = build(RenderedEmail(evil if field == "subject" else "Subject", "<p>x</p>", "x"), **overrides[field])
    assert_wire_format(raw)
    message = parse(raw)
    assert "Bcc" not in message and not message.defects
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert not any(line.lower().startswith(b"bcc") for line in head.split(b"\r\n"))


def test_headers_it_writes_itself_cannot_be_overridden():
    for name in ("Content-Type", "MIME-Version", "Content-Transfer-Encoding", "Bad Name", "X-Ünïcode"):
        with pytest.raises(InvalidInput):
            build(RenderedEmail("s", "<p>x</p>", "x"), extra_headers={name: "value"})


def test_internationalized_addresses_go_out_as_the_wire_needs_them():
    """A non-ASCII domain in its IDNA form; a non-ASCII local part as UTF-8 (RFC 6532: sent with SMTPUTF8)."""
    head = build(RenderedEmail("s", "<p>x</p>", "x"), to="Jörg <user@bücher.example>").split(b"\r\n\r\n")[0]
    assert b"To: =?utf-8?b?SsO2cmc=?= <user@xn--bcher-kva.example>\r\n" in head and head.isascii()
    raw = build(RenderedEmail("s", "<p>x</p>", "x"), to="李明@example.org")
    assert "To: 李明@example.org\r\n".encode() in raw and parse(raw)["To"] == "李明@example.org"
    with pytest.raises(InvalidInput, match="internationalized domain"):
        build(RenderedEmail("s", "<p>x</p>", "x"), to="user@bücher..example")


def test_the_boundary_never_occurs_in_a_body(rendered):
    message = parse(build(rendered))
    boundary = message.get_boundary()
    assert boundary.startswith("=_") and boundary not in rendered.html and boundary not in rendered.text
    assert build(rendered) != build(rendered)  # a fresh boundary per message


def test_a_subscriber_name_goes_into_the_to_header(settings, rendered):
    from newsletter.delivery.message import message_bytes
    from newsletter.models import Subscriber, SubscriberStatus

    settings = Settings(secret_key="mime-tests", base_url="https://digest.example.org", _env_file=None)
    subscriber = Subscriber(id=7, email="li.ming@example.org", name="李明 (Li, Ming)", status=SubscriberStatus.active)
    message = parse(message_bytes(rendered, subscriber, "<m@example.org>", settings))
    address = message["To"].addresses[0]
    assert (address.display_name, address.addr_spec) == ("李明 (Li, Ming)", "li.ming@example.org")
