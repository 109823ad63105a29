"""Ingest against real recorded API responses (tests/fixtures/recorded), served by a real HTTP server on loopback.

One section per hardening rule: arXiv's error feed, field-by-field merging, identity by arXiv id, one transaction
and one report per source, errors that name their cause, hidden authors, the hf:daily and arxiv: shortcuts, the
Hugging Face fields a reader values, http(s)-only links, version-free arXiv ids and titles kept as text.
"""

from __future__ import annotations

import gzip
import http.server
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlmodel import Session, col, func, select

from newsletter import db
from newsletter.config import Settings
from newsletter.errors import FeedError
from newsletter.ingest import ingest, split_sources
from newsletter.ingest.paper_in import safe_url
from newsletter.jobs import ingest_sources
from newsletter.models import Paper
from newsletter.render.context import paper_view
from tests.conftest import FIXTURES

RECORDED = FIXTURES / "recorded"
HF_RECORDED = RECORDED / "hf_daily_papers.json"  # 30 papers of 2026-06-12
ARXIV_ERROR = RECORDED / "arxiv_error.atom"
ARXIV_CS_LG = RECORDED / "arxiv_query_cs_lg.atom"  # 5 entries, totalResults 28946
ARXIV_CS_RO = RECORDED / "arxiv_query_cs_ro.atom"  # 2 entries, totalResults 5619
ARXIV_ELECTRON = RECORDED / "arxiv_query_electron.atom"  # 1 entry, old-style id hep-ex/0307015


def papers(session) -> list[Paper]:
    session.expire_all()
    return list(session.exec(select(Paper).order_by(col(Paper.id))))


def count(session) -> int:
    return session.exec(select(func.count()).select_from(Paper)).one()


def paper(session, external_id: str) -> Paper:
    session.expire_all()
    return session.exec(select(Paper).where(Paper.external_id == external_id)).one()


