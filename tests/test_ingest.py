import http.server
import threading

import pytest
from sqlmodel import func, select

from newsletter.errors import FeedError
from newsletter.ingest import detect_format, ingest, sample_sources
from newsletter.models import Paper
from tests.conftest import FIXTURES

HF = str(FIXTURES / "hf_daily_papers.json")
ATOM = str(FIXTURES / "arxiv.atom")


def paper_count(session) -> int:
    return session.exec(select(func.count()).select_from(Paper)).one()


def test_hf_json_fields(settings, session):
    result = ingest(session, HF, settings)
    assert (result.seen, result.new) == (3, 3)
    paper = session.exec(select(Paper).where(Paper.external_id == "2403.05530")).one()
    assert paper.title == "KV-Cache Compression <b>for</b> Long-Context LLMs & Beyond"
    assert paper.authors == ["Alice Zhang", "李明", "Bob Stone", "Carol Diaz"]
    assert paper.upvotes == 42 and paper.comments == 3
    assert paper.url == "https://arxiv.org/abs/2403.05530"  # the canonical page: arXiv's, when the id is known
    assert paper.pdf_url == "https://arxiv.org/pdf/2403.05530"
    assert paper.code_url == "https://github.com/example/kvcomp"
    assert paper.keywords == ["KV cache", "long context"]
    assert paper.published_at.year == 2024 and paper.abstract.endswith("keeps $O(n)$ memory.")


def test_arxiv_atom_fields(settings, session):
    result = ingest(session, ATOM, settings)
    assert result.new == 2
    paper = session.exec(select(Paper).where(Paper.external_id == "2403.08000")).one()
    assert paper.title == "Sparse Upcycling: Training Mixture-of-Experts from Dense Checkpoints"
    assert paper.authors == ["Aran Komatsuzaki", "Joan Puigcerver"]
    assert paper.url == "https://arxiv.org/abs/2403.08000" and paper.pdf_url == "https://arxiv.org/pdf/2403.08000"
    assert paper.keywords == ["cs.LG", "cs.CL"]


def test_sample_listing_is_deduplicated(settings, session):
    results = [ingest(session, source, settings) for source in sample_sources()]
    assert sum(r.seen for r in results) == 452
    assert paper_count(session) == 436  # the same paper appears in several listings
    assert sum(r.new for r in results) == 436


def test_reingest_is_idempotent_and_updates_upvotes(settings, session, tmp_path):
    ingest(session, HF, settings)
    again = ingest(session, HF, settings)
    assert (again.new, paper_count(session)) == (0, 3)
    bumped = (FIXTURES / "hf_daily_papers.json").read_text().replace('"upvotes": 42', '"upvotes": 99')
    (tmp_path / "later.json").write_text(bumped)
    later = ingest(session, str(tmp_path / "later.json"), settings)
    assert later.updated == 1
    assert session.exec(select(Paper.upvotes).where(Paper.external_id == "2403.05530")).one() == 99


def test_same_paper_from_two_formats_is_stored_once(settings, session):
    ingest(session, HF, settings)
    result = ingest(session, ATOM, settings)  # 2403.05530 is in both
    assert result.new == 1
    assert paper_count(session) == 4


def test_title_dedupe_upgrades_to_arxiv_id(settings, session, tmp_path):
    listing = tmp_path / "listing.txt"
    listing.write_text("Matryoshka  Representation learning\nLearned representations are central.\n")
    ingest(session, str(listing), settings)
    ingest(session, HF, settings)
    paper = session.exec(select(Paper).where(Paper.title_key == "matryoshka representation learning")).one()
    assert paper.external_id == "2403.07000" and paper.upvotes == 5


@pytest.mark.parametrize("name, content, problem", [
    ("broken.json", '[{"paper": {"id": "1", "title": "x"', "not valid JSON"),
    ("notalist.json", '{"hello": 1}', "expected a JSON list"),
    ("badvotes.json", '[{"paper": {"id": "2403.1", "title": "T", "upvotes": "many"}}]', "upvotes"),
    ("notitle.json", '[{"paper": {"id": "2403.1"}}, {"paper": {"title": ""}}]', "item 0 has no title"),
    ("broken.atom", "<feed xmlns='http://www.w3.org/2005/Atom'><entry><title>x</entry></feed>", "not well-formed XML"),
    ("rss.xml", "<rss><channel/></rss>", "expected an Atom <feed>"),
    ("bomb.xml", '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><feed/>', "DOCTYPE"),
    ("odd.txt", "A title\nIts abstract, long enough.\nA title with no abstract\n", "line 3"),
    ("empty.txt", "Subscribe\n\nGet trending papers in your email inbox!\n", "no papers found"),
])
def test_malformed_source_names_itself_and_writes_nothing(settings, session, tmp_path, name, content, problem):
    ingest(session, HF, settings)
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(FeedError) as error:
        ingest(session, str(path), settings)
    assert str(path) in str(error.value) and problem in str(error.value)
    assert paper_count(session) == 3


def test_a_bad_item_late_in_a_feed_stores_none_of_it(settings, session, tmp_path):
    good = '{"paper": {"id": "2403.0000%d", "title": "Paper %d", "upvotes": 1}}'
    items = [good % (i, i) for i in range(5)] + ['{"paper": {"id": "2403.9", "title": "Bad", "upvotes": -1}}']
    path = tmp_path / "partly-bad.json"
    path.write_text("[" + ",".join(items) + "]")
    with pytest.raises(FeedError, match="item 5"):
        ingest(session, str(path), settings)
    assert paper_count(session) == 0


def test_missing_file_and_non_utf8(settings, session, tmp_path):
    with pytest.raises(FeedError, match="no such file"):
        ingest(session, str(tmp_path / "nope.json"), settings)
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 title\nabstract text\n".encode("latin-1"))
    with pytest.raises(FeedError, match="not UTF-8"):
        ingest(session, str(tmp_path / "latin1.txt"), settings)


def test_forced_format_overrides_detection(settings, session, tmp_path):
    with pytest.raises(FeedError, match="not valid JSON"):
        ingest(session, ATOM, settings, format="hf-json")
    assert detect_format(" \n[{}]") == "hf-json" and detect_format("<?xml") == "arxiv-atom"
    assert detect_format("Title\nAbstract") == "listing"


@pytest.fixture
def http_server():
    """A real HTTP server on loopback serving the fixtures folder."""
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(FIXTURES), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_ingest_from_url(settings, session, http_server):
    result = ingest(session, f"{http_server}/hf_daily_papers.json", settings)
    assert result.new == 3
    with pytest.raises(FeedError, match="HTTP 404"):
        ingest(session, f"{http_server}/missing.json", settings)
    assert paper_count(session) == 3
