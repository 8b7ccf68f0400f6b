"""Handover to people: the handover queue (with the assignee), tickets for when nobody is online, and
agent presence.

Idempotent, like the others: what already exists is left as it is.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

Stamp = sa.DateTime(timezone=True)
Json = sa.JSON().with_variant(JSONB(), "postgresql")
ACTIVE = sa.text("status IN ('waiting', 'claimed')")
INDEXES = (
    ("ix_handoffs_status", "handoffs", ["status", "requested_at"], {}),
    # At most one handover of a conversation is open: two replicas handing over at once cannot both queue it.
    (
        "ux_handoffs_active",
        "handoffs",
        ["conversation_id"],
        {"unique": True, "sqlite_where": ACTIVE, "postgresql_where": ACTIVE},
    ),
    ("ix_tickets_status", "tickets", ["status", "created_at"], {}),
    ("ix_tickets_conversation_id", "tickets", ["conversation_id"], {}),
    ("ix_agent_presence_seen_at", "agent_presence", ["seen_at"], {}),
)


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table("handoffs"):
        op.create_table(
            "handoffs",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column(
                "conversation_id", sa.String(128), sa.ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False
            ),
            sa.Column("message_id", sa.String(128), nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("reason", sa.String(64), nullable=False),
            sa.Column("language", sa.String(8), nullable=False),
            sa.Column("channel", sa.String(32), nullable=False),
            sa.Column("agents_online", sa.Boolean, nullable=False),
            sa.Column("summary", Json, nullable=False),
            sa.Column("requested_at", Stamp, nullable=False),
            sa.Column("assignee", sa.String(100)),
            sa.Column("assignee_name", sa.String(100)),
            sa.Column("claimed_at", Stamp),
            sa.Column("ended_at", Stamp),
            sa.Column("resolution", sa.String(32)),
            sa.UniqueConstraint("conversation_id", "message_id", name="uq_handoffs_turn"),
        )
    if not inspector.has_table("tickets"):
        op.create_table(
            "tickets",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column(
                "conversation_id", sa.String(128), sa.ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False
            ),
            sa.Column("handoff_id", sa.Integer, sa.ForeignKey("handoffs.id", ondelete="CASCADE"), nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("reason", sa.String(64), nullable=False),
            sa.Column("language", sa.String(8), nullable=False),
            sa.Column("phone", sa.String(32)),
            sa.Column("email", sa.String(254)),
            sa.Column("summary", Json, nullable=False),
            sa.Column("created_at", Stamp, nullable=False),
            sa.Column("updated_at", Stamp, nullable=False),
            sa.Column("closed_at", Stamp),
            sa.UniqueConstraint("handoff_id", name="uq_tickets_handoff"),
        )
    if not inspector.has_table("agent_presence"):
        op.create_table(
            "agent_presence",
            sa.Column("agent", sa.String(100), primary_key=True),
            sa.Column("name", sa.String(100), nullable=False),
            sa.Column("seen_at", Stamp, nullable=False),
        )
    inspector = sa.inspect(op.get_bind())
    for name, table, columns, options in INDEXES:
        if name not in {ix["name"] for ix in inspector.get_indexes(table)}:
            op.create_index(name, table, columns, **options)


def downgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table in ("agent_presence", "tickets", "handoffs"):
        if inspector.has_table(table):
            op.drop_table(table)