def write(tmp_path: Path, name: str, content: str | bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return str(path)


def hf_item(paper_id: str, title: str, **paper_fields) -> dict:
    return {"paper": {"id": paper_id, "title": title, "summary": f"The abstract of {title}.", **paper_fields},
            "title": title, "numComments": 0}


Response = tuple[int, str, bytes, dict]  # status, content type, body, headers
Route = Response | Callable[[dict[str, str]], Response]


class RecordedApi:
    """A real HTTP server on 127.0.0.1 (own thread) that answers each path with recorded bytes and keeps every
    request it got (path, query, time)."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict, float]] = []
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                api.requests.append((parts.path, query, time.monotonic()))
                route = api.routes.get(parts.path)
                response: Response = (404, "text/plain", b"no such path", {})
                if route is not None:
                    response = route(query) if callable(route) else route
                status, content_type, body, headers = response
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def serve(self, path: str, body: bytes | Path, status: int = 200, content_type: str = "application/json",
              headers: dict | None = None) -> str:
        data = body.read_bytes() if isinstance(body, Path) else body
        self.routes[path] = (status, content_type, data, headers or {})
        return self.url + path


@pytest.fixture
def api():
    server = RecordedApi()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def live(settings, api) -> Settings:
    """Settings whose Hugging Face and arXiv APIs are the loopback server, with no pause between arXiv calls."""
    settings.hf_api_url, settings.arxiv_api_url = f"{api.url}/api/daily_papers", f"{api.url}/api/query"
    settings.arxiv_delay_seconds = 0
    return settings


# 1. arXiv's error feed ------------------------------------------------------------------------------------------

def test_arxiv_error_feed_is_a_one_line_feed_error_quoting_arxiv_and_stores_nothing(settings, session):
    with pytest.raises(FeedError) as caught:
        ingest(session, str(ARXIV_ERROR), settings)
    message = str(caught.value)
    assert caught.value.problem == "arXiv API error: incorrect id format for 1234.12345"
    assert "\n" not in message and count(session) == 0  # not a paper titled "Error" by "arXiv api core"


def test_arxiv_http_400_with_its_error_feed_passes_the_message_through(settings, session, api):
    url = api.serve("/api/query", ARXIV_ERROR, status=400, content_type="application/atom+xml")
    with pytest.raises(FeedError) as caught:
        ingest(session, url + "?id_list=1234.12345", settings)
    assert caught.value.problem == "HTTP 400: arXiv API error: incorrect id format for 1234.12345"
    assert count(session) == 0


# 2. A stored paper is never made worse ----------------------------------------------------------------------------

def test_merge_keeps_the_best_of_each_field_and_never_takes_junk(settings, session, tmp_path):
    ingest(session, str(HF_RECORDED), settings)
    before = paper(session, "2606.12575")
    abstract, tldr, authors = before.abstract, before.tldr, list(before.authors)
    assert before.upvotes == 7 and len(abstract) > 500 and len(authors) == 9
    before.embedding, before.embedding_model = b"\x00" * 8, "some-model"
    session.commit()

    # arXiv's record of the same paper: versioned links, junk abstract, no authors, a shorter title.
    worse = f"""<feed xmlns="http://www.w3.org/2005/Atom"><entry>
      <id>http://arxiv.org/abs/2606.12575v3</id><title>{before.title[:20]}</title>
      <summary>  N/A </summary><published>2026-06-11T09:00:00Z</published>
      <link href="http://arxiv.org/abs/2606.12575v3" rel="alternate"/>
      <link title="pdf" href="http://arxiv.org/pdf/2606.12575v3" rel="related"/>
      <category term="cs.CV"/></entry></feed>"""
    assert ingest(session, write(tmp_path, "worse.atom", worse), settings).updated == 1  # only the category is news
    # The daily papers a day later: fewer upvotes, an empty summary, an ai_summary that is a placeholder.
    later = [hf_item("2606.12575", before.title, upvotes=3, summary="", ai_summary="n/a", authors=[])]
    ingest(session, write(tmp_path, "later.json", json.dumps(later)), settings)

    after = paper(session, "2606.12575")
    assert (after.abstract, after.tldr, after.authors, after.title) == (abstract, tldr, authors, before.title)
    assert after.upvotes == 7  # the highest count seen, not the latest
    assert after.url == "https://arxiv.org/abs/2606.12575" and after.pdf_url == "https://arxiv.org/pdf/2606.12575"
    assert "cs.CV" in after.keywords and after.published_at == datetime(2026, 6, 10, tzinfo=UTC)
    assert after.embedding == b"\x00" * 8  # text unchanged: the vector still describes it

    # A longer real abstract does replace a shorter one, and the vector computed from the old text is dropped.
    longer = [hf_item("2606.12575", before.title, summary=abstract + " We also release the code.", upvotes=9)]
    ingest(session, write(tmp_path, "longer.json", json.dumps(longer)), settings)
    after = paper(session, "2606.12575")
    assert after.abstract.endswith("We also release the code.") and after.upvotes == 9
    assert after.embedding is None


def test_a_time_without_a_zone_is_taken_as_utc(settings, session, tmp_path):
    item = hf_item("2403.05530", "Naive times", publishedAt="2024-03-08T18:54:24")
    ingest(session, write(tmp_path, "naive.json", json.dumps([item])), settings)
    assert paper(session, "2403.05530").published_at == datetime(2024, 3, 8, 18, 54, 24, tzinfo=UTC)


# 3. Identity: arXiv id first, title only without one -------------------------------------------------------------

def test_same_title_with_different_arxiv_ids_is_two_papers(settings, session, tmp_path):
    items = [hf_item("2501.00001", "Scaling Laws Revisited"), hf_item("2502.00002", "Scaling  laws revisited!")]
    result = ingest(session, write(tmp_path, "twins.json", json.dumps(items)), settings)
    assert (result.new, result.duplicates, count(session)) == (2, 0, 2)
    # Later the same two again, from a file each: still two, nothing duplicated.
    ingest(session, write(tmp_path, "one.json", json.dumps(items[1:])), settings)
    assert count(session) == 2
    # A listing entry has no id: matched by title, to one of them, not stored as a third paper.
    listing = write(tmp_path, "listing.txt", "Scaling Laws Revisited\nA longer abstract than the feed gave us.\n")
    assert ingest(session, listing, settings).new == 0 and count(session) == 2


def test_title_only_paper_takes_the_arxiv_id_of_the_first_feed_that_has_one(settings, session, tmp_path):
    ingest(session, write(tmp_path, "listing.txt", "Scaling Laws Revisited\nAn abstract from a listing.\n"), settings)
    ingest(session, write(tmp_path, "a.json", json.dumps([hf_item("2501.00001", "Scaling Laws Revisited")])), settings)
    ingest(session, write(tmp_path, "b.json", json.dumps([hf_item("2502.00002", "Scaling Laws Revisited")])), settings)
    assert sorted(p.external_id for p in papers(session)) == ["2501.00001", "2502.00002"]


# 4. One bad source never stops the others -------------------------------------------------------------------------

def test_ingest_all_reports_each_source_and_a_bad_one_stops_nothing(settings, session, tmp_path, monkeypatch):
    good = write(tmp_path, "good.json", HF_RECORDED.read_bytes())
    bad = write(tmp_path, "bad.gz", gzip.compress(HF_RECORDED.read_bytes())[:200])  # cut short
    atom = str(ARXIV_CS_RO)
    reports = ingest_sources(settings, [good, bad, str(tmp_path / "missing.json"), atom])
    missing = str(tmp_path / "missing.json")
    assert [(r.ok, r.location) for r in reports] == [(True, good), (False, bad), (False, missing),
                                                    (True, atom)]
    assert reports[1].reason.startswith("corrupt gzip data") and reports[2].reason == "no such file"
    assert reports[0].result is not None and reports[3].result is not None
    assert reports[0].result.new == 30 and reports[3].result.new == 2 and count(session) == 32

    # A bug in the middle of one source (not a FeedError) is reported too; its transaction is rolled back.
    from newsletter.ingest import store

    real = store.upsert_papers

    def explode_on_atom(session, parsed, source):
        result = real(session, parsed, source)  # writes, then fails: the rows must not stay
        if source.endswith(".atom"):
            raise RuntimeError("boom")
        return result

    monkeypatch.setattr("newsletter.ingest.upsert_papers", explode_on_atom)
    reports = ingest_sources(settings, [str(ARXIV_CS_LG), str(FIXTURES / "hf_daily_papers.json")])
    assert [r.ok for r in reports] == [False, True] and reports[0].reason == "unexpected error (RuntimeError: boom)"
    session.expire_all()
    assert session.exec(select(Paper).where(Paper.external_id == "2606.13677")).first() is None
    assert count(session) == 35


def test_cli_ingest_stores_the_good_source_prints_a_table_and_exits_1(settings, session, tmp_path, cli):
    good = write(tmp_path, "good.json", HF_RECORDED.read_bytes())
    bad = write(tmp_path, "bad.gz", b"\x1f\x8b\x08\x00 not really gzip")
    result = cli("ingest", good, bad)
    assert result.exit_code == 1
    assert "good.json" in result.stdout and "bad.gz" in result.stdout and "failed" in result.stdout
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error.startswith(f"error: {bad}: corrupt gzip data") and "Traceback" not in result.output
    assert count(session) == 30


def test_celery_ingest_sources_logs_a_failed_source_and_goes_on(settings, session, tmp_path, monkeypatch, caplog):
    from tasks.tasks import ingest_sources

    bad = write(tmp_path, "bad.json", "[" * 990 + "]" * 990)
    settings.sources = f"{bad},{HF_RECORDED}"
    monkeypatch.setattr("tasks.tasks._settings", lambda: settings)  # what the worker reads from its environment
    with caplog.at_level(logging.WARNING, logger="newsletter.jobs"):
        reports = ingest_sources.apply().get()
    assert [(r["ok"], r["entries"]) for r in reports] == [(False, 0), (True, 30)]
    assert [r.getMessage() for r in caplog.records] == ["source failed"]
    assert caplog.records[0].fields["source"] == bad and "nested" in caplog.records[0].fields["reason"]
    assert count(session) == 30


# 5. Errors that name the real cause -------------------------------------------------------------------------------

def test_deeply_nested_json_is_one_line_not_a_recursion_error(settings, session, tmp_path):
    with pytest.raises(FeedError) as caught:
        ingest(session, write(tmp_path, "deep.json", "[" * 990 + "]" * 990), settings)
    assert caught.value.problem == "JSON nested more than 64 levels deep"


RATE_EXCEEDED = b"<html><head></head><body>Rate exceeded.</body></html>"


def test_an_html_page_is_reported_as_html(settings, session, tmp_path, api):
    with pytest.raises(FeedError) as caught:
        ingest(session, write(tmp_path, "page.xml", RATE_EXCEEDED), settings)
    assert caught.value.problem == "got an HTML page, not a feed: Rate exceeded."
    page = b"<!DOCTYPE html>\n<html lang='en'><head><title>arXiv.org - Automated Access Detected</title></head></html>"
    with pytest.raises(FeedError, match="got an HTML page, not a feed: arXiv.org - Automated Access Detected$"):
        ingest(session, api.serve("/captcha", page, content_type="text/html"), settings)
    with pytest.raises(FeedError, match="HTTP 503: an HTML page: Rate exceeded.$"):
        ingest(session, api.serve("/busy", RATE_EXCEEDED, status=503, content_type="text/html"), settings)
    with pytest.raises(FeedError, match="HTTP 503: Rate exceeded.$"):
        ingest(session, api.serve("/plain", b"Rate exceeded.", status=503, content_type="text/plain"), settings)
    with pytest.raises(FeedError, match="a single line of text, not a feed: 'Rate exceeded.'"):
        ingest(session, api.serve("/plain200", b"Rate exceeded.\n", content_type="text/plain"), settings)
    assert count(session) == 0


def test_gzip_in_a_file_or_over_http_is_decompressed(settings, session, tmp_path, api):
    packed = gzip.compress(HF_RECORDED.read_bytes())
    assert ingest(session, write(tmp_path, "day.json.gz", packed), settings).new == 30
    assert ingest(session, write(tmp_path, "no-suffix", packed), settings).new == 0  # known by its magic bytes
    atom = gzip.compress(ARXIV_CS_RO.read_bytes())
    assert ingest(session, api.serve("/feed.atom.gz", atom, content_type="application/gzip"), settings).new == 2
    encoded = api.serve("/encoded", gzip.compress(ARXIV_CS_LG.read_bytes()), content_type="application/atom+xml",
                        headers={"Content-Encoding": "gzip"})
    assert ingest(session, encoded, settings).new == 5


def test_gzip_is_capped_and_corrupt_gzip_is_named(session, tmp_path, settings):
    settings.ingest_max_bytes = 100000
    bomb = write(tmp_path, "bomb.json.gz", gzip.compress(b"[" + b" " * 5_000_000 + b"]"))
    reports = ingest_sources(settings, [bomb, write(tmp_path, "cut.gz", gzip.compress(b"[]" * 1000)[:30])])
    assert reports[0].reason == "gzip data that expands beyond 100000 bytes"
    assert reports[1].reason.startswith("corrupt gzip data (")
    assert count(session) == 0


def test_a_utf8_bom_does_not_stop_json_from_being_json(settings, session, tmp_path):
    assert ingest(session, write(tmp_path, "bom.json", b"\xef\xbb\xbf" + HF_RECORDED.read_bytes()), settings).new == 30


def test_an_api_error_object_is_quoted(settings, session, api):
    body = b'{"error":"\xe2\x9c\x96 Too big: expected number to be <=100\\n  \xe2\x86\x92 at limit"}'
    with pytest.raises(FeedError, match="the API answered with an error: ✖ Too big: expected number to be <=100"):
        ingest(session, api.serve("/api/daily_papers", body), settings)
    with pytest.raises(FeedError, match=r"HTTP 400: ✖ Too big: expected number to be <=100 → at limit$"):
        ingest(session, api.serve("/api/daily_papers", body, status=400), settings)


# 6. Hidden authors ------------------------------------------------------------------------------------------------

def test_authors_hidden_by_hugging_face_are_not_stored(settings, session):
    ingest(session, str(HF_RECORDED), settings)
    authors = paper(session, "2606.12575").authors
    assert "Dengyang Jiang" not in authors and authors[:3] == ["Dongyang Liu", "Ruoyi Du", "David Liu"]


# 7. Real sources: hf:daily and arxiv: shortcuts ------------------------------------------------------------------

def test_real_sources_are_the_default_and_arxiv_categories_stay_together():
    assert split_sources(Settings().sources) == ["hf:daily", "arxiv:cs.LG,cs.CL,cs.CV"]
    assert split_sources(Settings(sources="sample, hf:daily,arxiv:cs.LG, stat.ML,feeds/x.json,sample").sources) == [
        "sample", "hf:daily", "arxiv:cs.LG,stat.ML", "feeds/x.json", "sample"]


def test_hf_daily_reads_the_day_before_the_edition_from_the_configured_api(live, session, api):
    api.serve("/api/daily_papers", HF_RECORDED)
    [report] = ingest_sources(live, ["hf:daily"], day=date(2026, 6, 13))  # the edition of the 13th: the 12th's list
    assert report.ok and report.result is not None
    assert report.result.new == 30
    assert [(path, query) for path, query, _ in api.requests] == [
        ("/api/daily_papers", {"date": "2026-06-12", "limit": "100"})]


def test_arxiv_shortcut_pages_through_the_day_politely_up_to_the_cap(live, session, api, monkeypatch):
    pages = {"0": ARXIV_CS_LG, "5": ARXIV_CS_RO}
    api.routes["/api/query"] = lambda q: (200, "application/atom+xml", pages[q["start"]].read_bytes(), {})
    live.arxiv_page_size, live.arxiv_max_pages = 5, 2  # the feed says 28946 results: the cap ends it
    live.arxiv_delay_seconds = 0.3
    [report] = ingest_sources(live, ["arxiv:cs.LG,cs.CL,cs.CV"], day=date(2026, 6, 12))  # reads the 11th
    assert report.ok and report.result is not None
    assert report.result.new == 7 and count(session) == 7
    queries = [query for _, query, _ in api.requests]
    assert [q["start"] for q in queries] == ["0", "5"] and {q["max_results"] for q in queries} == {"5"}
    assert queries[0]["search_query"] == ("(cat:cs.LG OR cat:cs.CL OR cat:cs.CV) "
                                          "AND submittedDate:[202606110000 TO 202606112359]")
    assert api.requests[1][2] - api.requests[0][2] >= 0.3  # NEWSLETTER_ARXIV_DELAY_SECONDS between requests


def test_an_arxiv_error_on_a_later_page_fails_the_whole_source(live, session, api):
    pages = {"0": (200, ARXIV_CS_LG), "5": (400, ARXIV_ERROR)}  # the next page starts after the 5 entries read
    api.routes["/api/query"] = lambda q: (pages[q["start"]][0], "application/atom+xml",
                                          pages[q["start"]][1].read_bytes(), {})
    [report] = ingest_sources(live, ["arxiv:cs.LG"])
    assert not report.ok and report.reason.endswith("HTTP 400: arXiv API error: incorrect id format for 1234.12345")
    assert count(session) == 0  # page 1 was parsed, but nothing of a failed source is stored


def test_an_unknown_shortcut_or_category_is_a_clear_failure(live, session):
    reports = ingest_sources(live, ["hf:weekly", "arxiv:cs.LG,not a category"])
    assert [r.reason for r in reports] == ["unknown source shortcut (use hf:daily or arxiv:<category>,<category>...)",
                                           "'not a category' is not an arXiv category (e.g. cs.LG, stat.ML, hep-th)"]


def test_sample_still_works(settings, session):
    reports = ingest_sources(settings, ["sample"])
    assert [r.ok for r in reports] == [True, True, True] and count(session) == 436


# 8. What the Hugging Face feed offers, and one canonical page per paper ------------------------------------------

def test_hf_fields_a_reader_values_are_stored(settings, session):
    ingest(session, str(HF_RECORDED), settings)
    p = paper(session, "2606.10423")
    assert p.project_url == "https://jayoohwang1.github.io/webchallenger-site/"
    assert p.code_url == "https://github.com/jayoohwang1/webchallenger"
    assert p.thumbnail_url == "https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/2606.10423.png"
    p = paper(session, "2606.12575")
    assert p.tldr.startswith("A 2-step image generation model is developed through distillation")
    assert p.organization == "Tongyi-MAI" and p.comments == 3
    assert paper(session, "2606.00467").organization == "California institute of technology"
    assert p.url == "https://arxiv.org/abs/2606.12575" and p.pdf_url == "https://arxiv.org/pdf/2606.12575"


def test_a_paper_without_a_known_page_has_no_link_never_a_search(settings, session, tmp_path):
    ingest(session, write(tmp_path, "listing.txt", "A Paper Nobody Links\nIts abstract, long enough.\n"), settings)
    [stored] = papers(session)
    assert stored.url == "" and stored.pdf_url == ""
    view = paper_view(stored)
    assert view.url == ""  # the email then shows no "Paper" link (tests/test_render.py renders it)


def test_the_migration_makes_stored_links_canonical_and_http_only(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    db.upgrade(url, "issue6_delivery_queued_at")
    with db.get_engine(url).begin() as connection:
        connection.execute(text(
            "INSERT INTO paper (external_id, title_key, title, abstract, authors, url, pdf_url, code_url, upvotes, "
            "comments, keywords, source, ingested_at, embedding_model) VALUES "
            "('2403.05530', 'a', 'A', '', '[]', 'https://huggingface.co/papers/2403.05530', "
            " 'http://arxiv.org/pdf/2403.05530v2', 'JavaScript:alert(1)', 0, 0, '[]', '', '2026-01-01', ''),"
            "('title:1', 'b', 'B', '', '[]', 'data:text/html,x', '', 'https://github.com/x/y', 0, 0, '[]', '', "
            " '2026-01-01', '')"))
    db.upgrade(url)
    with db.get_engine(url).connect() as connection:
        rows = connection.execute(text("SELECT url, pdf_url, code_url, tldr FROM paper ORDER BY id")).all()
    assert rows == [("https://arxiv.org/abs/2403.05530", "https://arxiv.org/pdf/2403.05530", "", ""),
                    ("", "", "https://github.com/x/y", "")]


# 9. Only http(s) links ----------------------------------------------------------------------------------------------

def test_only_http_links_are_stored_from_any_feed(settings, session, tmp_path):
    item = hf_item("2501.00003", "Links", githubRepo="javascript:alert(1)", projectPage=" data:text/html,<b>x</b>",
                   thumbnail="JaVaScRiPt:alert(1)")
    item["thumbnail"] = "//cdn.example.org/x.png"
    ingest(session, write(tmp_path, "links.json", json.dumps([item])), settings)
    p = paper(session, "2501.00003")
    assert (p.code_url, p.project_url, p.thumbnail_url) == ("", "", "")
    atom = """<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>urn:x:1</id><title>No arXiv id</title>
      <link href="javascript:alert(1)" rel="alternate"/><link title="pdf" href="vbscript:x" rel="related"/>
      </entry><entry><id>urn:x:2</id><title>Fine links</title>
      <link href="https://example.org/p" rel="alternate"/><link title="pdf" href="https://example.org/p.pdf"/>
      </entry></feed>"""
    ingest(session, write(tmp_path, "links.atom", atom), settings)
    by_title = {p.title: p for p in papers(session)}
    assert (by_title["No arXiv id"].url, by_title["No arXiv id"].pdf_url) == ("", "")
    assert (by_title["Fine links"].url, by_title["Fine links"].pdf_url) == ("https://example.org/p",
                                                                          "https://example.org/p.pdf")


@pytest.mark.parametrize("value, kept", [
    ("https://github.com/a/b", True), ("http://example.org", True), ("  https://x.org/y  ", True),
    ("javascript:alert(1)", False), ("JAVASCRIPT:alert(1)", False), ("data:text/html,x", False),
    ("vbscript:x", False), ("file:///etc/passwd", False), ("//evil.example.org", False), ("https://", False),
    ("https://exa mple.org", False), ("https://x.org/\nSet-Cookie: a", False), ("ftp://x.org", False),
    (None, False), (42, False), ("http://[::1", False),
])
def test_safe_url(value, kept):
    assert (safe_url(value) != "") is kept


# 10. Version-free arXiv ids; titles stay text ----------------------------------------------------------------------

def test_arxiv_versioned_ids_are_stored_without_their_version(settings, session):
    ingest(session, str(ARXIV_CS_RO), settings)
    ingest(session, str(ARXIV_ELECTRON), settings)
    assert [p.external_id for p in papers(session)] == ["2510.14968", "2510.14827", "hep-ex/0307015"]
    p = paper(session, "2510.14968")
    assert p.title == "RDD: Retrieval-Based Demonstration Decomposer for Planner Alignment in Long-Horizon Tasks"
    assert p.pdf_url == "https://arxiv.org/pdf/2510.14968"
    assert paper(session, "hep-ex/0307015").url == "https://arxiv.org/abs/hep-ex/0307015"


def test_markup_in_titles_stays_text(settings, session, tmp_path):
    atom = """<feed xmlns="http://www.w3.org/2005/Atom">
      <entry><id>http://arxiv.org/abs/2501.00010v1</id>
        <title type="xhtml">Beyond <b>bold</b> claims</title></entry>
      <entry><id>http://arxiv.org/abs/2501.00011v1</id>
        <title>When x&lt;y: &lt;script&gt;alert(1)&lt;/script&gt; &amp; co</title></entry></feed>"""
    ingest(session, write(tmp_path, "markup.atom", atom), settings)
    assert paper(session, "2501.00010").title == "Beyond bold claims"  # not cut at its first tag ("Beyond")
    assert paper(session, "2501.00011").title == "When x<y: <script>alert(1)</script> & co"  # escaped when shown


# Property: arbitrary bytes -----------------------------------------------------------------------------------------

def _sources():
    raw = st.binary(max_size=3000)
    return st.one_of(
        raw,
        raw.map(gzip.compress),  # gzip of anything
        raw.map(lambda b: b"\xef\xbb\xbf" + b),  # a BOM before anything
        st.text(max_size=2000).map(lambda t: t.encode("utf-8")),
        st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                     lambda inner: (st.lists(inner, max_size=4)
                                    | st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                     max_leaves=30).map(lambda v: json.dumps(v).encode()),
        st.sampled_from([b"<feed xmlns='http://www.w3.org/2005/Atom'>", b"<html>", b"[{\"paper\": ", b"\x1f\x8b"])
        .flatmap(lambda head: raw.map(lambda tail: head + tail)),
        st.lists(_hf_items(), max_size=4).map(lambda items: json.dumps(items).encode()),  # daily papers, any values
    )


def _hf_items():
    """Daily-papers items whose values are anything: NUL, lone surrogates, huge or negative counts, odd dates."""
    anything = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
    when = st.datetimes(timezones=st.none() | st.timezones()).map(datetime.isoformat) | st.text(max_size=25)
    paper = st.fixed_dictionaries({"title": st.text(min_size=1, max_size=40) | st.text(max_size=40) | anything},
                                  optional={
        "id": st.sampled_from(["2403.05530", "2403.05530v2", "hep-th/9901001", "x"]) | st.text(max_size=12),
        "summary": st.text(max_size=60) | anything,
        "authors": st.lists(st.text(max_size=10) | st.fixed_dictionaries(
            {"name": st.text(max_size=10) | anything}, optional={"hidden": anything}), max_size=3) | anything,
        "upvotes": st.integers(min_value=0, max_value=10**6) | anything, "publishedAt": when | anything,
        "ai_summary": anything, "ai_keywords": st.lists(anything, max_size=3) | anything,
        "githubRepo": st.text(max_size=30) | anything, "projectPage": st.text(max_size=30) | anything,
        "organization": st.fixed_dictionaries({"fullname": anything}) | anything})
    return st.fixed_dictionaries({"paper": paper}, optional={"numComments": st.integers(min_value=0) | anything,
                                                             "thumbnail": anything, "publishedAt": when})


@hypothesis_settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")), deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=_sources())
def test_arbitrary_bytes_raise_nothing_but_feed_error_and_store_nothing_when_refused(settings, tmp_path, data):
    """Whatever the bytes: a FeedError (and not one paper stored), or a well-formed feed stored as parsed.
    Never another exception: no RecursionError, UnicodeError, ValueError from a datetime, IntegrityError...
    FUZZ_EXAMPLES=5000 (environment) runs more examples than the default 300."""
    source = write(tmp_path, "fuzz.bin", data)
    with Session(db.get_engine(settings.sqlalchemy_url)) as session:
        before = count(session)
        try:
            with db.session_scope(settings.sqlalchemy_url) as inner:
                result = ingest(inner, source, settings)
        except FeedError as error:
            assert "\n" not in error.problem and count(session) == before
            event("refused: " + re.sub(r"[\d'\"(].*", "", error.problem)[:40])
        else:
            assert count(session) == before + result.new
            event("stored")
