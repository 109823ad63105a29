import json
import os
import re
import subprocess
import sys
from email import message_from_bytes
from email.policy import default
from pathlib import Path

from newsletter.clock import today
from tests.conftest import FIXTURES
from tests.helpers import html_part, received, text_part, without_tokens


def test_subscribers_add_list_remove(settings, cli):
    result = cli("subscribers", "add", "ada@example.org", "--interests", "long-context LLMs",
                 "--keywords", "KV cache, MoE", "--timezone", "Europe/Paris", "--send-hour", "6")
    assert result.exit_code == 0, result.output
    listed = json.loads(cli("subscribers", "list", "--json").output)
    assert listed[0]["email"] == "ada@example.org" and listed[0]["keywords"] == ["KV cache", "MoE"]
    assert listed[0]["timezone"] == "Europe/Paris" and listed[0]["send_hour"] == 6
    assert cli("subscribers", "remove", "ada@example.org").exit_code == 0
    assert json.loads(cli("subscribers", "list", "--json").output) == []


def test_bad_input_is_one_line_and_exit_code_1(settings, cli):
    for args, expected in [
        (("subscribers", "add", "not-an-address"), "invalid email address"),
        (("subscribers", "add", "x@example.org", "--timezone", "Nowhere/City"), "unknown time zone"),
        (("subscribers", "remove", "ghost@example.org"), "no subscriber"),
        (("ingest", str(FIXTURES / "missing.json")), "no such file"),
        (("recommend", "ghost@example.org"), "no subscriber"),
    ]:
        result = cli(*args)
        assert result.exit_code == 1, (args, result.output)
        assert expected in result.output and "Traceback" not in result.output


def test_ingest_and_recommend_json(settings, cli):
    assert cli("ingest", "--sample").exit_code == 0
    cli("subscribers", "add", "ada@example.org", "--interests", "KV cache compression", "--keywords", "KV cache")
    result = cli("recommend", "ada@example.org", "--json", "--limit", "1000")
    rows = json.loads(result.output)
    assert len(rows) == 436  # every candidate can be listed
    assert {"id", "title", "score", "reasons"} <= set(rows[0])
    assert rows[0]["score"] >= rows[-1]["score"] and isinstance(rows[0]["reasons"], list)


def test_preview_writes_the_exact_email(settings, tmp_path, cli):
    cli("ingest", "--sample")
    cli("subscribers", "add", "ada@example.org", "--interests", "diffusion models")
    assert cli("preview", "ada@example.org", "--out", str(tmp_path / "a.eml")).exit_code == 0
    message = message_from_bytes((tmp_path / "a.eml").read_bytes(), policy=default)
    assert message["To"] == "ada@example.org" and message["List-Unsubscribe"]
    text = cli("preview", "ada@example.org", "--text").output
    assert "Unsubscribe: https://digest.example.org/unsubscribe/" in text
    assert cli("preview", "ada@example.org", "--out", str(tmp_path / "a.html")).exit_code == 0
    assert cli("preview", "ada@example.org", "--text", "--date", today().isoformat(),
               "--out", str(tmp_path / "a.txt")).exit_code == 0
    html = next(p for p in message.walk() if p.get_content_type() == "text/html").get_content()
    same = lambda part: re.sub(r"/[\w-]+\.[\w-]+\.[\w-]+", "/TOKEN", part.replace("\r\n", "\n")).rstrip()  # noqa: E731
    assert same((tmp_path / "a.html").read_bytes().decode()) == same(html)  # tokens carry their signing time
    assert same((tmp_path / "a.txt").read_bytes().decode()) == same(text)
    assert cli("preview", "nobody@example.org").exit_code == 1


def test_the_preview_is_the_message_that_is_then_sent(settings, session, sink, tmp_path, cli):
    cli("ingest", "--sample")
    cli("subscribers", "add", "ada@example.org", "--interests", "KV cache compression for long-context inference",
        "--keywords", "KV cache")
    planned = cli("send", "--dry-run")  # nothing kept: the preview ranks live
    assert planned.exit_code == 0
    cli("preview", "ada@example.org", "--out", tmp_path / "before.eml")
    assert cli("send").exit_code == 0
    cli("preview", "ada@example.org", "--out", tmp_path / "after.eml")  # planned picks, the delivery's Message-ID
    [sent] = received(sink)
    for name in ("before.eml", "after.eml"):
        preview = message_from_bytes((tmp_path / name).read_bytes(), policy=default)
        assert preview["Subject"] == sent["Subject"] and preview["To"] == sent["To"]
        assert without_tokens(html_part(preview)) == without_tokens(html_part(sent))
        assert without_tokens(text_part(preview)) == without_tokens(text_part(sent))
    after = message_from_bytes((tmp_path / "after.eml").read_bytes(), policy=default)
    assert after["Message-ID"] == sent["Message-ID"] and after["List-Unsubscribe"] is not None


