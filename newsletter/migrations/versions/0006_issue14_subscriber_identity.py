"""subscriber.email_key: one subscriber per mailbox (case-insensitive, IDNA domain), unique; existing duplicates
merged; ids never reused on SQLite (AUTOINCREMENT)

Before this revision `Alice@example.org` and `alice@example.org` could be two subscribers, both mailed every
edition. Rows with the same key are merged into one, the survivor:
- status: complained, bounced, active, unsubscribed, pending (the first of these any row has): an address that
  complained or bounced stays suppressed, otherwise an active subscription stays active; the survivor is the row
  that had that status (the earliest created among them), so its profile is the one in use;
- created_at, confirmed_at and consent: the earliest (the first consent given is the one on record);
- deliveries, feedback and events of the other rows move to the survivor. Two deliveries of one edition become
  one (the one that got furthest: sent, sending, failed, pending, skipped), the other's picks joining it, so what
  was sent is still known; two judgements of one paper keep the latest;
- an event `merged` on the survivor records each merged row (id, address, status, dropped deliveries), so links
  signed for a merged row (an unsubscribe link in an old email) still act for the survivor
  (subscribers.consent.subscriber_for_token).

Revision ID: issue14_subscriber_identity
Revises: seed_papers_v1
Create Date: 2026-12-03
"""
from collections import defaultdict
from datetime import UTC, datetime

import idna
import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = 'issue14_subscriber_identity'
down_revision = 'seed_papers_v1'
branch_labels = None
depends_on = None

STATUS_RANK = {"complained": 0, "bounced": 1, "active": 2, "unsubscribed": 3, "pending": 4}
DELIVERY_RANK = {"sent": 0, "sending": 1, "failed": 2, "pending": 3, "skipped": 4}
TIME = sqlmodel.sql.sqltypes.UTCDateTime

subscriber = sa.table(
    'subscriber', sa.column('id', sa.Integer), sa.column('email', sa.String), sa.column('email_key', sa.String),
    sa.column('status', sa.String), sa.column('consent', sa.String), sa.column('created_at', TIME),
    sa.column('confirmed_at', TIME), sa.column('unsubscribed_at', TIME))
delivery = sa.table('delivery', sa.column('id', sa.Integer), sa.column('edition_id', sa.Integer),
                    sa.column('subscriber_id', sa.Integer), sa.column('status', sa.String),
                    sa.column('message_id', sa.String))
pick = sa.table('pick', sa.column('id', sa.Integer), sa.column('delivery_id', sa.Integer),
                sa.column('paper_id', sa.Integer), sa.column('position', sa.Integer))
feedback = sa.table('feedback', sa.column('id', sa.Integer), sa.column('subscriber_id', sa.Integer),
                    sa.column('paper_id', sa.Integer), sa.column('created_at', TIME))
event = sa.table('event', sa.column('subscriber_id', sa.Integer), sa.column('kind', sa.String),
                 sa.column('detail', sa.JSON), sa.column('created_at', TIME))


def address_key(email: str) -> str:
    """As subscribers.profiles.address_key (kept here as it was when this revision was written)."""
    local, _, domain = email.strip().rpartition("@")
    try:
        domain = idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError:
        pass
    return f"{local.lower()}@{domain.lower()}"


