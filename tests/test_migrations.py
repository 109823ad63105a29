"""The schema is owned by Alembic: one head, and the migrated database matches the models exactly."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

from newsletter import db


def test_single_head():
    heads = ScriptDirectory.from_config(db.alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1, f"several migration heads: {heads}"


def test_migrated_schema_matches_models(settings):
    with db.get_engine(settings.sqlalchemy_url).connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert diff == [], f"models and migrations differ; write a migration: {diff}"


def test_downgrade_and_upgrade_again(tmp_path):
    from alembic import command
    from sqlalchemy import inspect

    url = f"sqlite:///{tmp_path / 'm.db'}"
    head = ScriptDirectory.from_config(db.alembic_config(url)).get_current_head()
    db.upgrade(url)
    command.downgrade(db.alembic_config(url), "base")
    assert db.current_revision(url) is None
    assert set(inspect(db.get_engine(url)).get_table_names()) <= {"alembic_version"}  # every table gone
    db.upgrade(url)
    assert db.current_revision(url) == head
    with db.get_engine(url).connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), SQLModel.metadata) == []
