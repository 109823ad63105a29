"""paper: the Hugging Face feed's one-line summary (tldr), thumbnail, project page and organisation; stored links
made canonical (version-free arXiv pages) and http(s)-only

Revision ID: issue15_paper_feed_fields
Revises: issue6_delivery_queued_at
Create Date: 2026-12-03
"""
import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = 'issue15_paper_feed_fields'
down_revision = 'issue6_delivery_queued_at'
branch_labels = None
depends_on = None

NEW_COLUMNS = ('tldr', 'thumbnail_url', 'project_url', 'organization')
LINKS = ('url', 'pdf_url', 'code_url')


def upgrade() -> None:
    with op.batch_alter_table('paper', schema=None) as batch_op:
        for name in NEW_COLUMNS:
            batch_op.add_column(sa.Column(name, sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default=''))
    # Papers stored before: the arXiv abstract page and PDF, without version, once the arXiv id is known (it is
    # the external_id of every paper whose id does not start with "title:"); and no link but http(s) ones.
    op.execute(sa.text("UPDATE paper SET url = 'https://arxiv.org/abs/' || external_id, "
                       "pdf_url = 'https://arxiv.org/pdf/' || external_id WHERE external_id NOT LIKE 'title:%'"))
    for name in LINKS:
        op.execute(sa.text(f"UPDATE paper SET {name} = '' WHERE {name} <> '' AND lower({name}) NOT LIKE 'http://%' "
                           f"AND lower({name}) NOT LIKE 'https://%'"))


def downgrade() -> None:
    # The link clean-up is not undone: the links it replaced were versioned or unsafe.
    with op.batch_alter_table('paper', schema=None) as batch_op:
        for name in reversed(NEW_COLUMNS):
            batch_op.drop_column(name)