def test_demo_as_a_subprocess_twice_sends_nothing_new(tmp_path):
    # Lexical-only: embedding the corpus is covered by the ranking tests and would dominate this one's time.
    env = {**os.environ, "NEWSLETTER_DATA_DIR": str(tmp_path / "var"), "NEWSLETTER_DATABASE_URL": "",
           "NEWSLETTER_SEMANTIC": "off"}
    command = [sys.executable, "-m", "newsletter", "demo"]
    first = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "emails sent: 6" in first.stdout
    outbox = tmp_path / "var" / "outbox"
    emails = sorted(outbox.glob("*.eml"))
    assert len(emails) == 6
    assert all(message_from_bytes(p.read_bytes(), policy=default)["List-Unsubscribe"] for p in emails)
    second = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0 and "emails sent: 0" in second.stdout
    assert len(list(outbox.glob("*.eml"))) == 6
    assert Path(tmp_path / "var" / "newsletter.db").exists()


def test_recommend_json_lists_every_candidate_best_first_and_says_when_lexical_only(settings, lexical_settings, cli):
    cli("ingest", "--sample")
    cli("subscribers", "add", "ada@example.org", "--interests", "mixture of experts", "--keywords", "MoE")
    result = cli("recommend", "ada@example.org", "--json", "--limit", "1000")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 436 and len({r["id"] for r in rows}) == 436
    assert all({"id", "title", "score", "reasons"} <= set(r) and r["reasons"] for r in rows)
    assert all(isinstance(r["score"], float) and isinstance(r["reasons"], list) for r in rows)
    assert [r["score"] for r in rows[10:]] == sorted((r["score"] for r in rows[10:]), reverse=True)
    assert "semantic ranking off" not in result.stderr  # semantic ranking is on: the default
    table = cli("recommend", "ada@example.org", settings_override=lexical_settings)
    assert "semantic ranking off" in table.stderr  # NEWSLETTER_SEMANTIC=off: the operator is told


def test_profile_update_and_feedback_from_the_cli(settings, cli):
    cli("ingest", "--sample")
    cli("subscribers", "add", "ada@example.org", "--interests", "diffusion models")
    result = cli("subscribers", "update", "ada@example.org", "--interests", "mixture of experts",
                 "--keywords", "MoE, routing", "--authors", "Noam Shazeer", "--exclude", "upcycling")
    assert result.exit_code == 0, result.output
    listed = json.loads(cli("subscribers", "list", "--json").stdout)[0]
    assert listed["interests"] == "mixture of experts" and listed["keywords"] == ["MoE", "routing"]
    assert listed["followed_authors"] == ["Noam Shazeer"] and listed["excluded_keywords"] == ["upcycling"]
    assert cli("subscribers", "update", "ada@example.org").exit_code == 1  # nothing to change

    top = json.loads(cli("recommend", "ada@example.org", "--json").stdout)[0]
    assert cli("feedback", "ada@example.org", str(top["paper_id"]), "less").exit_code == 0
    assert top["paper_id"] not in [r["paper_id"] for r in json.loads(cli("recommend", "ada@example.org",
                                                                          "--json", "--limit", "3").stdout)]
    assert cli("feedback", "ada@example.org", top["id"], "more").exit_code == 0  # by external id too
    forgot = cli("feedback", "ada@example.org", str(top["paper_id"]), "forget")
    assert forgot.exit_code == 0 and "forgot" in forgot.stdout
    assert "had not judged" in cli("feedback", "ada@example.org", str(top["paper_id"]), "forget").stdout
    bad = cli("feedback", "ada@example.org", str(top["paper_id"]), "love")
    assert bad.exit_code == 1 and "feedback must be one of more, less, forget" in bad.output
    assert cli("feedback", "ada@example.org", "999999", "more").exit_code == 1
