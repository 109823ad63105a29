"""The fault suite as a table: each scenario of tests/test_faults.py, run on real processes, counted at the
receiving side.

    python benchmarks/faults.py [--cases smtp_outage,redis_restart,...] [--outage 60] [--database sqlite|postgres]

Each case sends an edition through an SMTP server process (every accepted message written to a folder),
Celery worker processes, `celery beat` and a redis-server of its own, injects its fault mid-edition and lets the
system recover by itself (tests/support/faults.py says how each fault is made). Per case: recipients
delivered, duplicated (copies beyond the first; at most the messages in flight at the fault), lost (must be 0),
in flight, and seconds from start to the last delivery. The baseline is the same edition with no fault, in the
same run: each case's `slowdown` is its seconds over the baseline's. The PostgreSQL case runs a cluster of its
own (root, /usr/lib/postgresql); without one it is reported as skipped. `--database postgres` runs the other
cases on a scratch database at NEWSLETTER_TEST_POSTGRES_URL (default: the local server's `test`). The last line
is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from newsletter import db
from tests.conftest import DEFAULT_POSTGRES_URL, make_settings
from tests.support import faults
from tests.support.postgres import scratch_postgres_database

CASES = ["no_fault", *faults.SCENARIOS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated, from: " + ", ".join(CASES))
    parser.add_argument("--outage", type=float, default=60.0, help="seconds the SMTP server stays down")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    options = parser.parse_args()
    reason = faults.RedisServer.unavailable_reason()
    if reason:
        sys.exit(f"error: {reason}")
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="faults-bench-") as scratch:
        for case in options.cases.split(","):
            folder = Path(scratch) / case
            folder.mkdir()
            if case == "postgres_restart" and faults.PostgresCluster.unavailable_reason():
                print(f"{case}: skipped ({faults.PostgresCluster.unavailable_reason()})", flush=True)
                continue
            with ExitStack() as exits:
                settings = make_settings(data_dir=folder / "var", database_url=database(options, folder, exits))
                scenario = faults.no_fault if case == "no_fault" else faults.SCENARIOS[case]
                extra = {"outage": options.outage} if case == "smtp_outage" else {}
                result = scenario(settings, folder, **extra)
            rows.append(result.as_dict() | {"name": case})
            print(f"{case}: delivered {result.delivered}/{result.expected}, duplicated {result.duplicated}, "
                  f"lost {result.lost}, in flight {result.in_flight}, {result.seconds} s; {result.notes}", flush=True)
    base = next((row for row in rows if row["name"] == "no_fault"), None)
    baseline = base["seconds"] if base else None
    print()
    print(f"{'case':<26}{'expected':>9}{'delivered':>10}{'duplicated':>11}{'lost':>6}{'in flight':>10}"
          f"{'seconds':>9}{'slowdown':>9}")
    for row in rows:
        same_edition = base and row["expected"] == base["expected"]  # only editions of the baseline's size
        row["slowdown"] = round(row["seconds"] / baseline, 2) if same_edition else None
        print(f"{row['case']:<26}{row['expected']:>9}{row['delivered']:>10}{row['duplicated']:>11}{row['lost']:>6}"
              f"{row['in_flight']:>10}{row['seconds']:>9}{row['slowdown'] or '':>9}")
    sound = all(r["lost"] == 0 and r["duplicated"] <= r["in_flight"] and r["unexpected"] == 0 for r in rows)
    print(f"\nevery case: nothing lost, duplicates within the messages in flight: {'yes' if sound else 'NO'}")
    print(json.dumps({"benchmark": "faults", "database": options.database, "baseline_seconds": baseline,
                      "sound": sound,
                      "cases": {row["name"]: {key: row[key] for key in (
                          "expected", "delivered", "duplicated", "lost", "in_flight", "unexpected", "seconds",
                          "slowdown")} for row in rows}}, default=str))


def database(options, folder: Path, exits: ExitStack) -> str:
    if options.database == "postgres":
        server = os.environ.get("NEWSLETTER_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
        return exits.enter_context(scratch_postgres_database(server, "faults_bench"))
    url = f"sqlite:///{folder / 'newsletter.db'}"
    db.upgrade(url)
    return url


if __name__ == "__main__":
    main()