def _moment(value):
    """Timestamps for ordering: naive ones (as SQLite may hand them back) are UTC."""
    if value is None:
        return datetime.max.replace(tzinfo=UTC)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def upgrade() -> None:
    with op.batch_alter_table('subscriber', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_key', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(sa.select(subscriber).order_by(subscriber.c.created_at, subscriber.c.id)).all()
    groups: dict[str, list] = defaultdict(list)
    for row in rows:
        groups[address_key(row.email)].append(row)
    for key, group in groups.items():
        if len(group) > 1:
            _merge(connection, group)
        survivor_id = min(group, key=_survivor_order).id
        connection.execute(subscriber.update().where(subscriber.c.id == survivor_id).values(email_key=key))
    # SQLite: the table is rebuilt (AUTOINCREMENT can only be declared when a table is created); migrations run
    # without foreign-key enforcement, so the rows of other tables keep pointing at the same ids.
    sqlite = connection.dialect.name == "sqlite"
    with op.batch_alter_table('subscriber', schema=None, recreate="always" if sqlite else "auto",
                              table_kwargs={"sqlite_autoincrement": True}) as batch_op:
        batch_op.alter_column('email_key', existing_type=sqlmodel.sql.sqltypes.AutoString(), nullable=False)
        batch_op.drop_index('ix_subscriber_email')
        batch_op.create_index('ix_subscriber_email_key', ['email_key'], unique=True)


def _survivor_order(row):
    return STATUS_RANK.get(row.status, 9), _moment(row.created_at), row.id


def _merge(connection, group: list) -> None:
    survivor = min(group, key=_survivor_order)
    others = [row for row in group if row.id != survivor.id]
    confirmed = [row for row in group if row.confirmed_at is not None]
    first_consent = min(confirmed, key=lambda r: (_moment(r.confirmed_at), r.id)) if confirmed else None
    changes = {"created_at": min(group, key=lambda r: (_moment(r.created_at), r.id)).created_at}
    if first_consent is not None and survivor.status in ("active", "unsubscribed", "bounced", "complained"):
        changes.update(confirmed_at=first_consent.confirmed_at, consent=first_consent.consent or survivor.consent)
    connection.execute(subscriber.update().where(subscriber.c.id == survivor.id).values(**changes))
    for other in others:
        dropped = _move_deliveries(connection, other.id, survivor.id)
        _move_feedback(connection, other.id, survivor.id)
        connection.execute(event.update().where(event.c.subscriber_id == other.id)
                           .values(subscriber_id=survivor.id))
        connection.execute(event.insert().values(
            subscriber_id=survivor.id, kind="merged", created_at=datetime.now(UTC),
            detail={"from": other.id, "email": other.email, "status": other.status, "dropped_deliveries": dropped}))
        connection.execute(subscriber.delete().where(subscriber.c.id == other.id))


def _move_deliveries(connection, from_id: int, to_id: int) -> list[dict]:
    """Re-point `from_id`'s deliveries at `to_id`; where both have one for an edition, keep one (with both sets of
    picks). Returns what the dropped rows were."""
    theirs = {row.edition_id: row for row in connection.execute(
        sa.select(delivery).where(delivery.c.subscriber_id == from_id))}
    ours = {row.edition_id: row for row in connection.execute(
        sa.select(delivery).where(delivery.c.subscriber_id == to_id, delivery.c.edition_id.in_(list(theirs) or [-1])))}
    dropped = []
    for edition_id, their in theirs.items():
        our = ours.get(edition_id)
        if our is None:
            continue
        keep, drop = sorted((our, their), key=lambda d: (DELIVERY_RANK.get(d.status, 9), d.id))
        _move_picks(connection, drop.id, keep.id)
        connection.execute(delivery.delete().where(delivery.c.id == drop.id))
        dropped.append({"id": drop.id, "edition_id": edition_id, "status": drop.status,
                        "message_id": drop.message_id})
        if keep.id == their.id:  # the other row's delivery got further: it stays, now the survivor's
            connection.execute(delivery.update().where(delivery.c.id == keep.id).values(subscriber_id=to_id))
    connection.execute(delivery.update().where(delivery.c.subscriber_id == from_id).values(subscriber_id=to_id))
    return dropped


def _move_picks(connection, from_delivery: int, to_delivery: int) -> None:
    present = set(connection.execute(sa.select(pick.c.paper_id).where(pick.c.delivery_id == to_delivery)).scalars())
    last = connection.execute(sa.select(sa.func.max(pick.c.position)).where(pick.c.delivery_id == to_delivery)
                              ).scalar() or 0
    for row in connection.execute(sa.select(pick).where(pick.c.delivery_id == from_delivery)
                                  .order_by(pick.c.position)).all():
        if row.paper_id in present:
            connection.execute(pick.delete().where(pick.c.id == row.id))
            continue
        last += 1
        connection.execute(pick.update().where(pick.c.id == row.id).values(delivery_id=to_delivery, position=last))


def _move_feedback(connection, from_id: int, to_id: int) -> None:
    """The latest judgement of each paper wins."""
    ours = {row.paper_id: row
            for row in connection.execute(sa.select(feedback).where(feedback.c.subscriber_id == to_id))}
    for their in connection.execute(sa.select(feedback).where(feedback.c.subscriber_id == from_id)).all():
        our = ours.get(their.paper_id)
        if our is not None and _moment(our.created_at) >= _moment(their.created_at):
            connection.execute(feedback.delete().where(feedback.c.id == their.id))
            continue
        if our is not None:
            connection.execute(feedback.delete().where(feedback.c.id == our.id))
        connection.execute(feedback.update().where(feedback.c.id == their.id).values(subscriber_id=to_id))


def downgrade() -> None:
    # Merged rows stay merged: the survivor keeps every delivery, judgement and event.
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table('subscriber', schema=None, recreate="always" if sqlite else "auto",
                              table_kwargs={"sqlite_autoincrement": False}) as batch_op:
        batch_op.drop_index('ix_subscriber_email_key')
        batch_op.drop_column('email_key')
        batch_op.create_index('ix_subscriber_email', ['email'], unique=True)
