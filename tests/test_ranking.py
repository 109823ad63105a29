from sqlmodel import select

from newsletter.clock import today
from newsletter.models import Paper
from newsletter.ranking import recommend
from tests.helpers import add_active, ingest_sample


def titles(picks):
    return [r.paper.title for r in picks]


def test_keywords_and_interests_pick_relevant_papers(session, settings):
    ingest_sample(session)
    ada = add_active(session, "ada@example.org", "compressing the KV cache for long-context inference", "KV cache")
    picks = recommend(session, ada, today(), settings, 5)
    assert "KV cache" in picks[0].paper.abstract or "KV Cache" in picks[0].paper.title
    assert picks[0].reasons == ["Matches your keyword \u201cKV cache\u201d."]
    assert picks == sorted(picks, key=lambda r: -r.score)


def test_excluded_keywords_remove_papers(session, settings):
    ingest_sample(session)
    fan = add_active(session, "fan@example.org", "mixture of experts language models", "mixture-of-experts")
    hater = add_active(session, "hater@example.org", "mixture of experts language models", "mixture-of-experts",
                       excluded_keywords="upcycling")
    assert any("upcycling" in t.lower() for t in titles(recommend(session, fan, today(), settings, 20)))
    kept = recommend(session, hater, today(), settings, 200)
    assert kept and not any("upcycling" in f"{r.paper.title} {r.paper.abstract}".lower() for r in kept)


def test_followed_author_is_boosted_and_explained(session, settings):
    ingest_sample(session)
    paper = session.exec(select(Paper).where(Paper.title == "Density estimation using Real NVP")).one()
    paper.authors = ["Laurent Dinh", "Jascha Sohl-Dickstein", "Samy Bengio"]
    session.commit()
    reader = add_active(session, "r@example.org", "large language models", followed_authors="Samy Bengio")
    picks = {r.paper.id: r for r in recommend(session, reader, today(), settings, 3)}
    assert paper.id in picks
    assert picks[paper.id].reasons[0].startswith("By Samy Bengio, an author you follow")


def test_upvotes_break_ties_but_do_not_beat_relevance(session, settings):
    ingest_sample(session)
    popular = session.exec(select(Paper).where(Paper.title == "Go Wider Instead of Deeper")).one()
    popular.upvotes = 5000
    session.commit()
    reader = add_active(session, "r@example.org", "neural radiance fields for 3D scenes", "NeRF")
    picks = recommend(session, reader, today(), settings, 3)
    assert popular.id not in [r.paper.id for r in picks]
    nobody = add_active(session, "n@example.org")
    assert recommend(session, nobody, today(), settings, 1)[0].paper.id == popular.id


def test_feedback_is_recorded_once_per_paper_and_latest_wins(session, settings):
    import pytest

    from newsletter.errors import InvalidInput
    from newsletter.ranking.feedback import feedback_of, record_feedback

    ingest_sample(session)
    reader = add_active(session, "r@example.org", "diffusion")
    paper_id = recommend(session, reader, today(), settings, 1)[0].paper.id
    record_feedback(session, reader, paper_id, "more")
    record_feedback(session, reader, paper_id, "less")
    assert feedback_of(session, reader.id) == {paper_id: "less"}
    with pytest.raises(InvalidInput):
        record_feedback(session, reader, paper_id, "love")
