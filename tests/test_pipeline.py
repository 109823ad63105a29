"""The daily flow against a real SMTP server on loopback."""

from email import message_from_bytes
from email.policy import default

import lxml.html
from fastapi.testclient import TestClient
from sqlmodel import col, select

from newsletter.clock import today
from newsletter.delivery.send import send_edition
from newsletter.editions import plan_edition
from newsletter.ingest import ingest
from newsletter.jobs import run_daily
from newsletter.models import Delivery, Pick, Subscriber
from newsletter.sink import SmtpSink
from newsletter.web.app import create_app
from tests.conftest import FIXTURES
from tests.helpers import add_active, html_part, ingest_sample, text_part, unsubscribe_url


def parsed(sink):
    return [message_from_bytes(e.original_content, policy=default) for e in sink.handler.envelopes]


def test_each_active_subscriber_gets_one_personal_email(session, sink, smtp_settings):
    ingest_sample(session)
    add_active(session, "ada@example.org", "KV cache compression for long-context LLM inference", "KV cache")
    add_active(session, "grace@example.org", "3D reconstruction with Gaussian splatting", "Gaussian Splatting")
    add_active(session, "pending@example.org").status = "pending"
    session.commit()
    report = run_daily(session, today(), smtp_settings)
    assert (report.send.sent, report.send.failed) == (2, 0)
    by_rcpt = {m["To"]: m for m in parsed(sink)}
    assert set(by_rcpt) == {"ada@example.org", "grace@example.org"}
    assert "kv cache" in html_part(by_rcpt["ada@example.org"]).lower()
    assert "splatting" in text_part(by_rcpt["grace@example.org"]).lower()
    assert all(d.status == "sent" and d.message_id for d in session.exec(select(Delivery)))


def test_headers_are_present_and_well_formed(session, sink, smtp_settings):
    ingest_sample(session)
    add_active(session, "ada@example.org", "long-context LLMs", "KV cache")
    run_daily(session, today(), smtp_settings)
    raw = sink.handler.envelopes[0].original_content
    message = message_from_bytes(raw, policy=default)
    assert message["From"] == "Paper Digest <digest@example.org>"
    assert message["Subject"].endswith(" +9 more") and len(message["Subject"]) <= 70
    assert message["Message-ID"].startswith("<edition-") and message["Message-ID"].endswith("@example.org>")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert unsubscribe_url(message).startswith("https://digest.example.org/unsubscribe/")
    assert message["Precedence"] == "bulk" and message["Date"] and message["MIME-Version"] == "1.0"
    assert message.get_content_type() == "multipart/alternative"
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


def test_paper_fields_are_escaped_in_the_email(settings, session, sink, smtp_settings):
    ingest(session, str(FIXTURES / "hf_daily_papers.json"), settings)
    add_active(session, "ada@example.org", "KV cache compression", "KV cache")
    run_daily(session, today(), smtp_settings)
    message = parsed(sink)[0]
    html = html_part(message)
    assert "KV-Cache Compression &lt;b&gt;for&lt;/b&gt; Long-Context LLMs &amp; Beyond" in html
    assert "<b>for</b>" not in html
    shown = lxml.html.document_fromstring(html).text_content()  # non-ASCII travels as character references
    assert "u-μP" in shown and "李明" in shown
    assert "O(n)" in shown and "$O(n)$" not in shown  # LaTeX in an abstract reads as text (render/latex.py)
    assert "KV-Cache Compression <b>for</b> Long-Context LLMs & Beyond" in text_part(message)


def test_never_sends_a_paper_twice(session, sink, smtp_settings):
    ingest_sample(session)
    subscriber = add_active(session, "ada@example.org", "language models", "LLM")
    run_daily(session, today(), smtp_settings)
    from datetime import timedelta
    run_daily(session, today() + timedelta(days=1), smtp_settings)
    papers = session.exec(select(Pick.paper_id).join(Delivery, col(Delivery.id) == Pick.delivery_id)
                          .where(Delivery.subscriber_id == subscriber.id)).all()
    assert len(papers) == 20 and len(set(papers)) == 20


