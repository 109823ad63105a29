"""Every command explains itself; the structured log has one line per ingest, send and unsubscribe."""

import json

import typer
from typer.testing import CliRunner

from newsletter.cli import app
from subscribers.consent import unsubscribe
from tests.conftest import FIXTURES
from tests.helpers import add_active

runner = CliRunner()


def command_paths(group, prefix: tuple = ()) -> list[tuple]:
    paths = []
    for name, command in group.commands.items():
        if hasattr(command, "commands"):  # a group
            paths += command_paths(command, prefix + (name,))
        else:
            paths.append(prefix + (name,))
    return paths


def test_every_command_has_help_text(settings):
    paths = command_paths(typer.main.get_command(app))
    assert {("send",), ("test-send",), ("stats",), ("editions", "pause"), ("subscribers", "import"),
            ("subscribers", "export")} <= set(paths)
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, path
        usage, _, rest = result.output.partition("Usage:")[2].partition("\n")
        assert len(rest.split("Options")[0].strip()) > 20, f"{path} has no help text"


def test_structured_log_lines_in_json(settings, session, cli):
    settings.log_format = "json"
    result = cli("ingest", FIXTURES / "hf_daily_papers.json")
    assert result.exit_code == 0, result.output
    lines = [json.loads(text) for text in result.stderr.splitlines()]  # every line on stderr is one JSON object
    [line] = [entry for entry in lines if entry["event"] == "papers ingested"]
    assert line["level"] == "INFO" and line["new"] >= 1
    assert line["source"].endswith("hf_daily_papers.json") and line["logger"] == "newsletter.ingest"


def test_unsubscribe_is_logged(settings, session, caplog):
    subscriber = add_active(session, "ada@example.org")
    with caplog.at_level("INFO", logger="newsletter.subscribers"):
        unsubscribe(session, subscriber)
        unsubscribe(session, subscriber)  # already unsubscribed: nothing happens, nothing logged
    [record] = caplog.records
    assert record.getMessage() == "subscriber unsubscribed"
    assert record.fields == {"subscriber": subscriber.id, "email": "ada@example.org"}
