"""What Gmail and Yahoo check on bulk mail: unsubscribe targets with signed tokens, the bounce address, DKIM."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from email import message_from_bytes
from email.policy import default
from urllib.parse import unquote, urlsplit

import pytest
from sqlmodel import select

from newsletter.delivery.envelope import delivery_from_bounce_address, envelope_sender
from newsletter.delivery.send import send_edition
from newsletter.errors import DeliveryError
from newsletter.models import Delivery
from subscribers.tokens import read_token
from tests.conftest import service_unavailable
from tests.helpers import configured, planned


def sent_one(session, settings, scripted_smtp, **extra):
    edition = planned(session, settings, "ada@example.org")
    report = send_edition(session, edition, configured(settings, scripted_smtp, **extra))
    assert report.sent == 1, report.errors
    return scripted_smtp.handler.accepted[0], session.exec(select(Delivery)).one()


def test_list_unsubscribe_has_https_and_mailto_each_with_the_recipients_token(session, settings, scripted_smtp):
    envelope, delivery = sent_one(session, settings, scripted_smtp)
    message = message_from_bytes(envelope.original_content, policy=default)
    targets = re.findall(r"<([^>]+)>", message["List-Unsubscribe"])
    https, mailto = targets
    assert https.startswith("https://digest.example.org/unsubscribe/")
    assert mailto.startswith("mailto:unsubscribe@example.org?subject=unsubscribe%20")
    for token in (https.rsplit("/", 1)[1], unquote(urlsplit(mailto).query).split(" ", 1)[1]):
        assert read_token("unsubscribe", token, settings)["s"] == delivery.subscriber_id
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Id"] == "Paper Digest <digest.example.org>" and message["Precedence"] == "bulk"
    expected = f"<edition-{delivery.edition_id}.delivery-{delivery.id}.{delivery.message_key}@example.org>"
    assert message["Message-ID"] == delivery.message_id == expected
    assert envelope.mail_from == "digest@example.org"


def test_configured_unsubscribe_mailbox_and_bounce_address(session, settings, scripted_smtp):
    envelope, _ = sent_one(session, settings, scripted_smtp, unsubscribe_mailbox="leave@lists.example.org",
                           bounce_address="bounces@lists.example.org")
    message = message_from_bytes(envelope.original_content, policy=default)
    assert "<mailto:leave@lists.example.org?subject=unsubscribe%20" in message["List-Unsubscribe"]
    assert envelope.mail_from == "bounces@lists.example.org"


def test_verp_bounce_address_names_the_delivery_and_is_signed(session, settings, scripted_smtp):
    envelope, delivery = sent_one(session, settings, scripted_smtp, bounce_address="bounces@example.org", verp=True)
    local = settings.model_copy(update={"bounce_address": "bounces@example.org", "verp": True})
    assert re.fullmatch(r"bounces\+d\d+-[a-z2-7]{10}@example\.org", envelope.mail_from)
    assert len(envelope.mail_from.split("@")[0]) <= 64
    assert delivery_from_bounce_address(envelope.mail_from, local) == delivery.id
    assert delivery_from_bounce_address(envelope.mail_from.upper(), local) == delivery.id  # case folded in transit
    forged = envelope_sender(delivery.id + 1, local).replace(f"d{delivery.id + 1}-", f"d{delivery.id}-")
    assert delivery_from_bounce_address(forged, local) is None
    other_key = local.model_copy(update={"secret_key": "another-key"})
    assert delivery_from_bounce_address(envelope.mail_from, other_key) is None


@pytest.fixture(scope="module")
def dkim_key(tmp_path_factory):
    if not shutil.which("openssl"):
        service_unavailable("openssl is needed to make a test key (apt-get install openssl)")
    folder = tmp_path_factory.mktemp("dkim")
    key = folder / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    public = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"], check=True,
                            capture_output=True).stdout
    return key, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def test_dkim_signature_verifies_and_covers_the_bulk_headers(session, settings, scripted_smtp, dkim_key):
    import dkim

    key, record = dkim_key
    envelope, _ = sent_one(session, settings, scripted_smtp, dkim_key_path=key, dkim_selector="mail2026")
    raw = envelope.original_content
    looked_up = []

    def dns(name, timeout=5):
        looked_up.append(name)
        return record if name == b"mail2026._domainkey.example.org." else None

    assert dkim.verify(raw, dnsfunc=dns)
    assert looked_up == [b"mail2026._domainkey.example.org."]
    signature = message_from_bytes(raw, policy=default)["DKIM-Signature"]
    tags = re.search(r"h=([^;]+)", signature.replace("\r\n", ""))
    assert tags is not None, signature
    signed = {h.strip().lower() for h in tags.group(1).split(":")}
    assert {"from", "to", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post"} <= signed

    changed = raw.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: nothing")
    assert not dkim.verify(changed, dnsfunc=dns)
    added = raw.replace(b"\r\n\r\n", b"\r\nList-Unsubscribe: <https://evil.example/>\r\n\r\n", 1)
    assert not dkim.verify(added, dnsfunc=dns)  # oversigned: an added header breaks the signature


def test_unreadable_dkim_key_fails_before_anything_is_claimed(session, settings, scripted_smtp, tmp_path):
    edition = planned(session, settings, "ada@example.org")
    with pytest.raises(DeliveryError, match="cannot read the DKIM key"):
        send_edition(session, edition, configured(settings, scripted_smtp, dkim_key_path=tmp_path / "missing.pem",
                                                  dkim_selector="s"))
    assert session.exec(select(Delivery.status)).one() == "pending"


def test_dkim_canonicalization_survives_awkward_whitespace(dkim_key):
    """Our signer against dkimpy's verifier on messages a template would never produce: folded headers, tabs,
    runs of spaces, trailing whitespace, empty lines at the end, no final line break, an empty body."""
    import dkim

    from newsletter.delivery.dkim_sign import _private_key, signature_header

    key, record = dkim_key
    head = (b"From: Ada  Lovelace <ada@example.org>\r\nTo:\tgrace@example.org \r\nSubject: a long\r\n\tfolded  subject"
            b"\r\nDate: Wed, 25 Nov 2026 07:00:00 +0000\r\nMessage-ID: <m1@example.org>\r\n"
            b"List-Unsubscribe: <https://example.org/u/1>\r\n")
    bodies = [b"plain\r\n", b"trailing spaces   \r\n\ttabbed\tline \r\n\r\n\r\n", b"no final  break", b"",
              b"=_boundary\r\n" + b"QUJD" * 19 + b"\r\n"]
    for body in bodies:
        message = head + b"\r\n" + body
        signed = signature_header(message, b"s1", b"example.org", _private_key(key)) + message
        assert dkim.verify(signed, dnsfunc=lambda name, timeout=5: record), body
        tampered = signed.replace(b"Subject: a long", b"Subject: a LONG")
        assert not dkim.verify(tampered, dnsfunc=lambda n, timeout=5: record)


def test_a_dkim_key_that_is_not_rsa_or_not_a_key_is_refused_clearly(tmp_path):
    from newsletter.delivery.dkim_sign import _private_key

    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n")
    with pytest.raises(DeliveryError, match="not a usable private key"):
        _private_key(garbage)
    if shutil.which("openssl"):
        ed25519 = tmp_path / "ed25519.pem"
        subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(ed25519)], check=True,
                       capture_output=True)
        with pytest.raises(DeliveryError, match="not an RSA key"):
            _private_key(ed25519)
