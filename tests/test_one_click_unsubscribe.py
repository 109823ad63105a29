"""RFC 8058 one-click unsubscribe end to end, as a mail provider does it.

The message is taken from the SMTP server that received it; its List-Unsubscribe https URL is POSTed to the web
app served by uvicorn on loopback, with no cookies and no credentials, in both form encodings.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import timedelta

import httpx
import pytest
import uvicorn
from sqlmodel import col, select

from newsletter.clock import today
from newsletter.delivery.send import send_edition
from newsletter.editions import plan_edition
from newsletter.models import Delivery, Subscriber
from newsletter.web.app import create_app
from tests.helpers import configured, planned, status_of
from tests.scripted_smtp import ScriptedSmtp


@pytest.fixture
def web(settings):
    """The web app on a real socket; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def one_click(url: str, encoding: str) -> httpx.Response:
    with httpx.Client(follow_redirects=False) as provider:  # a fresh client: no cookies
        if encoding == "urlencoded":
            return provider.post(url, content=b"List-Unsubscribe=One-Click",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
        return provider.post(url, files={"List-Unsubscribe": (None, "One-Click")})


def test_one_click_from_a_delivered_message_then_the_next_send_skips(session, settings, tmp_path, web):
    readers = ("ada@example.org", "grace@example.org", "alan@example.org")
    local = None
    with ScriptedSmtp(tmp_path / "scripted") as smtp:
        local = configured(settings, smtp, papers_per_email=1)
        first = planned(session, local, *readers)
        assert send_edition(session, first, local).sent == 3
        # the next edition is planned while everyone is still subscribed
        second = plan_edition(session, today() + timedelta(days=1), local)
        session.commit()
        assert second.planned == 3

        for message, encoding in zip(smtp.handler.messages()[:2], ("urlencoded", "multipart")):
            found = re.search(r"<(https://[^>]+)>", message["List-Unsubscribe"])
            assert found is not None, message["List-Unsubscribe"]
            https = found.group(1)
            assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            response = one_click(https.replace(settings.base_url, web), encoding)
            assert 200 <= response.status_code < 300 and "location" not in response.headers, encoding
            assert "set-cookie" not in response.headers
            assert status_of(session, message["To"]) == "unsubscribed"

        report = send_edition(session, second.edition_id, local)
        assert (report.sent, report.skipped) == (1, 2)
        recipients = [e.rcpt_tos[0] for e in smtp.handler.accepted]
    assert recipients.count("alan@example.org") == 2
    assert recipients.count("ada@example.org") == recipients.count("grace@example.org") == 1
    session.expire_all()
    skipped = session.exec(select(Subscriber.email).join(Delivery)
                           .where(Delivery.edition_id == second.edition_id, col(Delivery.status) == "skipped")).all()
    assert sorted(skipped) == ["ada@example.org", "grace@example.org"]
