"""Issue 14, the web app: each defect the outside audit found, as the audit found it (HTTP requests to the app,
a real SMTP server, `newsletter serve` as a real process where the server's own configuration was at fault)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from datetime import timedelta
from html import unescape

import httpx
import pytest
from fastapi.testclient import TestClient
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import event, text
from sqlmodel import col, select

from newsletter import db
from newsletter.clock import today, utcnow
from newsletter.jobs import send
from newsletter.models import Delivery, Edition, Subscriber
from newsletter.sink import SmtpSink
from newsletter.web.app import create_app
from subscribers.profiles import find_subscriber
from subscribers.tokens import make_token, read_token
from tests.helpers import (
    add_active,
    csrf_token,
    html_part,
    make_old_token,
    planned,
    process_environment,
    received,
    sign_up,
    text_part,
    url_path,
)

ADMIN = {"Authorization": "Bearer test-admin-token"}


def subscribers(session) -> list[Subscriber]:
    session.expire_all()
    return list(session.exec(select(Subscriber).order_by(col(Subscriber.id))))


def offered_keywords(web) -> list[str]:
    return re.findall(r'name="suggested" value="([^"]+)"', web.get("/").text)


# ---- 1. storage blow-up from one request --------------------------------------------------------------------

def test_one_sign_up_cannot_store_megabytes(session, web, sink):
    token = csrf_token(web, "/")
    huge = {"csrf_token": token, "email": "big@example.org", "timezone": "UTC", "suggested": ["x" * 1_000_000] * 20}
    response = web.post("/subscribe", data=huge)
    assert response.status_code == 413 and "larger than any form" in response.text

    def streamed():  # the same, without a Content-Length: counted while it is read
        yield f"csrf_token={token}&email=big%40example.org".encode()
        for _ in range(20):
            yield b"&suggested=" + b"x" * 100_000

    response = web.post("/subscribe", content=streamed(), headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413
    assert subscribers(session) == []

    offered = offered_keywords(web)
    assert offered
    junk = [f"junk keyword {n}" for n in range(80)]
    assert sign_up(web, "ada@example.org", suggested=[*junk, offered[0], offered[0].upper()]).status_code == 200
    [ada] = subscribers(session)
    assert ada.keywords == [offered[0]]  # only what the page offered, once

    for keywords in (", ".join(f"k{n}" for n in range(51)), "x" * 101):
        response = sign_up(web, "bob@example.org", keywords=keywords)
        assert response.status_code == 422 and 'id="keywords-error"' in response.text
    assert [s.email for s in subscribers(session)] == ["ada@example.org"]


# ---- 2. no public 500 -----------------------------------------------------------------------------------------

def signed(settings, purpose: str, payload: dict) -> str:
    """A token signed with the site's key whatever its payload (as someone holding the key could make)."""
    return URLSafeTimedSerializer(settings.signing_key, salt=f"newsletter.{purpose}").dumps(payload)


def test_the_inputs_that_broke_public_pages_get_a_4xx_page(session, settings, sink):
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    edition = planned(session, settings, "ada@example.org")
    ada = find_subscriber(session, "ada@example.org")
    assert ada is not None
    preferences = f"/preferences/{make_token('preferences', ada.id, ada.email, settings)}"
    token = csrf_token(client, preferences)
    answers = []
    for hour in ("²", "①", "٣", "99999999999999999999999"):
        answers.append(client.post("/subscribe", data={"csrf_token": token, "email": "eve@example.org",
                                                       "send_hour": hour}))
        answers.append(client.post(preferences, data={"csrf_token": token, "send_hour": hour, "timezone": "UTC"}))
    for paper in ("²", "99999999999999999999999", "-1", "0"):
        answers.append(client.post(f"{preferences}/forget", data={"csrf_token": token, "paper_id": paper}))
    for day in ("0001-01-01", "9999-12-31"):
        answers.append(client.get(f"/admin/preview?subscriber=ada@example.org&date={day}", headers=ADMIN))
        answers.append(client.get(f"/admin/preview.eml?subscriber=ada@example.org&date={day}", headers=ADMIN))
        answers.append(client.get(f"/preview/ada@example.org?day={day}", headers=ADMIN))
        answers.append(client.get(f"/archive/{day}"))
    e = ada.email
    from subscribers.tokens import _fingerprint  # what a genuine token carries
    for purpose in ("unsubscribe", "preferences", "view", "feedback", "confirm"):
        payloads: list = [{"s": 10**30, "e": _fingerprint(e)}, {"s": -1, "e": _fingerprint(e)},
                          {"s": True, "e": _fingerprint(e)}, {"s": "1", "e": _fingerprint(e)}, [1, 2]]
        if purpose in ("view", "feedback"):  # the payload's paper or day is what these read
            payloads += [{"s": ada.id, "e": _fingerprint(e), "p": 10**30, "k": "more", "d": "9999-12-31"},
                         {"s": ada.id, "e": _fingerprint(e), "d": "0001-01-01", "p": "x", "k": "less"}]
        for payload in payloads:
            answers.append(client.get(f"/{purpose}/{signed(settings, purpose, payload)}"))
            answers.append(client.post(f"/{purpose}/{signed(settings, purpose, payload)}",
                                       data={"csrf_token": token}))
    assert edition
    statuses = [(a.request.method, a.request.url.path[:40], a.status_code) for a in answers]
    assert all(400 <= status < 500 for _, _, status in statuses), [s for s in statuses if s[2] >= 500 or s[2] < 400]
    assert all("Paper Digest" in a.text and "Traceback" not in a.text for a in answers)  # the site's own page


