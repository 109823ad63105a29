"""Issue 14 item 3: one mailbox is one subscriber, whatever the capitals: in the CLI, in imports, in the database's
unique index, and in databases that already hold duplicates (migration issue14_subscriber_identity merges them)."""

from __future__ import annotations

import json
import re
from contextlib import ExitStack
from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from newsletter import db
from newsletter.errors import BadToken
from newsletter.models import Delivery, Event, Feedback, Pick, Subscriber
from subscribers.consent import subscriber_for_token
from subscribers.profiles import find_subscriber
from subscribers.tokens import make_token
from tests.conftest import make_settings, scratch_postgres

BEFORE = "seed_papers_v1"  # the revision before subscriber.email_key


def test_the_cli_and_imports_treat_capitals_as_one_address(cli, session, tmp_path, sink):
    assert cli("subscribers", "add", "alice@example.org").exit_code == 0
    again = cli("subscribers", "add", "Alice@Example.ORG")
    assert again.exit_code == 1 and "Alice@example.org is already subscribed, as alice@example.org" in again.stderr
    listing = tmp_path / "people.csv"
    listing.write_text("email\nALICE@example.org\nbob@example.org\nBob@Example.org\n", encoding="utf-8")
    report = json.loads(cli("subscribers", "import", listing, "--json").stdout)
    assert report["already_present"] == ["alice@example.org"] and report["imported_total"] == 1
    assert [(r["line"], r["reason"]) for r in report["rejected"]] == [(4, "duplicate of line 3")]
    session.expire_all()
    assert sorted(session.exec(select(Subscriber.email))) == ["alice@example.org", "bob@example.org"]
    assert cli("subscribers", "remove", "ALICE@EXAMPLE.ORG").exit_code == 0


def test_the_database_refuses_a_second_row_for_one_mailbox(session):
    session.add(Subscriber(email="alice@example.org"))
    session.commit()
    session.add(Subscriber(email="Alice@Example.org"))
    with pytest.raises(IntegrityError):
        session.commit()


def at(day: int) -> datetime:
    return datetime(2026, 1, day, 9, 0, tzinfo=UTC)


def new_id(connection, table, **values) -> int:
    """Insert one row; its id."""
    key = connection.execute(table.insert().values(**values)).inserted_primary_key
    assert key is not None
    return int(key[0])


