"""The `newsletter` command: a thin layer over the core, one module per command group.

Expected errors end with one line on stderr and exit code 1 (`support.expected_errors`); `--json` outputs carry
only documented fields. The settings are read here, once per command line, and passed on explicitly.
"""

from __future__ import annotations

import typer

from newsletter.cli import bounces, db, doctor, editions, ingest, reader, send, serve, stats, subscribers
from newsletter.cli.support import use_settings
from newsletter.log import configure as configure_logging

app = typer.Typer(help="Paper Digest: a personalized research-paper newsletter.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
app.add_typer(db.app, name="db")
app.add_typer(subscribers.app, name="subscribers")
app.add_typer(editions.app, name="editions")
app.add_typer(bounces.app, name="bounces")
app.command("ingest")(ingest.ingest)
app.command("recommend")(reader.recommend)
app.command("preview")(reader.preview)
app.command("feedback")(reader.feedback)
app.command("send")(send.send)
app.command("test-send")(send.test_send)
app.command("stats")(stats.stats)
app.command("serve")(serve.serve)
app.command("demo")(serve.demo)
app.command("doctor")(doctor.doctor)


@app.callback()
def main(context: typer.Context) -> None:
    current = use_settings(context.obj)
    configure_logging(current.log_level, current.log_format)
