"""DKIM signing cost per message: ours (OpenSSL RSA through `cryptography`) against dkimpy's `dkim.sign`.

    python benchmarks/dkim_signing.py [--messages 300] [--bits 2048]

Both sign the same real edition emails (rendered from the bundled sample papers, about 80 KB each) with the
same key, headers and relaxed/relaxed canonicalization; every signature of ours is checked with dkimpy's
verifier first. The last line is one JSON object with the figures and the ratio.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletter.config import Settings  # noqa: E402
from newsletter.delivery.dkim_sign import OVERSIGNED, SIGNED_HEADERS, _private_key, signature_header  # noqa: E402
from newsletter.delivery.mime import build_message  # noqa: E402
from newsletter.render import render_edition  # noqa: E402
from tests.support.samples import random_edition  # noqa: E402

SELECTOR, DOMAIN = b"bench", b"example.org"


def messages(count: int) -> list[bytes]:
    settings = Settings(secret_key="benchmark", base_url="https://digest.example.org", _env_file=None)
    rng = random.Random(7)
    built = []
    for number in range(count):
        edition = random_edition(settings, rng, number + 1)
        built.append(build_message(render_edition(**edition), sender="Paper Digest <digest@example.org>",
                                   to=edition["recipient"], message_id=f"<bench-{number}@example.org>"))
    return built


def per_message_ms(sign, batch: list[bytes]) -> float:
    timings = []
    for message in batch:
        started = time.perf_counter()
        sign(message)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--bits", type=int, default=2048)
    args = parser.parse_args()
    import dkim

    with tempfile.TemporaryDirectory() as folder:
        pem_path = Path(folder) / "key.pem"
        subprocess.run(["openssl", "genrsa", "-out", str(pem_path), str(args.bits)], check=True, capture_output=True)
        public = subprocess.run(["openssl", "rsa", "-in", str(pem_path), "-pubout", "-outform", "DER"], check=True,
                                capture_output=True).stdout
        pem, key = pem_path.read_bytes(), _private_key(pem_path)
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    batch = messages(args.messages)

    def ours(message: bytes) -> bytes:
        return signature_header(message, SELECTOR, DOMAIN, key) + message

    def dkimpy(message: bytes) -> bytes:
        return dkim.sign(message, SELECTOR, DOMAIN, pem, canonicalize=(b"relaxed", b"relaxed"),
                         include_headers=list(SIGNED_HEADERS + OVERSIGNED)) + message

    verified = all(dkim.verify(ours(m), dnsfunc=lambda name, timeout=5: record) for m in batch)
    ours_ms, dkimpy_ms = per_message_ms(ours, batch), per_message_ms(dkimpy, batch)
    size = statistics.median(len(m) for m in batch)
    print(f"{args.messages} edition emails (median {size / 1024:.0f} KB), RSA-{args.bits}, relaxed/relaxed")
    print(f"  dkimpy dkim.sign       {dkimpy_ms:7.3f} ms per message")
    print(f"  ours (cryptography)    {ours_ms:7.3f} ms per message   ({dkimpy_ms / ours_ms:.1f}x faster)")
    print(f"  every signature of ours verified by dkimpy: {verified}")
    print(json.dumps({"benchmark": "dkim", "messages": args.messages, "bits": args.bits,
                      "median_message_bytes": int(size), "dkimpy_ms": round(dkimpy_ms, 3),
                      "ours_ms": round(ours_ms, 3), "speedup_vs_dkimpy": round(dkimpy_ms / ours_ms, 1),
                      "all_verified": verified}))


if __name__ == "__main__":
    main()
