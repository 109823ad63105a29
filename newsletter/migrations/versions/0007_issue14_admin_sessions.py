"""admin_session: server-side admin sign-ins (random, revocable by signing out, expiring on the server)

Revision ID: issue14_admin_sessions
Revises: issue14_subscriber_identity
Create Date: 2026-12-03
"""
import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = 'issue14_admin_sessions'
down_revision = 'issue14_subscriber_identity'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('admin_session',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
                    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
                    sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
                    sa.PrimaryKeyConstraint('id'))
    with op.batch_alter_table('admin_session', schema=None) as batch_op:
        batch_op.create_index('ix_admin_session_token_hash', ['token_hash'], unique=True)
        batch_op.create_index('ix_admin_session_expires_at', ['expires_at'], unique=False)


def downgrade() -> None:
    op.drop_table('admin_session')
