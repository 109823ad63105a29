"""Seed papers: a profile started from papers the reader wrote or liked (CLI, sign-up page, preferences page)."""

import json

import pytest
from sqlmodel import select

from newsletter.clock import today
from newsletter.errors import InvalidInput
from newsletter.ingest import ingest
from newsletter.models import Paper
from newsletter.ranking import recommend
from newsletter.ranking.seeds import resolve, seed_paper_ids
from subscribers.profiles import find_subscriber
from tests.conftest import FIXTURES
from tests.helpers import add_active, csrf_token, ingest_sample

KV = "KV-Cache Compression <b>for</b> Long-Context LLMs & Beyond"  # 2403.05530 in the HF fixture
MUP = "u-\u03bcP: The Unit-Scaled Maximal Update Parametrization"  # 2403.06000
UPCYCLING = "Sparse Upcycling: Training Mixture-of-Experts from Dense Checkpoints"  # sample corpus, no arXiv id
COMMAS = "Sparse, Dense, and Attentional Representations for Text Retrieval"  # a title with commas of its own


@pytest.fixture
def stored(session, settings):
    ingest(session, str(FIXTURES / "hf_daily_papers.json"), settings)
    ingest_sample(session)
    session.commit()
    return {p.title: p for p in session.exec(select(Paper))}


def test_references_resolve_by_arxiv_id_in_any_form_and_by_title(session, stored):
    papers, unresolved = resolve(session, "2403.05530v3, arXiv:2403.06000; https://arxiv.org/abs/2403.05530v1\n"
                                          "sparse upcycling: training MIXTURE-OF-EXPERTS from dense checkpoints")
    assert unresolved == []
    assert [p.title for p in papers] == [KV, MUP, UPCYCLING]  # in order, the same paper named twice once


def test_a_title_with_commas_of_its_own_is_found(session, stored):
    assert COMMAS in stored
    papers, unresolved = resolve(session, f"2403.06000, {COMMAS}, {UPCYCLING}")
    assert [p.title for p in papers] == [MUP, COMMAS, UPCYCLING] and unresolved == []


def test_unresolved_references_are_listed_back_and_nothing_is_kept(session, stored):
    papers, unresolved = resolve(session, "2403.05530, 9999.99999v2, A Paper Nobody Wrote")
    assert [p.title for p in papers] == [KV] and unresolved == ["9999.99999v2", "A Paper Nobody Wrote"]
    with pytest.raises(InvalidInput) as error:
        seed_paper_ids(session, "2403.05530, 9999.99999v2, A Paper Nobody Wrote")
    assert "\u201c9999.99999v2\u201d" in str(error.value) and "\u201cA Paper Nobody Wrote\u201d" in str(error.value)


def test_cli_add_and_update_with_seed_papers(session, stored, cli):
    result = cli("subscribers", "add", "ada@example.org", "--interests", "efficient LLMs",
                 "--seed-papers", f"2403.05530v2, {UPCYCLING}")
    assert result.exit_code == 0, result.output
    assert f"seed papers: \u201c{KV}\u201d; \u201c{UPCYCLING}\u201d" in " ".join(result.output.split())
    ada = find_subscriber(session, "ada@example.org")
    assert ada is not None
    session.refresh(ada)
    assert ada.seed_paper_ids == [stored[KV].id, stored[UPCYCLING].id]

    refused = cli("subscribers", "update", "ada@example.org", "--seed-papers", "2403.06000, Not A Stored Title")
    assert refused.exit_code == 1 and "\u201cNot A Stored Title\u201d" in refused.output
    session.refresh(ada)
    assert ada.seed_paper_ids == [stored[KV].id, stored[UPCYCLING].id]  # nothing saved from a refused update

    assert cli("subscribers", "update", "ada@example.org", "--seed-papers", "2403.06000").exit_code == 0
    session.refresh(ada)
    assert ada.seed_paper_ids == [stored[MUP].id]
    assert cli("subscribers", "update", "ada@example.org", "--seed-papers", "").exit_code == 0
    session.refresh(ada)
    assert ada.seed_paper_ids == []


