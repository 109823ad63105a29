"""The admin pages, security headers and error pages."""

import re
from email import message_from_bytes
from email.policy import default

import pytest
from fastapi.testclient import TestClient

from newsletter.clock import today
from newsletter.jobs import run_daily
from newsletter.web.app import SECURITY_HEADERS, create_app
from tests.helpers import add_active, ingest_sample, text_part, without_tokens

ADMIN = {"Authorization": "Bearer test-admin-token"}
ADMIN_PATHS = ["/admin", "/admin/preview", "/admin/preview?subscriber=ada@example.org",
               "/admin/preview/html?subscriber=ada@example.org", "/admin/preview.eml?subscriber=ada@example.org",
               "/preview/ada@example.org"]


def test_preview_requires_the_admin_token(session, settings):
    ingest_sample(session)
    add_active(session, "ada@example.org", "diffusion models", "diffusion")
    client = TestClient(create_app(settings))
    assert client.get("/preview/ada@example.org").status_code == 401
    assert client.get("/preview/ada@example.org", headers={"Authorization": "Bearer wrong"}).status_code == 401
    response = client.get("/preview/ada@example.org", headers=ADMIN)
    assert response.status_code == 200 and "diffusion" in response.text.lower()
    assert response.headers["X-Frame-Options"] == "DENY"
    text = client.get("/preview/ada@example.org?text=1&token=test-admin-token")
    assert text.headers["content-type"].startswith("text/plain") and "Unsubscribe:" in text.text
    assert client.get("/preview/ghost@example.org?token=test-admin-token").status_code == 404


@pytest.mark.parametrize("path", ADMIN_PATHS)
def test_no_admin_page_opens_without_the_token(session, web, path):
    add_active(session, "ada@example.org")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic dGVzdC1hZG1pbi10b2tlbg=="}):
        response = web.get(path, headers=headers)
        assert response.status_code == 401 and "Admin only" in response.text
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert web.get(path + ("&" if "?" in path else "?") + "token=wrong").status_code == 401
    assert web.get(path, headers=ADMIN).status_code == 200


def test_admin_is_closed_when_no_token_is_configured(session, settings):
    settings.admin_token = ""
    add_active(session, "ada@example.org")
    client = TestClient(create_app(settings))
    for path in ADMIN_PATHS:
        assert client.get(path + ("&" if "?" in path else "?") + "token=").status_code == 401


def test_admin_lists_recent_editions_with_delivery_counts(session, smtp_settings, sink, web):
    ingest_sample(session)
    add_active(session, "ada@example.org", "LLM inference", "KV cache")
    add_active(session, "grace@example.org", "Gaussian splatting", "Gaussian Splatting")
    add_active(session, "paused@example.org", "anything").paused = True
    session.commit()
    run_daily(session, today(), smtp_settings)
    page = web.get("/admin?token=test-admin-token")
    assert page.status_code == 200
    row = page.text.split(f'<a href="/archive/{today().isoformat()}">')[1].split("</tr>")[0]
    cells = [c.split("<")[0] for c in row.split('<td class="num">')[1:]]
    assert cells == ["0", "0", "2", "0", "0", "2"]  # pending, sending, sent, failed, skipped, total
    assert page.url.path == "/admin" and not page.url.query  # the token left the address at once
    assert "test-admin-token" not in page.text  # the session is a cookie, not a token in the page


def test_admin_preview_shows_exactly_the_email_that_would_be_sent(session, smtp_settings, sink, web):
    ingest_sample(session)
    add_active(session, "ada@example.org", "LLM <inference>", "KV cache")
    run_daily(session, today(), smtp_settings)
    sent = message_from_bytes(sink.handler.envelopes[0].original_content, policy=default)
    query = f"subscriber=ada@example.org&date={today().isoformat()}&token=test-admin-token"
    page = web.get(f"/admin/preview?{query}")
    assert page.status_code == 200
    assert "frame-src 'self'" in page.headers["Content-Security-Policy"]
    for name in ("Subject", "From", "To", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post", "List-Id"):
        assert f'<td class="name">{name}</td>' in page.text
    assert sent["Message-ID"] in page.text.replace("&lt;", "<").replace("&gt;", ">")
    assert page.text.count("<iframe") == 2 and 'class="mobile"' in page.text
    assert 'sandbox="allow-same-origin"' in page.text
    assert "LLM &lt;inference&gt;" in page.text  # the text part, escaped
    iframe = re.search(r'<iframe class="desktop"[^>]* src="([^"]+)"', page.text)
    assert iframe is not None
    html_url = iframe.group(1)
    framed = web.get(html_url.replace("&amp;", "&"))
    assert framed.status_code == 200 and framed.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "frame-ancestors 'self'" in framed.headers["Content-Security-Policy"]
    sent_html = next(p for p in sent.walk() if p.get_content_type() == "text/html").get_content()
    assert "".join(without_tokens(framed.text).split()) == "".join(without_tokens(sent_html).split())
    eml = web.get(f"/admin/preview.eml?{query}")
    assert eml.headers["content-type"] == "message/rfc822"
    previewed = message_from_bytes(eml.content, policy=default)
    for header in ("Subject", "From", "To", "Message-ID", "List-Unsubscribe", "List-Id"):
        assert without_tokens(previewed[header]) == without_tokens(sent[header])
    assert sorted(previewed.keys()) == sorted(sent.keys())
    assert without_tokens(text_part(previewed)) == without_tokens(text_part(sent))


def test_admin_preview_of_an_unknown_subscriber_is_a_clear_404(session, web):
    response = web.get("/admin/preview?subscriber=ghost@example.org", headers=ADMIN)
    assert response.status_code == 404 and "No subscriber ghost@example.org" in response.text


@pytest.mark.parametrize("path", ["/", "/archive", "/health", "/no-such-page", "/confirm/bad", "/static/timezone.js"])
def test_security_headers_on_every_response(web, path):
    response = web.get(path)
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value


def test_unexpected_errors_show_a_plain_page_without_a_trace(session, settings, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("newsletter.web.archive.trending_papers", broken)
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    response = client.get("/")
    assert response.status_code == 500 and "Something went wrong" in response.text
    assert "secret internals" not in response.text and "Traceback" not in response.text
    assert response.headers["X-Frame-Options"] == "DENY"


def test_a_browser_signs_in_once_with_an_httponly_cookie_that_is_not_the_token(session, web, settings):
    assert web.get("/admin").status_code == 401
    wrong = web.post("/admin/login", data={"token": "guess"})
    assert wrong.status_code == 401 and "not the admin token" in wrong.text and "newsletter_admin" not in web.cookies
    signed_in = web.post("/admin/login", data={"token": "test-admin-token"}, follow_redirects=False)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/admin"
    cookie = signed_in.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "test-admin-token" not in cookie
    assert web.get("/admin").status_code == 200 and web.get("/admin/preview").status_code == 200

    settings.admin_token = "a-new-token"  # changing the token signs every browser out
    assert web.get("/admin").status_code == 401
    settings.admin_token = "test-admin-token"
    assert web.get("/admin").status_code == 200
    web.post("/admin/logout")
    assert web.get("/admin").status_code == 401


def test_a_token_in_the_address_is_swapped_for_the_session_and_dropped(session, web):
    add_active(session, "ada@example.org")
    opened = web.get("/admin/preview?subscriber=ada%40example.org&token=test-admin-token&date=2026-01-02",
                     follow_redirects=False)
    assert opened.status_code == 303
    assert opened.headers["location"] == "/admin/preview?subscriber=ada%40example.org&date=2026-01-02"
    assert web.get(opened.headers["location"]).status_code == 200