def test_second_run_of_the_same_day_sends_nothing_new(session, sink, smtp_settings):
    ingest_sample(session)
    add_active(session, "ada@example.org", "language models")
    first = run_daily(session, today(), smtp_settings)
    second = run_daily(session, today(), smtp_settings)
    assert (first.send.sent, second.send.sent, second.plan.planned) == (1, 0, 0)
    assert len(sink.handler.envelopes) == 1


def test_one_click_unsubscribe_from_a_delivered_email(settings, session, sink, smtp_settings):
    ingest_sample(session)
    add_active(session, "ada@example.org", "language models")
    add_active(session, "grace@example.org", "3D vision")
    run_daily(session, today(), smtp_settings)
    message = next(m for m in parsed(sink) if m["To"] == "ada@example.org")
    path = unsubscribe_url(message).removeprefix("https://digest.example.org")
    client = TestClient(create_app(settings))

    page = client.get(path)  # what a link scanner does: must not unsubscribe
    assert page.status_code == 200 and "ada@example.org" in page.text
    assert _status(session, "ada@example.org") == "active"

    response = client.post(path, content="List-Unsubscribe=One-Click",
                           headers={"Content-Type": "application/x-www-form-urlencoded"}, follow_redirects=False)
    assert response.status_code == 200
    assert _status(session, "ada@example.org") == "unsubscribed"

    from datetime import timedelta
    again = run_daily(session, today() + timedelta(days=1), smtp_settings)
    assert again.send.sent == 1
    assert [m["To"] for m in parsed(sink)].count("ada@example.org") == 1


def test_unsubscribe_honoured_between_planning_and_sending(session, sink, smtp_settings):
    ingest_sample(session)
    subscriber = add_active(session, "ada@example.org", "language models")
    plan = plan_edition(session, today(), smtp_settings)
    session.commit()
    subscriber.status = "unsubscribed"
    session.commit()
    report = send_edition(session, plan.edition_id, smtp_settings)
    assert (report.sent, report.skipped) == (0, 1) and sink.handler.envelopes == []


def test_tampered_and_cross_purpose_tokens_are_rejected(session, settings):
    subscriber = add_active(session, "ada@example.org")
    from subscribers.tokens import make_token
    client = TestClient(create_app(settings))
    good = make_token("unsubscribe", subscriber.id, subscriber.email, settings)
    tampered = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    confirm = make_token("confirm", subscriber.id, subscriber.email, settings)
    for token in (tampered, confirm, "garbage"):
        response = client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 400 and "not valid" in response.text
    assert _status(session, "ada@example.org") == "active"


def test_delivery_is_marked_sent_only_after_the_server_accepts(session, settings, tmp_path):
    ingest_sample(session)
    add_active(session, "ada@example.org", "language models")

    class Refusing:
        async def handle_DATA(self, server, smtp_session, envelope):
            return "451 4.3.0 Try again later"

    with SmtpSink(tmp_path / "out", handler=Refusing()) as smtp:
        local = settings.model_copy(update={"smtp_host": smtp.host, "smtp_port": smtp.port})
        report = run_daily(session, today(), local)
    assert (report.send.sent, report.send.deferred) == (0, 1)
    delivery = session.exec(select(Delivery)).one()
    assert delivery.status == "pending" and "451" in delivery.error


def test_permanent_refusal_fails_the_delivery_and_suppresses_the_address(session, settings, tmp_path):
    ingest_sample(session)
    add_active(session, "gone@example.org", "language models")

    class Rejecting:
        async def handle_RCPT(self, server, smtp_session, envelope, address, rcpt_options):
            return "550 5.1.1 No such user"

    with SmtpSink(tmp_path / "out", handler=Rejecting()) as smtp:
        local = settings.model_copy(update={"smtp_host": smtp.host, "smtp_port": smtp.port})
        report = run_daily(session, today(), local)
    assert report.send.failed == 1
    assert _status(session, "gone@example.org") == "bounced"


def _status(session, email):
    session.expire_all()
    return session.exec(select(Subscriber.status).where(Subscriber.email == email)).one()