def test_seed_papers_steer_the_ranking_and_are_never_recommended(session, stored, settings, cli):
    reader = add_active(session, "r@example.org", "machine learning")
    before = [r.paper.title for r in recommend(session, reader, today(), settings, 10)]
    session.commit()  # the profile vector stored by the first ranking
    moe = [t for t in stored if "mixture-of-experts" in t.lower() or "mixture of experts" in t.lower()]
    assert cli("subscribers", "update", "r@example.org", "--seed-papers", UPCYCLING).exit_code == 0
    session.refresh(reader)
    picks = recommend(session, reader, today(), settings, 10)
    after = [r.paper.title for r in picks]
    assert UPCYCLING not in after and UPCYCLING not in [r.paper.title for r in
                                                        recommend(session, reader, today(), settings, 1000)]
    assert sum(t in moe for t in after) > sum(t in moe for t in before)
    named = [r.reasons[0] for r in picks if "one of your seed papers" in r.reasons[0]]
    assert named and all(f"\u201c{UPCYCLING}\u201d" in reason for reason in named)

    rows = json.loads(cli("recommend", "r@example.org", "--json").output)
    assert rows and all(set(row) == {"id", "paper_id", "title", "score", "reasons", "url"} for row in rows)
    assert all(isinstance(row["reasons"], list) and len(row["reasons"]) == 1 for row in rows)


def test_judged_papers_are_never_recommended_again(session, stored, settings):
    from newsletter.ranking.feedback import record_feedback

    reader = add_active(session, "r@example.org", "mixture of experts", "MoE")
    first = recommend(session, reader, today(), settings, 3)
    record_feedback(session, reader, first[0].paper.id, "more")
    record_feedback(session, reader, first[1].paper.id, "less")
    again = {r.paper.id for r in recommend(session, reader, today(), settings, 1000)}
    assert first[0].paper.id not in again and first[1].paper.id not in again


def sign_up(web, email, **fields):
    data = {"csrf_token": csrf_token(web, "/"), "email": email, "interests": "", "keywords": "",
            "frequency": "daily", "send_hour": "7", "timezone": "UTC", **fields}
    return web.post("/subscribe", data=data)


def test_sign_up_page_takes_seed_papers_and_lists_unresolved_ones_back(session, stored, web, sink):
    assert 'name="seed_papers"' in web.get("/").text
    refused = sign_up(web, "ada@example.org", interests="LLM inference", seed_papers="2403.05530\nNo Such Paper")
    assert refused.status_code == 422
    assert "\u201cNo Such Paper\u201d" in refused.text and "2403.05530\nNo Such Paper</textarea>" in refused.text
    assert find_subscriber(session, "ada@example.org") is None

    assert sign_up(web, "ada@example.org", seed_papers=f"2403.05530v2\n{UPCYCLING}").status_code == 200
    ada = find_subscriber(session, "ada@example.org")
    assert ada is not None and ada.seed_paper_ids == [stored[KV].id, stored[UPCYCLING].id]


def test_preferences_page_shows_and_changes_seed_papers(session, stored, web, settings):
    from newsletter.links import signed_path

    reader = add_active(session, "r@example.org", "LLMs", seed_paper_ids=[stored[KV].id, stored[UPCYCLING].id])
    path = signed_path("preferences", reader, settings)
    page = web.get(path).text
    assert f"2403.05530\n{UPCYCLING}</textarea>" in page
    values = {"csrf_token": csrf_token(web, path), "interests": "LLMs", "keywords": "", "followed_authors": "",
              "excluded_keywords": "", "frequency": "daily", "send_hour": "7", "timezone": "UTC"}
    refused = web.post(path, data={**values, "seed_papers": "Nothing Like This"})
    assert refused.status_code == 422 and "\u201cNothing Like This\u201d" in refused.text
    assert web.post(path, data={**values, "seed_papers": "2403.06000"}).status_code == 200
    session.refresh(reader)
    assert reader.seed_paper_ids == [stored[MUP].id]
