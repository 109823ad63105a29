"""Issue 14 item 2, as a property: whatever a client sends (path, query, form fields, raw bytes), no route of the
site answers 5xx. Hypothesis throws arbitrary and known-nasty values at every route of the app, with and without
a valid signed link, CSRF token and admin token, so that the code behind each check is reached too."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from itsdangerous import URLSafeTimedSerializer
from starlette.routing import Mount

from newsletter.clock import today
from newsletter.web.app import create_app
from subscribers.profiles import find_subscriber
from subscribers.tokens import PURPOSES, _fingerprint, make_token
from tests.helpers import csrf_token, planned

NASTY = ["²", "①", "٣", "99999999999999999999999", "-1", "0", "", "0001-01-01", "9999-12-31", "2026-02-30",
         "ada@example.org", "Ada@EXAMPLE.org", "user@bücher.example", "jörg@example.com", "a@b", "@", "UTC",
         "Europe/Paris", "Mars/Olympus", "weekly", "daily", "1", "23", "24", "\x00", "\r\nBcc: x@y", "x" * 2001,
         "%ed%a0%80", "\ufffd", "<script>alert(1)</script>", "javascript:alert(1)", "../../etc/passwd", "NaN",
         "1e309", "true", "[]", "{}"]
FIELDS = ["email", "interests", "keywords", "suggested", "followed_authors", "excluded_keywords", "frequency",
          "send_hour", "timezone", "paused", "paper_id", "token", "List-Unsubscribe"]
QUERY = ["date", "day", "subscriber", "text", "token"]
values = st.one_of(st.sampled_from(NASTY), st.text(max_size=40), st.integers().map(str))


@dataclass
class Site:
    client: TestClient
    tokens: dict[str, str]
    csrf: str
    routes: list[tuple[str, str]]
    weird_tokens: dict[str, list[str]]  # by purpose: signed with the site's key, with payloads no link carries


@pytest.fixture
def site(session, settings, sink) -> Site:
    settings.subscribe_limit_per_ip = settings.subscribe_limit_per_address = 10**6  # reach the code behind them
    settings.admin_login_limit_per_ip = 10**6
    planned(session, settings, "ada@example.org")
    ada = find_subscriber(session, "ada@example.org")
    assert ada is not None
    extras: dict[str, dict] = {"view": {"d": today().isoformat()}, "feedback": {"p": 1, "k": "more"}}
    tokens = {p: make_token(p, ada.id, ada.email, settings, extras.get(p)) for p in PURPOSES}
    fingerprint = _fingerprint(ada.email)
    weird = {purpose: [URLSafeTimedSerializer(settings.signing_key, salt=f"newsletter.{purpose}").dumps(payload)
                       for payload in ({"s": 10**30, "e": fingerprint}, {"s": -(10**30), "e": fingerprint},
                                       {"s": ada.id, "e": fingerprint, "p": 10**30, "k": "less", "d": "9999-12-31"},
                                       {"s": ada.id, "e": fingerprint, "d": "0001-01-01", "p": True, "k": "more"},
                                       {"s": None})]
             for purpose in PURPOSES}
    app = create_app(settings)
    routes = every_route(app.routes)
    assert ("POST", "/subscribe") in routes and ("GET", "/admin/preview") in routes and len(routes) > 20
    client = TestClient(app, raise_server_exceptions=False)
    return Site(client, tokens, csrf_token(client, "/"), routes, weird)


def every_route(routes) -> list[tuple[str, str]]:
    """(method, path template) of every route, routers included (FastAPI may wrap an included router)."""
    found: list[tuple[str, str]] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found += [(method, route.path) for method in sorted(route.methods or ())]
        elif isinstance(route, Mount):
            found.append(("GET", route.path + "/{path}"))
        elif hasattr(route, "original_router"):
            found += every_route(route.original_router.routes)
        elif hasattr(route, "routes"):
            found += every_route(route.routes)
    return found


@st.composite
def requests(draw, site: Site):
    method, template = draw(st.sampled_from(site.routes + [("GET", "/{anything}"), ("POST", "/{anything}")]))

    def parameter(match: re.Match) -> str:
        name = match.group(1)
        purpose = template.strip("/").split("/")[0]
        if name == "purpose":
            return draw(st.sampled_from(["confirm", "preferences", "unsubscribe", "x"]))
        if name == "token" and purpose in site.tokens:
            choice = draw(st.sampled_from(["valid", "other", "weird", "text"]))
            if choice == "valid":
                return site.tokens[purpose]
            if choice == "other":
                return draw(st.sampled_from(list(site.tokens.values())))
            if choice == "weird":
                return draw(st.sampled_from(site.weird_tokens[purpose]))
        return quote(draw(values), safe="")

    path = re.sub(r"\{(\w+)(?::\w+)?\}", parameter, template)
    query = draw(st.lists(st.tuples(st.sampled_from(QUERY), values), max_size=3))
    headers = {"Authorization": "Bearer test-admin-token"} if draw(st.booleans()) else {}
    if method != "POST":
        return method, path, query, headers, None, None
    if draw(st.integers(0, 9)) == 0:  # raw bytes, as no browser sends them
        body = draw(st.binary(max_size=200))
        return method, path, query, {**headers, "content-type": "application/x-www-form-urlencoded"}, None, body
    names = st.one_of(st.sampled_from(FIELDS), st.sampled_from(FIELDS), st.sampled_from(FIELDS), st.text(max_size=10))
    form = draw(st.lists(st.tuples(names, values), max_size=8))
    if draw(st.integers(0, 4)):
        form.append(("csrf_token", site.csrf))
    return method, path, query, headers, form, None


@pytest.mark.slow
def test_no_request_makes_any_route_answer_5xx(site):
    @hypothesis_settings(max_examples=400, deadline=None, database=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.data())
    def property_holds(data):
        method, path, query, headers, form, body = data.draw(requests(site))
        url = path + ("?" + urlencode(query) if query else "")
        if form is not None:
            fields: dict[str, list[str]] = {}
            for name, value in form:
                fields.setdefault(name, []).append(value)
            response = site.client.request(method, url, headers=headers, data=fields)
        else:
            response = site.client.request(method, url, headers=headers, content=body)
        assert response.status_code < 500, (method, url, form, body, response.status_code, response.text[:300])
        if response.headers.get("content-type", "").startswith("text/html"):
            assert "Traceback" not in response.text

    property_holds()
