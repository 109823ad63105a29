"""Issue 14, the CLI: every `--json` output parses with semantic ranking on (the default) and carries only
documented fields (item 17); a database that was never migrated gets one line saying what to run (item 18)."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from newsletter import db
from newsletter.clock import today
from newsletter.models import Edition, Subscriber
from newsletter.ranking.embeddings import semantic_available
from subscribers.transfer import FIELDS
from tests.conftest import FIXTURES

LISTING_FIELDS = {"id", *FIELDS, "soft_bounces"}  # README: `subscribers list --json`


def test_subscribers_list_json_with_a_stored_profile_embedding(settings, cli, session):
    assert settings.semantic == "auto" and semantic_available(settings)
    assert cli("ingest", FIXTURES / "hf_daily_papers.json").exit_code == 0
    cli("subscribers", "add", "ada@example.org", "--interests", "long-context language models")
    assert cli("recommend", "ada@example.org", "--json").exit_code == 0  # computes and stores the profile vector
    session.expire_all()
    stored = session.exec(select(Subscriber.profile_embedding)).one()
    assert stored is not None and not bytes(stored).isascii()  # the vector bytes the crash was about
    result = cli("subscribers", "list", "--json")
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    assert set(row) == LISTING_FIELDS and row["email"] == "ada@example.org"


def test_every_json_output_parses_with_semantic_ranking_on(settings, cli, session, sink, tmp_path):
    assert settings.semantic == "auto" and semantic_available(settings)
    assert cli("ingest", FIXTURES / "hf_daily_papers.json").exit_code == 0
    for email, interests in (("ada@example.org", "language model reasoning"), ("bob@example.org", "vision")):
        cli("subscribers", "add", email, "--interests", interests)
    people = tmp_path / "people.csv"
    people.write_text("email,interests\ncyd@example.org,robotics\nnot-an-address,x\n", encoding="utf-8")
    day = today().isoformat()
    outputs = {
        "recommend": cli("recommend", "ada@example.org", "--json"),
        "send --dry-run": cli("send", "--dry-run", "--json"),
        "send --limit": cli("send", "--limit", "1", "--json"),
    }
    session.expire_all()
    edition = session.exec(select(Edition)).one()
    assert cli("editions", "pause", str(edition.id)).exit_code == 0
    outputs |= {
        "editions list": cli("editions", "list", "--json"),
        "editions show": cli("editions", "show", day, "--json"),
        "editions resume": cli("editions", "resume", str(edition.id), "--json"),
        "send": cli("send", "--json"),
        "stats": cli("stats", "--json"),
        "stats --date": cli("stats", "--date", day, "--json"),
        "subscribers list": cli("subscribers", "list", "--json"),
        "subscribers import": cli("subscribers", "import", people, "--json"),
    }
    for name, result in outputs.items():
        assert result.exit_code in (0, 1), (name, result.output)
        assert result.stdout.strip(), (name, result.output)
        json.loads(result.stdout)  # the whole of stdout is one JSON document
        assert "Traceback" not in result.output, name
    assert outputs["subscribers import"].exit_code == 1  # one row rejected: still JSON on stdout
    assert all(set(row) == LISTING_FIELDS for row in json.loads(outputs["subscribers list"].stdout))
    assert json.loads(outputs["send --limit"].stdout)["send"]["sent"] == 1 and len(sink.handler.envelopes) == 2
    exported = cli("subscribers", "export", "--format", "json")
    assert [json.loads(line)["email"] for line in exported.stdout.splitlines()] == [
        "ada@example.org", "bob@example.org", "cyd@example.org"]


@pytest.mark.parametrize("revision", [None, "issue15_paper_feed_fields"])
def test_a_database_that_was_not_migrated_gets_one_line_saying_what_to_run(cli, settings, tmp_path, revision):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    if revision:
        db.upgrade(url, revision)
    fresh = settings.model_copy(update={"database_url": url})
    commands = [("subscribers", "list"), ("subscribers", "add", "ada@example.org")]
    if revision is None:  # an older schema still serves what did not change (stats); a missing one serves nothing
        commands += [("stats",), ("send", "--dry-run"), ("recommend", "ada@example.org")]
    for args in commands:
        result = cli(*args, settings_override=fresh)
        assert result.exit_code == 1, (args, result.output)
        [line] = result.stderr.strip().splitlines()
        expected = "was never migrated" if revision is None else f"is at revision {revision}"
        assert expected in line and "run `newsletter db upgrade`" in line, line
        assert "Traceback" not in result.output and "sqlalchemy" not in result.output.lower()
    assert cli("db", "upgrade", settings_override=fresh).exit_code == 0
    assert cli("subscribers", "add", "ada@example.org", settings_override=fresh).exit_code == 0
