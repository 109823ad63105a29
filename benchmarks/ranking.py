"""Ranking speed: score every subscriber against every candidate and pick each one's top 10, in chunks.

    python benchmarks/ranking.py [--subscribers 100000] [--papers 1000] [--embed 128]

Papers are the bundled sample corpus cycled to --papers (so BM25 and phrase matching see real text); paper and
profile vectors (and the profiles' facets) are precomputed, as they are stored (random unit vectors: speed does
not depend on their values). Subscribers get
synthetic but realistic profiles: interests text, keywords, some followed authors, excluded keywords, papers
already sent and feedback. Reported: time to rank everyone (matrix part: scores, exclusions, MMR top 10), the time
to also write every pick's reasons, peak memory (RSS), and the embedding throughput at ingest measured on --embed
real abstracts with the MiniLM model. The baseline is the same ranker called one subscriber at a time, timed on
a sample and scaled up. The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletter.config import Settings  # noqa: E402
from newsletter.ingest import parse_source, read_source, sample_sources  # noqa: E402
from newsletter.models import Paper  # noqa: E402
from newsletter.ranking import embeddings  # noqa: E402
from newsletter.ranking.facets import facets_of  # noqa: E402
from newsletter.ranking.score import CHUNK, THREADS, CandidatePool, Profile  # noqa: E402

TOPICS = ["dense retrieval for web search", "mixture of experts language models", "scaling laws for pretraining",
          "long context and KV cache compression", "LLM quantization and pruning", "3D Gaussian splatting",
          "mechanistic interpretability", "multimodal large language models", "state space models like Mamba",
          "recommender systems", "mathematical reasoning with chain-of-thought", "self-supervised vision",
          "diffusion models for images", "reinforcement learning from human feedback", "graph neural networks",
          "speech synthesis", "code generation with LLMs", "efficient transformers", "federated learning",
          "knowledge distillation"]
KEYWORDS = ["MoE", "KV cache", "RAG", "SPLADE", "NeRF", "Mamba", "LoRA", "quantization", "scaling laws", "CLIP",
            "diffusion", "RLHF", "sparse autoencoders", "contrastive", "benchmark", "distillation", "pruning",
            "long context", "MLLM", "dense retrieval", "chain-of-thought", "tokenizer", "vision transformer",
            "state space", "recommendation", "3D", "agents", "hallucination", "multilingual", "compression"]
AUTHORS = [f"Author {i}" for i in range(300)]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def unit_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    rows = rng.standard_normal((n, embeddings.DIMENSIONS)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def make_papers(n: int, rng: np.random.Generator) -> list[Paper]:
    corpus = [p for source in sample_sources() for p in parse_source(read_source(source), source)]
    now = datetime.now(UTC)
    vectors = unit_rows(rng, n)
    papers = []
    for i in range(n):
        base = corpus[i % len(corpus)]
        papers.append(Paper(id=i + 1, external_id=f"bench:{i}", title_key=f"{base.title_key} {i}", title=base.title,
                            abstract=base.abstract, authors=list(rng.choice(AUTHORS, 3)),
                            upvotes=int(rng.integers(0, 200)),
                            ingested_at=now - timedelta(hours=int(rng.integers(0, 160))),
                            embedding=embeddings.to_bytes(vectors[i]), embedding_model=embeddings.MODEL_NAME))
    return papers


def make_profiles(n: int, papers: list[Paper], rng: np.random.Generator) -> list[Profile]:
    pick = random.Random(7)
    vectors = unit_rows(rng, n)
    profiles = []
    for i in range(n):
        interests = "I work on " + " and ".join(pick.sample(TOPICS, 2)) + ", especially " + pick.choice(TOPICS)
        keywords = pick.sample(KEYWORDS, pick.randint(1, 4))
        profile = Profile(
            interests=interests,
            keywords=keywords,
            facet_texts=facets_of(interests, keywords),  # stored with the subscriber, like the vector
            followed_authors=pick.sample(AUTHORS, 2) if pick.random() < 0.1 else [],
            excluded_keywords=[pick.choice(KEYWORDS)] if pick.random() < 0.1 else [],
            vector=vectors[i],
            sent={pick.randrange(1, len(papers) + 1) for _ in range(10)} if pick.random() < 0.3 else set(),
        )
        if pick.random() < 0.01:  # 1% have given feedback
            profile.liked = pick.sample(papers, 3)
            profile.disliked = pick.sample(papers, 2)
        profiles.append(profile)
    return profiles


def rank_all(pool: CandidatePool, profiles: list[Profile], chunk: int, threads: int) -> tuple[float, int]:
    started = time.perf_counter()
    picked = sum(int((ranked.indices >= 0).sum()) for _, ranked in pool.rank_chunks(profiles, 10, chunk, threads))
    return time.perf_counter() - started, picked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--papers", type=int, default=1000)
    parser.add_argument("--chunk", type=int, default=CHUNK)
    parser.add_argument("--threads", type=int, default=THREADS, help="chunks scored at once")
    parser.add_argument("--baseline-sample", type=int, default=500, help="subscribers ranked one at a time")
    parser.add_argument("--embed", type=int, default=128, help="real abstracts embedded to measure throughput")
    args = parser.parse_args()
    rng = np.random.default_rng(42)

    started = time.perf_counter()
    papers = make_papers(args.papers, rng)
    profiles = make_profiles(args.subscribers, papers, rng)
    setup_seconds = time.perf_counter() - started
    started = time.perf_counter()
    pool = CandidatePool(papers, semantic=True)
    pool_seconds = time.perf_counter() - started
    rss_before = rss_mb()

    rank_seconds, picked = rank_all(pool, profiles, args.chunk, args.threads)
    rss_after_rank = rss_mb()
    sample = profiles[: args.baseline_sample]
    one_at_a_time, _ = rank_all(pool, sample, 1, 1)
    baseline_seconds = one_at_a_time * len(profiles) / len(sample)

    started = time.perf_counter()
    with_reasons = sum(len(recs) for recs in pool.rank_many(profiles[:10_000], 10))
    reasons_seconds = (time.perf_counter() - started) * len(profiles) / min(len(profiles), 10_000)

    throughput = None
    if embeddings.semantic_available(Settings()):
        texts = [embeddings.paper_text(p) for p in papers[: args.embed]]
        embeddings.encode(texts[:2])  # model load and warm-up are not throughput
        started = time.perf_counter()
        embeddings.encode(texts[2:])
        throughput = (len(texts) - 2) / (time.perf_counter() - started)

    print(f"{args.subscribers} subscribers x {args.papers} papers, chunks of {args.chunk}, {args.threads} at a time")
    print(f"  build synthetic data         {setup_seconds:8.2f} s")
    print(f"  index candidate pool         {pool_seconds:8.2f} s")
    print(f"  rank everyone (top 10)       {rank_seconds:8.2f} s   ({picked} picks)")
    print(f"  one at a time (baseline)     {baseline_seconds:8.2f} s   (timed on {len(sample)}, scaled)")
    print(f"  + reasons for every pick     {reasons_seconds:8.2f} s   "
          f"(timed on 10000 with {with_reasons} picks, scaled)")
    print(f"  peak RSS                     {rss_after_rank:8.0f} MB  (before ranking {rss_before:.0f} MB)")
    if throughput:
        print(f"  embedding throughput         {throughput:8.1f} papers/s "
              f"({args.embed - 2} real abstracts, MiniLM, CPU)")
    print(json.dumps({"benchmark": "ranking", "subscribers": args.subscribers, "papers": args.papers,
                      "chunk": args.chunk, "threads": args.threads, "rank_seconds": round(rank_seconds, 3),
                      "baseline_one_at_a_time_seconds": round(baseline_seconds, 2),
                      "speedup_vs_baseline": round(baseline_seconds / rank_seconds, 1),
                      "reasons_seconds_extrapolated": round(reasons_seconds, 2),
                      "peak_rss_mb": round(rss_after_rank), "rss_before_ranking_mb": round(rss_before),
                      "embedding_papers_per_second": round(throughput, 1) if throughput else None}))


if __name__ == "__main__":
    main()