# ---- 3. one mailbox, one subscription --------------------------------------------------------------------------

def test_a_capitalised_address_is_the_same_subscription(session, web, sink):
    add_active(session, "alice@example.org", "robotics")
    response = sign_up(web, "Alice@example.org", interests="something else")
    assert response.status_code == 200 and "Check your inbox" in response.text
    [message] = received(sink)
    assert message["Subject"] == "You are already subscribed to Paper Digest"
    assert message["To"] == "alice@example.org"
    [alice] = subscribers(session)
    assert (alice.email, alice.status, alice.interests) == ("alice@example.org", "active", "robotics")
    assert find_subscriber(session, "ALICE@EXAMPLE.ORG") is not None


# ---- 4. addresses we cannot mail ------------------------------------------------------------------------------

def test_an_internationalized_domain_is_mailed_in_its_ascii_form(session, web, sink):
    response = sign_up(web, "user@bücher.example")
    assert response.status_code == 200
    [envelope] = sink.handler.envelopes
    assert envelope.rcpt_tos == ["user@xn--bcher-kva.example"]
    [message] = received(sink)
    assert message["To"] == "user@xn--bcher-kva.example"
    assert web.post(url_path(re.findall(r"https://\S+/confirm/\S+", text_part(message))[0])).status_code == 200
    [subscriber] = subscribers(session)
    assert subscriber.status == "active" and subscriber.email == "user@bücher.example"


def test_a_non_ascii_local_part_needs_a_server_that_offers_smtputf8(session, settings, web, sink, tmp_path, caplog):
    refused = sign_up(web, "jörg@example.com", interests="Kept")
    assert refused.status_code == 422 and "Kept</textarea>" in refused.text
    assert "We cannot send to an address with accented or non-Latin letters before the @" in refused.text
    assert subscribers(session) == [] and received(sink) == []

    with SmtpSink(tmp_path / "utf8", smtputf8=True) as utf8:  # a server that offers SMTPUTF8
        settings.smtp_host, settings.smtp_port = utf8.host, utf8.port
        assert sign_up(web, "jörg@example.com").status_code == 200
        deadline = time.monotonic() + 10
        while not utf8.handler.envelopes and time.monotonic() < deadline:
            time.sleep(0.05)
        [envelope] = utf8.handler.envelopes
        assert envelope.rcpt_tos == ["jörg@example.com"] and "SMTPUTF8" in envelope.mail_options
    assert [s.email for s in subscribers(session)] == ["jörg@example.com"]
    assert "Traceback" not in caplog.text and "needs SMTPUTF8" not in caplog.text


@pytest.mark.parametrize("body", [b"email=%ed%a0%80@example.com", b"email=\xff\xfe@example.com",
                                  b"email=ada%40example.org&interests=%C0%AF"])
def test_malformed_utf8_in_a_form_is_a_400(session, web, sink, body):
    token = csrf_token(web, "/").encode()
    for path in ("/subscribe", "/admin/login"):
        response = web.post(path, content=b"csrf_token=" + token + b"&timezone=UTC&" + body,
                            headers={"content-type": "application/x-www-form-urlencoded"})
        assert response.status_code == 400 and "This request could not be read" in response.text
    assert subscribers(session) == [] and received(sink) == []


