"""`newsletter stats` counts what the database holds (checked here by counting the rows one by one)."""

import json
from collections import Counter
from datetime import timedelta

from sqlmodel import select

from newsletter.clock import today, utcnow
from newsletter.jobs import run_daily
from newsletter.models import Delivery, Event, Paper, Pick, Subscriber
from newsletter.sink import SaveToFolder, SmtpSink
from tests.helpers import add_active, ingest_sample


class RefusesSome(SaveToFolder):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("refused"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_stats_match_the_database(session, settings, tmp_path, cli):
    def stats(*args) -> dict:
        result = cli("stats", "--json", *args)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    ingest_sample(session)
    for email, keywords in [("ada@example.org", "LLM"), ("grace@example.org", "diffusion"),
                            ("refused@example.org", "robotics"), ("linus@example.org", "LLM")]:
        add_active(session, email, keywords=keywords)
    add_active(session, "pending@example.org").status = "pending"
    add_active(session, "paused@example.org").paused = True
    session.commit()
    with SmtpSink(tmp_path / "out", handler=RefusesSome(tmp_path / "out")) as sink:
        run_daily(session, today(), settings.model_copy(update={"smtp_host": sink.host, "smtp_port": sink.port}))
    ada = session.exec(select(Subscriber).where(Subscriber.email == "ada@example.org")).one()
    yesterday = utcnow() - timedelta(days=1)
    for kind, when in [("bounce", None), ("soft_bounce", None), ("soft_bounce", None), ("complaint", None),
                       ("unsubscribe", None), ("unsubscribe", yesterday), ("feedback", None)]:
        event = Event(subscriber_id=ada.id, kind=kind)
        if when:
            event.created_at = when
        session.add(event)
    session.commit()

    figures = stats()
    subscribers = session.exec(select(Subscriber)).all()
    statuses = ("pending", "active", "unsubscribed", "bounced", "complained")
    assert figures["subscribers"] == {**dict.fromkeys(statuses, 0),
                                      **Counter(s.status for s in subscribers), "total": len(subscribers),
                                      "paused": sum(s.paused for s in subscribers)}
    assert figures["subscribers"]["bounced"] == 1  # the 550 refusal
    deliveries = session.exec(select(Delivery)).all()
    assert {k: v for k, v in figures["deliveries"].items() if v} == dict(Counter(d.status for d in deliveries))
    assert figures["deliveries"]["sent"] == 3 and figures["deliveries"]["failed"] == 1  # the paused one gets none
    events = session.exec(select(Event)).all()
    # bounces: the one added above and the one the 550 refusal recorded at send time
    assert figures["events"] == {"bounces": 2, "soft_bounces": 2, "complaints": 1, "unsubscribes": 2}
    assert figures["events"]["unsubscribes"] == sum(e.kind == "unsubscribe" for e in events)
    assert figures["papers_ingested"] == len(session.exec(select(Paper)).all()) == 436
    sent_ids = {d.id for d in deliveries if d.status == "sent"}
    counts = Counter(p.paper_id for p in session.exec(select(Pick)).all() if p.delivery_id in sent_ids)
    expected = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:10]
    assert [(p["paper_id"], p["sent"]) for p in figures["most_sent_papers"]] == expected

    that_day = stats("--date", today().isoformat())
    assert that_day["events"]["unsubscribes"] == 1 and that_day["deliveries"] == figures["deliveries"]
    assert that_day["edition"]["status"] == "done" and that_day["papers_ingested"] == 436
    other_day = stats("--date", (today() - timedelta(days=30)).isoformat())
    assert other_day["edition"] is None and sum(other_day["deliveries"].values()) == 0
    assert other_day["most_sent_papers"] == [] and other_day["papers_ingested"] == 0
    table = cli("stats")
    assert table.exit_code == 0 and "most-sent papers" in table.output and "unsubscribes" in table.output
    assert cli("stats", "--date", "yesterday").exit_code == 1
