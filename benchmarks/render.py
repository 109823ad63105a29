"""Per-recipient cost of an edition email: naive (compile everything per recipient) against ours (fill + MIME).

    python benchmarks/render.py [--recipients 2000] [--naive-recipients N] [--seed 7]

naive: Jinja-render the MJML source with the recipient's data, compile it (MJML + premailer), render the text
       part, and serialize with the `email` package (EmailMessage(policy=SMTP).as_bytes()).
ours:  render_edition (fill the template compiled once, HTML + text) + build_message (hand-written MIME).
Both get the same per-recipient data (10 random sample papers with every field filled, 5 trending, signed
links), built before timing. Ours reuses what is the same for every recipient of a paper (its title, authors,
abstract and links, rendered once per paper); "cold caches" measures ours with those caches emptied before
every message, i.e. the cost when every paper is new. Figures are per message: wall time (perf_counter) and this
thread's CPU time (thread_time, less disturbed by other processes on a shared machine). The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from newsletter.config import Settings
from newsletter.delivery.mime import build_message
from newsletter.render import render_context, render_edition
from newsletter.render.compile import (
    clear_value_caches,
    compile_mjml,
    compiled_html_template,
    html_env,
    template_sources,
    text_template,
)
from tests.support.samples import random_edition

SENDER = "Paper Digest <digest@example.org>"


def list_headers(recipient: int) -> dict[str, str]:
    return {
        "List-Unsubscribe": f"<https://digest.example.org/unsubscribe/token-for-recipient-{recipient:06d}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": "Paper Digest <digest.example.org>",
        "Precedence": "bulk",
    }


def naive(kwargs: dict, number: int) -> bytes:
    source, css = template_sources()
    context = render_context(**kwargs)
    html = compile_mjml(html_env().from_string(source).render(context), css)
    message = EmailMessage(policy=SMTP)
    message["From"] = SENDER
    message["To"] = kwargs["recipient"]
    message["Subject"] = context["subject"]
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = f"<bench-{number}@example.org>"
    for name, value in list_headers(number).items():
        message[name] = value
    message.set_content(text_template().render(context))
    message.add_alternative(html, subtype="html")
    return message.as_bytes()


def ours(kwargs: dict, number: int) -> bytes:
    rendered = render_edition(**kwargs)
    return build_message(rendered, sender=SENDER, to=kwargs["recipient"], message_id=f"<bench-{number}@example.org>",
                         extra_headers=list_headers(number))


def measure(function, editions: list[dict], repeat: int = 1) -> dict:
    """Median per message; with repeat > 1 also the median of each recipient's best run (what is left when
    the other processes of a busy machine are not running at the same moment)."""
    wall, cpu, best_wall, best_cpu, sizes = [], [], [], [], []
    for number, kwargs in enumerate(editions, start=1):
        runs = []
        for _ in range(repeat):
            started, started_cpu = time.perf_counter(), time.thread_time()
            message = function(kwargs, number)
            runs.append((time.perf_counter() - started, time.thread_time() - started_cpu))
        wall.append(runs[0][0])
        cpu.append(runs[0][1])
        best_wall.append(min(r[0] for r in runs))
        best_cpu.append(min(r[1] for r in runs))
        sizes.append(len(message))
    figures = {
        "messages": len(editions),
        "wall_median_ms": statistics.median(wall) * 1000,
        "wall_p90_ms": statistics.quantiles(wall, n=10)[-1] * 1000,
        "cpu_median_ms": statistics.median(cpu) * 1000,
        "median_message_bytes": int(statistics.median(sizes)),
    }
    if repeat > 1:
        figures[f"best_of_{repeat}_wall_median_ms"] = statistics.median(best_wall) * 1000
        figures[f"best_of_{repeat}_cpu_median_ms"] = statistics.median(best_cpu) * 1000
    return figures


def reference_ms() -> float:
    """CPU time of a fixed pure-Python loop, to compare this machine's speed with another's."""
    started = time.thread_time()
    sum(range(1_000_000))
    return (time.thread_time() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=2000)
    parser.add_argument("--naive-recipients", type=int, default=None, help="default: as many as --recipients")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    settings = Settings(secret_key="benchmark", base_url="https://digest.example.org", from_address=SENDER,
                        _env_file=None)
    rng = random.Random(args.seed)
    editions = [random_edition(settings, rng, number) for number in range(1, args.recipients + 1)]

    started = time.perf_counter()
    compiled_html_template()
    compile_ms = (time.perf_counter() - started) * 1000
    for kwargs in editions[:50]:  # warm caches the same way for both
        ours(kwargs, 0)
        text_template().render(render_context(**kwargs))

    def ours_cold_caches(kwargs: dict, number: int) -> bytes:
        clear_value_caches()
        return ours(kwargs, number)

    ours_figures = measure(ours, editions, repeat=3)
    ours_cold = measure(ours_cold_caches, editions[: min(200, len(editions))])
    naive_figures = measure(naive, editions[: args.naive_recipients or args.recipients])
    ratio_wall = naive_figures["wall_median_ms"] / ours_figures["wall_median_ms"]
    ratio_cpu = naive_figures["cpu_median_ms"] / ours_figures["cpu_median_ms"]

    reference = statistics.median(reference_ms() for _ in range(5))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, Python {platform.python_version()}, "
          f"sum(range(10**6)) takes {reference:.1f} ms CPU")
    print(f"compile once (MJML + premailer + Jinja): {compile_ms:.0f} ms")
    for name, figures in (("naive", naive_figures), ("ours", ours_figures), ("ours, cold caches", ours_cold)):
        print(f"{name:>17}: {figures['messages']} messages, median {figures['wall_median_ms']:.3f} ms wall "
              f"(p90 {figures['wall_p90_ms']:.3f}), {figures['cpu_median_ms']:.3f} ms CPU, "
              f"{figures['median_message_bytes']} bytes")
    print(f"ours, each recipient's best of 3 runs: median {ours_figures['best_of_3_wall_median_ms']:.3f} ms wall, "
          f"{ours_figures['best_of_3_cpu_median_ms']:.3f} ms CPU")
    print(f"ours is {ratio_wall:.0f}x faster (wall), {ratio_cpu:.0f}x (CPU)")
    print(json.dumps({
        "benchmark": "render",
        "recipients": args.recipients,
        "compile_once_ms": round(compile_ms, 1),
        "naive": {k: round(v, 4) if isinstance(v, float) else v for k, v in naive_figures.items()},
        "ours": {k: round(v, 4) if isinstance(v, float) else v for k, v in ours_figures.items()},
        "ours_cold_caches": {k: round(v, 4) if isinstance(v, float) else v for k, v in ours_cold.items()},
        "ratio_wall": round(ratio_wall, 1),
        "ratio_cpu": round(ratio_cpu, 1),
        "target_ours_ms": 0.5,
        "target_ratio": 20,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "reference_loop_cpu_ms": round(reference, 2),
    }))


if __name__ == "__main__":
    main()