def test_import_and_cli_refuse_an_address_the_server_cannot_take(cli, session, sink, tmp_path):
    listing = tmp_path / "people.csv"
    listing.write_text("email\njörg@example.com\nuser@bücher.example\n", encoding="utf-8")
    result = cli("subscribers", "import", listing, "--json")
    report = json.loads(result.stdout)
    assert [(r["line"], "SMTPUTF8" in r["reason"]) for r in report["rejected"]] == [(2, True)]
    assert report["imported_total"] == 1
    added = cli("subscribers", "add", "zoë@example.com")
    assert added.exit_code == 1 and "non-ASCII characters before the @" in added.stderr
    assert "Traceback" not in added.output


# ---- 5. admin sign-in -----------------------------------------------------------------------------------------

def test_wrong_admin_tokens_are_throttled_per_client(settings):
    settings.admin_login_limit_per_ip = 5
    app = create_app(settings)
    attacker, other = TestClient(app, client=("203.0.113.9", 4000)), TestClient(app, client=("198.51.100.7", 4000))
    statuses = [attacker.post("/admin/login", data={"token": f"guess-{n}"}).status_code for n in range(8)]
    assert statuses == [401] * 5 + [429] * 3
    assert attacker.get("/admin", headers={"Authorization": "Bearer guess-9"}).status_code == 429
    assert attacker.post("/admin/login", data={"token": "test-admin-token"}).status_code == 429  # not even compared
    assert other.post("/admin/login", data={"token": "test-admin-token"}).status_code == 200  # another client


def test_admin_sessions_are_random_end_at_sign_out_and_expire_on_the_server(settings, session):
    from newsletter.models import AdminSession

    app = create_app(settings)
    first, second = TestClient(app), TestClient(app)
    for client in (first, second):
        assert client.post("/admin/login", data={"token": "test-admin-token"}).status_code == 200
    one, two = first.cookies["newsletter_admin"], second.cookies["newsletter_admin"]
    assert one != two and len(one) >= 32 and "test-admin-token" not in one
    stored = {row.token_hash for row in session.exec(select(AdminSession))}
    assert len(stored) == 2 and one not in stored and two not in stored  # only a keyed hash is kept

    first.post("/admin/logout")
    replay = TestClient(app, cookies={"newsletter_admin": one})  # the cookie kept by someone after sign-out
    assert replay.get("/admin").status_code == 401

    assert second.get("/admin").status_code == 200
    with db.session_scope(settings.sqlalchemy_url) as writer:  # 12 hours later (the server's clock decides)
        for row in writer.exec(select(AdminSession)):
            row.expires_at = utcnow() - timedelta(seconds=1)
    assert second.get("/admin").status_code == 401


class ServeProcess:
    """`newsletter serve` as its own process (as an operator runs it), on a free loopback port."""

    def __init__(self, settings, tmp_path, name: str, **environment):
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / f"serve-{name}.log"
        env = {**process_environment(settings), **environment}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "newsletter", "serve", "--port", str(self.port)], env=env, cwd=tmp_path,
            stdout=self.log_path.open("wb"), stderr=subprocess.STDOUT)

    def __enter__(self) -> ServeProcess:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"newsletter serve did not start:\n{self.log()}")
            time.sleep(0.2)

    def __exit__(self, *exc_info) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def test_secrets_stay_out_of_the_access_log(settings, session, tmp_path):
    ada = add_active(session, "ada@example.org")
    unsubscribe = make_token("unsubscribe", ada.id, ada.email, settings)
    with ServeProcess(settings, tmp_path, "log") as server:
        with httpx.Client(base_url=server.url, follow_redirects=True) as client:
            assert client.get("/admin?token=test-admin-token").status_code == 200  # signed in, then redirected
            assert client.get(f"/unsubscribe/{unsubscribe}").status_code == 200
    log = server.log()
    assert '"GET /admin?token=[redacted] HTTP/1.1" 303' in log and '"GET /unsubscribe/[redacted] HTTP/1.1" 200' in log
    assert "test-admin-token" not in log and unsubscribe not in log


# ---- 6. links from feeds ------------------------------------------------------------------------------------------

BAD_LINKS = {"url": "javascript:alert(document.domain)", "pdf_url": "data:text/html,<script>alert(1)</script>",
             "code_url": "javascript:alert(document.domain)", "project_url": "JavaScript:alert(1)",
             "thumbnail_url": "data:image/svg+xml,<svg onload=alert(1)>"}


