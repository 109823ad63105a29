"""Why a paper was picked: one plain sentence in the reader's words; and the word rules behind matching."""

import re

from newsletter.models import Paper
from newsletter.ranking.facets import facets_of
from newsletter.ranking.lexical import phrase_terms, terms
from newsletter.ranking.reasons import Grounds, sentence
from newsletter.ranking.score import CandidatePool, Profile

Q = "\u201c{}\u201d".format


def test_one_reason_per_rule():
    assert sentence(Grounds(authors=["Samy Bengio"])) == "By Samy Bengio, an author you follow."
    assert sentence(Grounds(keywords=["KV cache"])) == f"Matches your keyword {Q('KV cache')}."
    assert sentence(Grounds(keywords=["KV cache", "MoE", "RAG", "LoRA"])) == (
        f"Matches your keywords {Q('KV cache')}, {Q('MoE')} and {Q('RAG')}.")  # at most three named
    assert sentence(Grounds(resembles="Sparse Upcycling")) == f"Close to {Q('Sparse Upcycling')}, a paper you saved."
    assert sentence(Grounds(resembles="Sparse Upcycling", resembles_seed=True)) == (
        f"Close to {Q('Sparse Upcycling')}, one of your seed papers.")
    assert sentence(Grounds(facet="expert routing")) == f"About {Q('expert routing')}, from your interests."
    assert sentence(Grounds(semantic=True)) == "Close in topic to what you described in your interests."
    assert sentence(Grounds()) == "Popular with readers today."
    assert sentence(Grounds(upvotes=1420, trending=True)) == "Trending today with 1,420 upvotes."


def test_two_reasons_at_most_in_one_sentence_and_trending_appended():
    both = Grounds(authors=["A. Author"], keywords=["MoE"], resembles="X", facet="f", semantic=True,
                   upvotes=142, trending=True)
    assert sentence(both) == (f"By A. Author, an author you follow, and matches your keyword {Q('MoE')}; "
                              "trending with 142 upvotes.")
    assert sentence(Grounds(keywords=["MoE"], facet="routing")) == f"Matches your keyword {Q('MoE')}."  # no repeat
    assert sentence(Grounds(upvotes=142, trending=False, keywords=["MoE"])) == f"Matches your keyword {Q('MoE')}."


def test_long_titles_are_shortened_at_a_word():
    title = "A Very Long Title " * 10
    said = sentence(Grounds(resembles=title))
    assert "\u2026\u201d" in said and len(said) < 140


def test_words_meet_across_spelling():
    assert set(terms("fine-tuning")) >= set(terms("finetuning")) and set(terms("fine tuning")) <= set(
        terms("fine-tuning"))
    assert terms("LLMs") == terms("LLM") == ["llm"]
    assert terms("quantizing") == terms("quantization")
    assert terms("Bayes") == ["bay"] and terms("the of and") == []
    assert phrase_terms("mixture-of-experts") == phrase_terms("Mixture of Experts") == ("mixtur", "expert")


def test_facets_are_the_readers_own_pieces():
    facets = facets_of("Sparse MoE LLMs: expert routing and load balancing; upcycling dense checkpoints into MoE. "
                       "I'd like to see papers on serving MoE models efficiently", ["mixture of experts"])
    assert facets == ["mixture of experts", "Sparse MoE LLMs", "expert routing and load balancing",
                      "upcycling dense checkpoints into MoE", "serving MoE models efficiently"]


def paper(i, title, abstract, **extra):
    return Paper(id=i, external_id=f"p{i}", title_key=f"p{i}", title=title, abstract=abstract, **extra)


def test_pool_reasons_name_the_readers_words_never_numbers_or_token_lists():
    papers = [paper(1, "Serving LLM inference with a compressed KV cache", "We compress key-value caches.",
                    authors=["Ada Lovelace"]),
              paper(2, "Expert routing with load balancing", "Routing tokens to experts in sparse layers.",
                    upvotes=300),
              paper(3, "Protein folding", "Structures of proteins from sequences."),
              paper(4, "Graph coloring", "Colouring graphs with few colours."),
              paper(5, "Weather forecasts", "Predicting rain.")]
    pool = CandidatePool(papers)
    reader = Profile(interests="Mixture of experts: expert routing and load balancing", keywords=["KV caches", "LLMs"],
                     followed_authors=["ada lovelace"])
    picks = pool.rank(reader, 5)
    reasons = {r.paper.id: r.reasons for r in picks}
    assert reasons[1] == [f"By Ada Lovelace, an author you follow, and matches your keywords {Q('KV caches')} and "
                          f"{Q('LLMs')}."]
    assert reasons[2] == [f"About {Q('expert routing and load balancing')}, from your interests; "
                          "trending with 300 upvotes."]
    for r in picks:
        assert len(r.reasons) == 1 and r.reasons[0].endswith(".")
        assert not re.search(r"\d\.\d|semantic|score", r.reasons[0])  # no similarity numbers, no debug words


def test_idf_comes_from_the_stored_corpus_when_given():
    from newsletter.ranking.lexical import Corpus, TermIndex

    pool = ["diffusion models for images", "graph neural networks"]
    corpus = Corpus()
    for text in pool + ["diffusion of innovations"] * 50 + ["graph coloring"]:
        corpus.add(text)
    alone, counted = TermIndex.build(pool, kind="bm25"), TermIndex.build(pool, kind="bm25", corpus=corpus)
    assert alone.term_idf("diffus") == alone.term_idf("graph")  # two papers cannot tell the words apart
    assert counted.term_idf("diffus") < counted.term_idf("graph")  # the stored papers can
    assert counted.documents == 53 and counted.weights.shape == (len(counted.vocabulary), 2)


def test_facets_are_stored_with_the_subscriber_and_redone_only_when_the_profile_changes(session, settings):
    from newsletter.ranking import profiles_for
    from subscribers.profiles import update_profile
    from tests.helpers import add_active

    reader = add_active(session, "r@example.org", "Sparse MoE LLMs: expert routing; upcycling", "MoE")
    [profile] = profiles_for(session, [reader], settings)
    stored = dict(reader.profile_facets)
    assert stored["facets"] == ["MoE", "Sparse MoE LLMs", "expert routing", "upcycling"]
    assert [facet for facet, _ in profile.facets()] == ["Sparse MoE LLMs", "expert routing", "upcycling"]
    reader.profile_facets = {**stored, "facets": ["kept"]}  # same key: not worked out again
    assert profiles_for(session, [reader], settings)[0].facet_texts == ["kept"]
    update_profile(session, reader, interests="long context")
    assert profiles_for(session, [reader], settings)[0].facet_texts == ["MoE", "long context"]
