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
    url = f"sqlite:///{tmp_path / 'm.db'}"
    db.upgrade(url)
    from alembic import command
    command.downgrade(db.alembic_config(url), "base")
    db.upgrade(url)
    assert db.current_revision(url) is not None