def write_duplicates(url: str) -> dict[str, Any]:
    """A database at the revision before the fix, holding what the bug made: three rows for one mailbox, each with
    its history, and one bystander."""
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    meta.reflect(engine)
    t = meta.tables
    profile = {"name": "", "interests": "", "keywords": [], "followed_authors": [], "excluded_keywords": [],
               "timezone": "UTC", "send_hour": 7, "frequency": "daily", "paused": False, "soft_bounces": 0}
    ids: dict[str, Any] = {}
    with engine.begin() as c:
        for key, email, status, created, confirmed, consent, unsubscribed, interests in [
            ("pending", "Alice@example.org", "pending", at(1), None, "", None, "first try"),
            ("active", "alice@example.org", "active", at(3), at(3), "double-opt-in", None, "the profile in use"),
            ("unsubscribed", "ALICE@EXAMPLE.ORG", "unsubscribed", at(2), at(2), "imported: newsletter 2025", at(4),
             "old"),
            ("bystander", "bob@example.org", "active", at(2), at(2), "double-opt-in", None, "bob"),
        ]:
            ids[key] = new_id(c, t["subscriber"], **{**profile, "interests": interests}, email=email, status=status,
                              created_at=created, confirmed_at=confirmed, consent=consent,
                              unsubscribed_at=unsubscribed)
        papers = [new_id(c, t["paper"], external_id=f"2601.0000{n}", title_key=f"paper {n}", title=f"Paper {n}",
                         abstract="", authors=[], url="", pdf_url="", code_url="", upvotes=0, comments=0,
                         keywords=[], source="test", ingested_at=at(1), embedding_model="") for n in (1, 2, 3)]
        editions = [new_id(c, t["edition"], date=date(2026, 1, d), status="done", created_at=at(d)) for d in (5, 6)]
        ids["papers"], ids["editions"] = papers, editions

        def delivery(who: str, edition: int, status: str, picked: list[int]) -> int:
            delivery_id = new_id(c, t["delivery"], edition_id=edition, subscriber_id=ids[who], status=status,
                                 attempts=1, message_id=f"<edition-{edition}.delivery-{who}@example.org>")
            for position, paper in enumerate(picked):
                c.execute(t["pick"].insert().values(delivery_id=delivery_id, paper_id=paper, position=position,
                                                    score=1.0, reasons=[]))
            return delivery_id

        ids["kept_delivery"] = delivery("active", editions[0], "sent", [papers[0]])
        ids["dropped_delivery"] = delivery("pending", editions[0], "pending", [papers[0], papers[1]])
        ids["moved_delivery"] = delivery("unsubscribed", editions[1], "sent", [papers[2]])
        delivery("bystander", editions[0], "sent", [papers[0]])
        for who, paper, kind, when in [("active", papers[0], "more", at(5)), ("unsubscribed", papers[0], "less", at(6)),
                                       ("pending", papers[1], "more", at(5))]:
            c.execute(t["feedback"].insert().values(subscriber_id=ids[who], paper_id=paper, kind=kind, created_at=when))
        for who, kind in [("pending", "subscribe_request"), ("active", "confirm"), ("unsubscribed", "unsubscribe")]:
            c.execute(t["event"].insert().values(subscriber_id=ids[who], kind=kind, detail={}, created_at=at(1)))
    engine.dispose()
    return ids


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_migration_merges_one_mailboxs_rows_keeping_consent_status_and_history(backend, tmp_path):
    with ExitStack() as stack:
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path / 'before.db'}"
            db.upgrade(url, BEFORE)
        else:
            url = stack.enter_context(scratch_postgres("identity_migration"))
            command.downgrade(db.alembic_config(url), BEFORE)
        ids = write_duplicates(url)
        db.upgrade(url)
        with Session(db.get_engine(url)) as session:
            rows = list(session.exec(select(Subscriber).order_by(col(Subscriber.id))))
            assert [(s.email, s.email_key) for s in rows] == [("alice@example.org", "alice@example.org"),
                                                              ("bob@example.org", "bob@example.org")]
            alice = rows[0]
            assert alice.id == ids["active"] and alice.status == "active"  # the active subscription stays active
            assert alice.interests == "the profile in use"
            assert alice.created_at == at(1) and alice.confirmed_at == at(2)  # the earliest consent is on record
            assert alice.consent == "imported: newsletter 2025"
            deliveries = {d.id: d for d in session.exec(select(Delivery)
                                                        .where(col(Delivery.subscriber_id) == alice.id))}
            assert sorted(deliveries) == sorted([ids["kept_delivery"], ids["moved_delivery"]])
            assert deliveries[ids["kept_delivery"]].status == "sent"
            keys = [d.message_key for d in session.exec(select(Delivery))]  # drawn by the message-key migration
            assert len(set(keys)) == len(keys) and all(re.fullmatch("[0-9a-f]{24}", key) for key in keys)
            picked = sorted(session.exec(select(Pick.paper_id).where(col(Pick.delivery_id) == ids["kept_delivery"])))
            assert picked == sorted(ids["papers"][:2])  # what either row was sent is still known
            judged = {(f.paper_id, f.kind) for f in session.exec(select(Feedback).where(
                col(Feedback.subscriber_id) == alice.id))}
            assert judged == {(ids["papers"][0], "less"), (ids["papers"][1], "more")}  # the latest judgement wins
            kinds = sorted(e.kind for e in session.exec(select(Event).where(col(Event.subscriber_id) == alice.id)))
            assert kinds == ["confirm", "merged", "merged", "subscribe_request", "unsubscribe"]
            merged = [e.detail for e in session.exec(select(Event).where(col(Event.kind) == "merged"))]
            assert sorted(m["from"] for m in merged) == sorted([ids["pending"], ids["unsubscribed"]])
            assert [d["id"] for m in merged for d in m["dropped_deliveries"]] == [ids["dropped_delivery"]]

            # an unsubscribe link mailed to a merged row still works: it acts for the row it was merged into
            settings = make_settings(database_url=url, data_dir=tmp_path / "var")
            old = make_token("unsubscribe", ids["unsubscribed"], "ALICE@EXAMPLE.ORG", settings)
            assert subscriber_for_token(session, "unsubscribe", old, settings)[0].id == alice.id
            forged = make_token("unsubscribe", ids["unsubscribed"], "mallory@example.org", settings)
            with pytest.raises(BadToken):
                subscriber_for_token(session, "unsubscribe", forged, settings)
            assert find_subscriber(session, "ALICE@example.org") is not None
            session.add(Subscriber(email="aLiCe@example.org"))
            with pytest.raises(IntegrityError):
                session.commit()
        db.get_engine(url).dispose()
