"""SpamAssassin's verdict on a real edition sent with production-like settings: a real domain, DKIM-signed, https
links, a real postal address. Local rules only (`spamassassin -L`: no network tests, no DNS), from Debian's
`spamassassin` package, which scripts/setup.sh installs when missing. Missing, the test skips (fails under CI).
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from newsletter.clock import today
from newsletter.jobs import run_daily
from tests.conftest import service_unavailable
from tests.helpers import add_active, html_part, ingest_sample, received

DOMAIN = "paperlab-digest.org"
MAX_SCORE = 0.0


def spamassassin() -> str:
    found = shutil.which("spamassassin")
    if not found:
        service_unavailable("spamassassin is not installed (scripts/setup.sh installs Debian's package as root)")
    return str(found)


def score(message: bytes) -> tuple[float, list[str], str]:
    """SpamAssassin's score, the rules that fired and its report, local tests only."""
    result = subprocess.run([spamassassin(), "-L", "-t"], input=message, capture_output=True, timeout=120)
    output = result.stdout.decode(errors="replace")
    status = re.search(r"^X-Spam-Status: (?:Yes|No), score=(-?[\d.]+).*?tests=(.*?)\s+autolearn", output,
                       re.MULTILINE | re.DOTALL)
    assert status is not None, output[:3000] + result.stderr.decode(errors="replace")
    rules = [r.strip() for r in status.group(2).replace("\n", "").split(",") if r.strip()]
    return float(status.group(1)), rules, output.split("Content analysis details:")[-1]


@pytest.fixture
def production_edition(settings, session, sink, tmp_path) -> bytes:
    """Today's edition for one reader, as our SMTP client sent it, with production-like settings."""
    spamassassin()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "dkim.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    settings.from_address = f"Paper Digest <digest@{DOMAIN}>"
    settings.base_url = f"https://digest.{DOMAIN}"
    settings.dkim_key_path, settings.dkim_selector = tmp_path / "dkim.pem", "digest2026"
    settings.postal_address = "Paper Lab, 12 Rue de l'Exemple, 75011 Paris, France"
    ingest_sample(session)
    add_active(session, "ada@example-mailbox.net", "efficient inference for long-context language models",
               "KV cache, speculative decoding", name="Ada Lovelace")
    run_daily(session, today(), settings)
    [envelope] = sink.handler.envelopes
    return envelope.original_content  # the bytes our SMTP client sent, DKIM signature included


def test_spamassassin_scores_a_real_edition_at_most_zero(production_edition, sink, artifacts_dir):
    message = production_edition
    assert b"DKIM-Signature:" in message and b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in message
    value, rules, report = score(message)
    (artifacts_dir / "spamassassin-report.txt").write_text(f"score {value}\n{report}")
    assert value <= MAX_SCORE, f"SpamAssassin score {value} > {MAX_SCORE}: {rules}\n{report}"
    assert "HTML_FONT_LOW_CONTRAST" not in rules  # the preheader is hidden without white text
    assert not [rule for rule in rules if rule.startswith(("MIME_HTML_ONLY", "HTML_IMAGE_ONLY", "MISSING_"))]
    [sent] = received(sink)
    assert len(html_part(sent).encode()) < 102 * 1024  # under Gmail's clipping
    assert sent["Subject"].endswith(" +9 more") and len(sent["Subject"]) <= 70
