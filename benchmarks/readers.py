"""Realistic, all-distinct reader profiles and extra papers for a day, for the scale benchmarks.

`profiles(n)`: research areas x methods x applications x phrasings (first person, terse, role-led), each text
distinct; `extra_papers(n)`: papers recombined from the bundled sample corpus (a title's name with another's
subtitle, sentences of two or three abstracts), as Hugging Face daily-papers JSON items.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator

AREAS = [
    "large language models", "retrieval-augmented generation", "diffusion models", "3D reconstruction",
    "Gaussian splatting", "robot manipulation", "reinforcement learning", "graph neural networks",
    "speech recognition", "machine translation", "protein structure prediction", "medical image segmentation",
    "autonomous driving", "federated learning", "differential privacy", "code generation", "vision-language models",
    "video generation", "time series forecasting", "recommender systems", "knowledge graphs", "causal inference",
    "Bayesian optimization", "neural architecture search", "model compression", "mixture of experts",
    "state space models", "long-context inference", "instruction tuning", "RLHF and preference optimization",
    "AI alignment", "mechanistic interpretability", "adversarial robustness", "continual learning",
    "few-shot learning", "self-supervised learning", "point cloud understanding", "human pose estimation",
    "text-to-speech", "music generation", "weather forecasting", "materials discovery", "drug discovery",
    "mathematical reasoning", "theorem proving", "LLM agents and tool use", "embodied AI",
    "document understanding", "hallucination detection", "evaluation benchmarks", "image editing",
    "object detection", "semantic segmentation", "neural rendering", "multilingual NLP", "information retrieval",
]
METHODS = [
    "transformers", "contrastive learning", "sparse attention", "low-rank adaptation", "knowledge distillation",
    "Monte Carlo tree search", "variational inference", "neural fields", "graph transformers", "policy gradients",
    "in-context learning", "chain-of-thought prompting", "quantization", "pruning", "synthetic data",
    "curriculum learning", "flow matching", "energy-based models", "speculative decoding", "KV cache compression",
    "test-time scaling", "reward modeling", "masked autoencoders", "optimal transport", "scaling laws",
]
APPLICATIONS = [
    "healthcare", "education", "climate science", "warehouse robotics", "legal documents", "finance",
    "scientific discovery", "agriculture", "chemistry", "astronomy", "e-commerce search", "mobile devices",
    "edge hardware", "low-resource languages", "accessibility", "cybersecurity", "games", "satellite imagery",
    "genomics", "neuroscience", "customer support", "software engineering", "radiology", "autonomous vehicles",
]
PHRASINGS = [
    "I work on {a} and {b}, mostly with {m}; lately interested in {app}.",
    "{a}; {m}; {app}",
    "PhD student in {a}. Looking for papers using {m} for {app}.",
    "Anything about {a} applied to {app}, especially {m} and {b}.",
    "{m} for {a} in {app}",
    "I build {app} systems with {a}. Keen on {m} and {b}.",
    "Researcher: {a} / {b} / {m}",
    "Practitioner in {app}; I follow {a} and {m} closely.",
    "efficient {a}, {m}, {b} for {app}",
    "My lab does {a} with {m}, and we care about {app}.",
    "New papers on {a} and {b} ({m}), ideally with {app} experiments.",
    "ML engineer. {a}, {m}. Deploying in {app}.",
]


def profiles(count: int, seed: int = 17) -> Iterator[tuple[str, list[str]]]:
    """`count` distinct (interests, keywords) pairs."""
    for text, keywords, _ in profiles_with_facets(count, seed):
        yield text, keywords


def profiles_with_facets(count: int, seed: int = 17) -> Iterator[tuple[str, list[str], list[str]]]:
    """`profiles` with the facet phrases each was written from (areas, method, application, keywords)."""
    rng = random.Random(seed)
    seen: set[str] = set()
    while len(seen) < count:
        a, b = rng.sample(AREAS, 2)
        method, application, phrasing = rng.choice(METHODS), rng.choice(APPLICATIONS), rng.choice(PHRASINGS)
        text = phrasing.format(a=a, b=b, m=method, app=application)
        keywords = rng.sample(METHODS + AREAS, rng.choice([0, 0, 1, 2]))
        key = f"{text}|{','.join(keywords)}"
        if key in seen:
            continue
        seen.add(key)
        used = [f for f, name in ((a, "{a}"), (b, "{b}"), (method, "{m}"), (application, "{app}")) if name in phrasing]
        yield text, keywords, used + keywords


def sample_papers(texts: list[str]) -> list[tuple[str, str]]:
    """(title, abstract) pairs of the sample listings (a title line followed by its abstract line)."""
    lines = [line.strip() for text in texts for line in text.splitlines() if line.strip()]
    return [(title, abstract) for title, abstract in zip(lines, lines[1:])
            if len(title) < 250 and len(abstract) > 400 and not title.endswith(".")]


def extra_papers(base: list[tuple[str, str]], count: int, seed: int = 29) -> list[dict]:
    """`count` papers recombined from `base`, as daily-papers JSON items with distinct titles."""
    rng = random.Random(seed)
    names = [t.split(":", 1)[0] for t, _ in base if ":" in t and len(t.split(":", 1)[0]) < 30]
    subtitles = [t.split(":", 1)[1].strip() if ":" in t else t for t, _ in base]
    sentences = [re.split(r"(?<=\.)\s+", abstract) for _, abstract in base]
    items: list[dict] = []
    titles = {t for t, _ in base}
    while len(items) < count:
        title = f"{rng.choice(names)}-{rng.randint(2, 9)}: {rng.choice(subtitles)}"
        if title in titles:
            continue
        titles.add(title)
        parts = [s for source in rng.sample(sentences, 3) for s in source[: rng.randint(2, 4)]]
        items.append({"title": title, "summary": " ".join(parts), "upvotes": rng.randint(0, 40),
                      "authors": [{"name": f"Author {rng.randint(1, 5000)}"} for _ in range(rng.randint(2, 6))]})
    return items
