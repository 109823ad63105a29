"""The feedback model's background: 16 k-means prototypes of the pool (ours) against 50 sampled papers (baseline).

    python benchmarks/feedback_quality.py [--seeds 8] [--vectors FILE.npy]

A reader saves 3 papers of one topic and rejects 2 of another (topics found by phrase in the bundled sample
corpus, MiniLM vectors); their own model alone then ranks the rest of the corpus. Reported per background: the
share of its top 20 that carries the saved topic (higher is better), the share that carries the rejected one
(lower is better), and the time to fit a batch of 20 such readers. Needs the `semantic` extra.
The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.ranking_quality import paper_vectors, sample_papers  # noqa: E402
from newsletter.config import Settings  # noqa: E402
from newsletter.ranking import embeddings  # noqa: E402
from newsletter.ranking.feedback import FeedbackModel, background_prototypes  # noqa: E402

TOPICS = [("mixture of experts", "diffusion"), ("gaussian splatting", "language model"), ("diffusion", "retrieval"),
          ("retrieval", "reinforcement"), ("reinforcement", "gaussian"), ("quantization", "video"),
          ("video", "quantization"), ("kv cache", "image"), ("agent", "3d"), ("speech", "vision")]
TOP = 20
SAMPLED = 50


def readers(texts: list[str], rng: np.random.Generator) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """(saved topic, rejected topic, 3 saved paper indices, 2 rejected ones) per topic pair the corpus can serve."""
    found = []
    for like, dislike in TOPICS:
        liked = [i for i, t in enumerate(texts) if like in t]
        disliked = [i for i, t in enumerate(texts) if dislike in t and like not in t]
        if len(liked) >= 6 and len(disliked) >= 3:
            found.append((like, dislike, rng.choice(liked, 3, replace=False), rng.choice(disliked, 2, replace=False)))
    return found


def evaluate(vectors: np.ndarray, texts: list[str], background: tuple[np.ndarray, np.ndarray],
             seeds: int) -> tuple[float, float]:
    saved_share, rejected_share = [], []
    for seed in range(seeds):
        for like, dislike, liked, disliked in readers(texts, np.random.default_rng(seed)):
            model = FeedbackModel.fit_many([vectors[liked]], [vectors[disliked]], *background)
            judged = set(liked) | set(disliked)
            top = [i for i in np.argsort(-model.predict(vectors)[0]) if i not in judged][:TOP]
            saved_share.append(np.mean([like in texts[i] for i in top]))
            rejected_share.append(np.mean([dislike in texts[i] for i in top]))
    return float(np.mean(saved_share)), float(np.mean(rejected_share))


def fit_ms(vectors: np.ndarray, texts: list[str], background: tuple[np.ndarray, np.ndarray]) -> float:
    batch = (readers(texts, np.random.default_rng(0)) * 20)[:20]
    liked, disliked = [vectors[r[2]] for r in batch], [vectors[r[3]] for r in batch]
    started = time.perf_counter()
    for _ in range(20):
        FeedbackModel.fit_many(liked, disliked, *background)
    return (time.perf_counter() - started) / 20 * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8, help="random draws of each reader's judged papers")
    parser.add_argument("--vectors", type=Path, help="reuse (or save) the corpus embeddings in this .npy file")
    args = parser.parse_args()
    settings = Settings()
    if not embeddings.semantic_available(settings):
        sys.exit(embeddings.semantic_status(settings))
    papers = sample_papers()
    vectors = paper_vectors(papers, args.vectors).astype(np.float32)
    texts = [f"{p.title} {p.abstract}".casefold() for p in papers]

    sampled = vectors[np.random.default_rng(0).choice(len(vectors), SAMPLED, replace=False)]
    backgrounds = {"prototypes_16": background_prototypes(vectors),
                   f"sampled_{SAMPLED}": (sampled, np.full(SAMPLED, 1 / SAMPLED))}
    figures: dict = {"benchmark": "feedback_quality", "papers": len(papers), "seeds": args.seeds,
                     "readers_per_seed": len(readers(texts, np.random.default_rng(0)))}
    print(f"{len(papers)} papers, {figures['readers_per_seed']} readers x {args.seeds} draws; top {TOP} of each "
          "reader's own model")
    print(f"{'background':>14}  {'saved topic':>11}  {'rejected topic':>14}  {'fit 20 readers':>14}")
    for name, background in backgrounds.items():
        saved, rejected = evaluate(vectors, texts, background, args.seeds)
        milliseconds = fit_ms(vectors, texts, background)
        print(f"{name:>14}  {saved:11.3f}  {rejected:14.3f}  {milliseconds:11.2f} ms")
        figures[name] = {"saved_topic_share": round(saved, 4), "rejected_topic_share": round(rejected, 4),
                         "fit_ms_20_readers": round(milliseconds, 2)}
    ours, baseline = figures["prototypes_16"], figures[f"sampled_{SAMPLED}"]
    figures["saved_share_ratio_vs_sampled"] = round(ours["saved_topic_share"] / baseline["saved_topic_share"], 3)
    figures["fit_speedup_vs_sampled"] = round(baseline["fit_ms_20_readers"] / ours["fit_ms_20_readers"], 2)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