def test_a_stored_javascript_link_never_reaches_an_email_or_a_page(session, smtp_settings, sink, settings):
    edition_id = planned(session, smtp_settings, "ada@example.org")
    with db.session_scope(settings.sqlalchemy_url) as writer:  # straight into the database, past ingest's check
        writer.execute(text("UPDATE paper SET " + ", ".join(f"{name} = :{name}" for name in BAD_LINKS)), BAD_LINKS)
    session.expire_all()
    ada = find_subscriber(session, "ada@example.org")
    assert ada is not None
    from newsletter.ranking.feedback import record_feedback
    paper_ids = list(session.exec(text("SELECT id FROM paper")).scalars())
    record_feedback(session, ada, paper_ids[0], "more")
    session.commit()
    edition = session.get(Edition, edition_id)
    assert edition is not None
    assert send(session, edition, smtp_settings).sent == 1
    [message] = received(sink)
    client = TestClient(create_app(settings))
    view = f"/view/{make_token('view', ada.id, ada.email, settings, {'d': today().isoformat()})}"
    shown = {
        "email html": html_part(message), "email text": text_part(message),
        "view": client.get(view).text, "home": client.get("/").text, "sample": client.get("/sample").text,
        "archive": client.get(f"/archive/{today().isoformat()}").text,
        "preferences": client.get(f"/preferences/{make_token('preferences', ada.id, ada.email, settings)}").text,
        "admin preview": client.get("/admin/preview/html?subscriber=ada@example.org", headers=ADMIN).text,
        "preview": client.get("/preview/ada@example.org", headers=ADMIN).text,
        "preview text": client.get("/preview/ada@example.org?text=1", headers=ADMIN).text,
    }
    titles = list(session.exec(text("SELECT title FROM paper")).scalars())
    for name, content in shown.items():
        readable = " ".join(unescape(content).split())
        assert any(" ".join(title.split())[:30] in readable for title in titles), f"{name} shows no paper"
        lowered = content.lower()
        assert "javascript:" not in lowered and "data:text" not in lowered and "data:image/svg" not in lowered, name


# ---- 7. tokens that expire ------------------------------------------------------------------------------------

def issued(url: str, purpose: str, settings) -> int:
    return read_token(purpose, url.rsplit("/", 1)[1], settings)["_at"]


def test_links_stop_working_after_their_lifetime_and_never_mint_longer_ones(session, settings, sink, monkeypatch):
    planned(session, settings, "ada@example.org")
    ada = find_subscriber(session, "ada@example.org")
    assert ada is not None
    client = TestClient(create_app(settings))
    day = {"d": today().isoformat()}

    old_view = make_old_token(monkeypatch, "view", ada, 400, settings, day)
    response = client.get(f"/view/{old_view}")
    assert response.status_code == 400 and "This link has expired" in response.text
    assert "/preferences/" not in response.text and "/feedback/" not in response.text
    old_feedback = make_old_token(monkeypatch, "feedback", ada, 100, settings, {"p": 1, "k": "more"})
    assert client.get(f"/feedback/{old_feedback}").status_code == 400
    old_unsubscribe = make_old_token(monkeypatch, "unsubscribe", ada, 4000, settings)
    assert client.get(f"/unsubscribe/{old_unsubscribe}").status_code == 200  # unsubscribing never expires

    view = make_old_token(monkeypatch, "view", ada, 60, settings, day)
    page = client.get(f"/view/{view}")
    assert page.status_code == 200
    signed_at = read_token("view", view, settings)["_at"]
    minted = re.findall(r'href="(https://[^"]+/(preferences|view|feedback)/[^"]+)"', page.text)
    assert {purpose for _, purpose in minted} == {"preferences", "view", "feedback"}
    assert all(issued(url, purpose, settings) == signed_at for url, purpose in minted)  # no younger than the link

    preferences = make_old_token(monkeypatch, "preferences", ada, 80, settings)
    with db.session_scope(settings.sqlalchemy_url) as writer:
        writer.execute(text("UPDATE delivery SET status = 'sent'"))
    listed = re.findall(r'href="(/view/[^"]+)"', client.get(f"/preferences/{preferences}").text)
    assert listed and all(issued(url, "view", settings) == read_token("preferences", preferences, settings)["_at"]
                          for url in listed)


