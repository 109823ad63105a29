"""delivery.message_key: the random part of each delivery's Message-ID, drawn once per row

Message-IDs were `<edition-E.delivery-D@domain>`, counters a fresh database or a staging copy hands out again.
Existing rows get their key here, in batches (the column is NOT NULL once every row has one).

Revision ID: issue15_message_keys
Revises: issue14_admin_sessions
Create Date: 2026-12-08
"""
import secrets

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = 'issue15_message_keys'
down_revision = 'issue14_admin_sessions'
branch_labels = None
depends_on = None

BATCH = 1000


def upgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.add_column(sa.Column('message_key', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=True))
    bind = op.get_bind()
    delivery = sa.table('delivery', sa.column('id', sa.Integer), sa.column('message_key', sa.String))
    while ids := bind.execute(sa.select(delivery.c.id).where(delivery.c.message_key.is_(None))
                              .limit(BATCH)).scalars().all():
        bind.execute(delivery.update().where(delivery.c.id == sa.bindparam('row_id'))
                     .values(message_key=sa.bindparam('key')),
                     [{'row_id': row_id, 'key': secrets.token_hex(12)} for row_id in ids])
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.alter_column('message_key', existing_type=sqlmodel.sql.sqltypes.AutoString(length=24),
                              nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_column('message_key')
