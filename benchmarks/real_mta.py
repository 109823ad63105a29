"""An edition through a real MTA: Postfix (STARTTLS + AUTH, queue, Maildir delivery, DSNs) against smtp-sink.

    python benchmarks/real_mta.py [--subscribers 2000] [--unknown 20] [--timeout 600]

One SQLite file, one edition of N subscribers (the bundled sample corpus, lexical ranking), planned once and
sent twice by `send_edition` with the product's own rendering (one email per subscriber, picks and signed links
filled per recipient, VERP envelope), each time from every row pending:

1. baseline: to Postfix's `smtp-sink` (plain SMTP, accepts and discards) on loopback;
2. real MTA: to a throwaway Postfix instance on loopback (tests/support/postfix.py: its own config and queue
   under /tmp, never the system's) through its submission port with STARTTLS (certificate verified) and SMTP
   AUTH; Postfix queues each message, delivers it to a Maildir with virtual(8), and returns the `--unknown`
   addresses it has no mailbox for with DSNs to their VERP addresses. Then `process_mailbox` reads those DSNs.

"Sent/s" is emails the server accepted per second of `send_edition` (render + ledger + SMTP, the same work on
both sides but the server). "Delivered/s" is emails in Maildirs (and DSNs in the bounce Maildir) per second from
the start of the Postfix send until its queue is empty. Needs root and Debian's postfix, sasl2-bin,
libsasl2-modules and openssl (`bash scripts/setup.sh` installs them). The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import update  # noqa: E402
from sqlmodel import Session, col, func, select  # noqa: E402

from newsletter import db  # noqa: E402
from newsletter.config import Settings  # noqa: E402
from newsletter.delivery.bounces import process_mailbox  # noqa: E402
from newsletter.delivery.send import send_edition  # noqa: E402
from newsletter.editions import plan_edition  # noqa: E402
from newsletter.models import (  # noqa: E402
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    Subscriber,
    SubscriberStatus,
)
from tests.helpers import ingest_sample  # noqa: E402
from tests.support.postfix import SMTP_SINK, PostfixInstance, free_port, unavailable_reason  # noqa: E402

DAY = datetime.now(UTC).date()
INTERESTS = ["efficient inference for large language models", "diffusion models for image generation",
             "reinforcement learning for robotics", "retrieval augmented generation and agents"]


def readers(count: int, unknown: int) -> tuple[list[str], list[str]]:
    """(addresses with a Maildir, addresses Postfix will return as unknown users): `unknown` spread evenly."""
    every = count // unknown if unknown else 0
    addresses = [f"reader{i:05d}@{PostfixInstance.domain}" for i in range(count)]
    gone = {addresses[i] for i in range(every - 1, count, every)} if every else set()
    gone = set(sorted(gone)[:unknown])
    return [a for a in addresses if a not in gone], sorted(gone)


def prepare(settings: Settings, addresses: list[str]) -> tuple[int, float]:
    """Migrate, ingest the sample corpus, add the subscribers and plan the edition; (edition id, seconds)."""
    db.upgrade(settings.sqlalchemy_url)
    started = time.perf_counter()
    with Session(db.get_engine(settings.sqlalchemy_url)) as session:
        ingest_sample(session)
        session.add_all([Subscriber(email=email, status=SubscriberStatus.active,
                                    interests=INTERESTS[i % len(INTERESTS)])
                         for i, email in enumerate(addresses)])
        session.commit()
        plan = plan_edition(session, DAY, settings)
        session.commit()
        if plan.planned != len(addresses):
            raise SystemExit(f"planned {plan.planned} of {len(addresses)} subscribers")
        return plan.edition_id, time.perf_counter() - started


def reset(settings: Settings, edition_id: int) -> None:
    """Every row of the edition back to pending, as planned (so both sides send exactly the same work)."""
    with Session(db.get_engine(settings.sqlalchemy_url)) as session:
        session.exec(update(Delivery).where(col(Delivery.edition_id) == edition_id).values(
            status=DeliveryStatus.pending.value, attempts=0, message_id=None, error=None, next_attempt_at=None,
            claimed_at=None, sent_at=None))
        session.exec(update(Edition).where(col(Edition.id) == edition_id).values(status=EditionStatus.planned.value))
        session.commit()


def timed_send(settings: Settings, edition_id: int, expected: int) -> tuple[float, object]:
    with Session(db.get_engine(settings.sqlalchemy_url), expire_on_commit=False) as session:
        started = time.perf_counter()
        report = send_edition(session, edition_id, settings)
        elapsed = time.perf_counter() - started
    if report.sent != expected or report.stopped:
        raise SystemExit(f"sent {report.sent} of {expected} ({report.stopped or 'no stop'}): {report.errors[:3]}")
    return elapsed, report


@contextmanager
def smtp_sink():
    """Postfix's smtp-sink on a free loopback port (accepts every message, keeps nothing); yields the port."""
    port = free_port()
    sink = subprocess.Popen([SMTP_SINK, "-u", "postfix", f"127.0.0.1:{port}", "256"])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or sink.poll() is not None:
                    raise SystemExit("smtp-sink did not start") from None
                time.sleep(0.05)
        yield port
    finally:
        sink.terminate()
        sink.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--unknown", type=int, default=20, help="subscribers Postfix has no mailbox for (DSNs)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for Postfix's queue to empty")
    options = parser.parse_args()
    os.environ["NEWSLETTER_SEMANTIC"] = "off"  # ingest and ranking read the process settings: lexical, no model load
    reason = unavailable_reason()
    if reason or not os.access(SMTP_SINK, os.X_OK):
        raise SystemExit(f"cannot run: {reason or SMTP_SINK + ' missing'} (bash scripts/setup.sh installs it)")
    mailboxes, unknown = readers(options.subscribers, options.unknown)

    with tempfile.TemporaryDirectory(prefix="real-mta-bench-") as folder, \
            PostfixInstance(mailboxes=mailboxes) as mta:
        settings = Settings(data_dir=Path(folder), database_url=f"sqlite:///{folder}/bench.db",
                            secret_key="benchmark", base_url="https://digest.example.org", semantic="off",
                            from_address="Paper Digest <digest@example.org>", bounce_address=mta.bounce_address,
                            verp=True, smtp_timeout=30, log_level="WARNING")
        print(f"preparing: {options.subscribers} subscribers ({len(unknown)} without a mailbox), sample corpus, "
              f"plan ...", flush=True)
        edition_id, plan_seconds = prepare(settings, mailboxes + unknown)
        print(f"planned edition {edition_id} in {plan_seconds:.1f} s", flush=True)

        # Warm-up (template compiled once per process, caches filled), not timed: 20 emails to the sink.
        with Session(db.get_engine(settings.sqlalchemy_url), expire_on_commit=False) as session, \
                smtp_sink() as port:
            ids = session.exec(select(Delivery.id).where(Delivery.edition_id == edition_id)
                               .order_by(col(Delivery.id)).limit(20)).all()
            send_edition(session, edition_id, settings.model_copy(update={"smtp_port": port}), delivery_ids=list(ids))
        reset(settings, edition_id)

        total = options.subscribers
        with smtp_sink() as port:  # plain SMTP: smtp-sink has no TLS
            sink_seconds, _ = timed_send(settings.model_copy(update={"smtp_port": port}), edition_id, total)
        print(f"smtp-sink:  {total} sent in {sink_seconds:.1f} s = {total / sink_seconds:.0f} emails/s", flush=True)
        reset(settings, edition_id)

        postfix_settings = settings.model_copy(update={
            "smtp_host": "127.0.0.1", "smtp_port": mta.submission_port, "smtp_security": "starttls",
            "smtp_ca_file": mta.ca_file, "smtp_username": mta.username, "smtp_password": mta.password})
        started = time.perf_counter()
        postfix_seconds, _ = timed_send(postfix_settings, edition_id, total)
        print(f"Postfix:    {total} sent in {postfix_seconds:.1f} s = {total / postfix_seconds:.0f} emails/s "
              f"(STARTTLS + AUTH, accepted into its queue)", flush=True)
        mta.wait_until(lambda: mta.queued() == 0 and mta.count_in_domain() >= len(mailboxes)
                       and mta.count_delivered(mta.bounce_address) >= len(unknown),
                       options.timeout, "Postfix to deliver everything", interval=0.25)
        delivered_seconds = time.perf_counter() - started
        in_maildirs, dsns = mta.count_in_domain(), mta.count_delivered(mta.bounce_address)
        print(f"            {in_maildirs} in Maildirs and {dsns} DSNs returned {delivered_seconds:.1f} s after "
              f"the first message = {(in_maildirs + dsns) / delivered_seconds:.0f} delivered/s", flush=True)
        sizes = [int(part.split("=")[1].rstrip(",")) for line in mta.log().splitlines() if "(queue active)" in line
                 and "from=<bounces+" in line for part in line.split() if part.startswith("size=")]

        started = time.perf_counter()
        with Session(db.get_engine(settings.sqlalchemy_url), expire_on_commit=False) as session:
            bounces = process_mailbox(session, mta.bounce_maildir, settings)
            suppressed = session.exec(select(func.count()).select_from(Subscriber)
                                      .where(Subscriber.status == "bounced")).one()
            bounced = set(session.exec(select(Subscriber.email).where(Subscriber.status == "bounced")).all())
        bounce_seconds = time.perf_counter() - started
        print(f"bounces:    {bounces.messages} DSNs read, {bounces.hard_bounces} hard bounces, {suppressed} "
              f"subscribers suppressed in {bounce_seconds:.2f} s "
              f"({'exactly the unknown users' if bounced == set(unknown) else 'NOT the unknown users'})", flush=True)

    ratio = (total / postfix_seconds) / (total / sink_seconds)
    print(f"ratio: Postfix (STARTTLS + AUTH) / smtp-sink = {ratio:.2f}")
    print(json.dumps({
        "benchmark": "real_mta", "subscribers": total, "unknown_users": len(unknown), "cpus": os.cpu_count(),
        "python": platform.python_version(), "mean_message_bytes": round(sum(sizes) / len(sizes)) if sizes else None,
        "plan_seconds": round(plan_seconds, 2),
        "smtp_sink_emails_per_s": round(total / sink_seconds, 1), "smtp_sink_seconds": round(sink_seconds, 2),
        "postfix_emails_per_s": round(total / postfix_seconds, 1), "postfix_seconds": round(postfix_seconds, 2),
        "ratio_postfix_to_sink": round(ratio, 3),
        "postfix_delivered_per_s": round((in_maildirs + dsns) / delivered_seconds, 1),
        "delivered_to_maildirs": in_maildirs, "dsns_returned": dsns,
        "bounces_processed": bounces.messages, "hard_bounces": bounces.hard_bounces,
        "suppressed": suppressed, "suppressed_exactly_unknown": bounced == set(unknown),
        "bounce_processing_seconds": round(bounce_seconds, 3)}))


if __name__ == "__main__":
    main()