# ---- 8. per-IP limits and forwarded headers -------------------------------------------------------------------

def sign_ups_from(url: str, forwarded_for: list[str]) -> list[int]:
    statuses = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for n, address in enumerate(forwarded_for):
            headers = {"X-Forwarded-For": address}
            token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/", headers=headers).text)
            assert token is not None
            statuses.append(client.post("/subscribe", headers=headers, data={
                "csrf_token": token.group(1), "email": f"user{n}.{url[-5:]}@example.org", "timezone": "UTC"}
            ).status_code)
    return statuses


def test_forwarded_addresses_count_only_from_configured_proxies(settings, session, sink, tmp_path):
    settings.subscribe_limit_per_ip = 2
    spoofed = [f"198.51.100.{n}" for n in range(1, 6)]
    with ServeProcess(settings, tmp_path, "default") as server:  # nobody configured: loopback is a client like any
        assert sign_ups_from(server.url, spoofed) == [200, 200, 429, 429, 429]
    with ServeProcess(settings, tmp_path, "proxied", NEWSLETTER_TRUSTED_PROXIES="127.0.0.1") as server:
        assert sign_ups_from(server.url, spoofed) == [200] * 5  # behind a configured proxy: five real clients


# ---- 9. ids are never reused ----------------------------------------------------------------------------------

def test_a_removed_subscribers_links_never_act_for_a_new_account(session, settings, cli, sink):
    add_active(session, "grace@example.org")
    old = add_active(session, "ada@example.org")
    old_unsubscribe = f"/unsubscribe/{make_token('unsubscribe', old.id, old.email, settings)}"
    assert cli("subscribers", "remove", "ada@example.org").exit_code == 0
    client = TestClient(create_app(settings))
    assert sign_up(client, "ada@example.org").status_code == 200
    new = find_subscriber(session, "ada@example.org")
    assert new is not None and new.id != old.id  # the newest id was removed: it is not handed out again
    response = client.post(old_unsubscribe)
    assert response.status_code == 400 and "does not belong to a current subscription" in response.text
    session.refresh(new)
    assert new.status == "pending"


# ---- 10. caching and HSTS -------------------------------------------------------------------------------------

def test_token_pages_are_never_stored_and_https_sites_send_hsts(session, settings, sink):
    planned(session, settings, "ada@example.org")
    ada = find_subscriber(session, "ada@example.org")
    assert ada is not None
    client = TestClient(create_app(settings))
    day = {"d": today().isoformat()}
    paper_id = session.exec(select(Delivery.id)).first()
    pages = [f"/confirm/{make_token('confirm', ada.id, ada.email, settings)}",
             f"/preferences/{make_token('preferences', ada.id, ada.email, settings)}",
             f"/unsubscribe/{make_token('unsubscribe', ada.id, ada.email, settings)}",
             f"/view/{make_token('view', ada.id, ada.email, settings, day)}",
             f"/feedback/{make_token('feedback', ada.id, ada.email, settings, {'p': paper_id, 'k': 'more'})}",
             "/preferences/not-a-token", "/admin"]
    for path in pages:
        response = client.get(path, headers=ADMIN if path == "/admin" else None)
        assert response.status_code in (200, 400), path
        assert response.headers["Cache-Control"] == "no-store", path
        assert response.headers["Strict-Transport-Security"] == "max-age=31536000", path
    home = client.get("/")
    assert "no-store" not in home.headers.get("Cache-Control", "") and "Strict-Transport-Security" in home.headers
    settings.base_url = "http://127.0.0.1:8000"
    assert "Strict-Transport-Security" not in TestClient(create_app(settings)).get("/").headers


# ---- 20. the landing page reads the papers once, not per request ------------------------------------------------

def test_the_home_page_reads_the_papers_once_not_on_every_request(session, settings, sink):
    planned(session, settings, "ada@example.org")
    client = TestClient(create_app(settings))
    paper_reads: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        if re.search(r"\bFROM paper\b", statement):
            paper_reads.append(statement)

    engine = db.get_engine(settings.sqlalchemy_url)
    event.listen(engine, "before_cursor_execute", count)
    try:
        pages = [client.get("/") for _ in range(20)]
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert all(p.status_code == 200 and 'class="paper-title"' in p.text for p in pages)
    assert len(paper_reads) <= 3, f"{len(paper_reads)} paper queries for 20 home pages"

