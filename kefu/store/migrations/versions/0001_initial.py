"""Initial schema: conversations, events, turns, feedback and the demo shop's tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Stamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("user_id", sa.String(256)),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("owner", sa.String(16), nullable=False),
        sa.Column("locale", sa.String(8)),
        sa.Column("dialogue", Json, nullable=False),
        sa.Column("last_seq", sa.Integer, nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
        sa.Column("updated_at", Stamp, nullable=False),
    )
    op.create_index("ix_conversations_user_id", "conversations", ["user_id"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "conversation_id",
            sa.String(128),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("type", sa.String(48), nullable=False),
        sa.Column("message_id", sa.String(128)),
        sa.Column("payload", Json, nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
        sa.UniqueConstraint("conversation_id", "seq", name="uq_events_conversation_seq"),
    )
    op.create_index("ix_events_type", "events", ["type"])
    op.create_table(
        "turns",
        sa.Column(
            "conversation_id",
            sa.String(128),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("message_id", sa.String(128), primary_key=True),
        sa.Column("first_seq", sa.Integer, nullable=False),
        sa.Column("last_seq", sa.Integer, nullable=False),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("result", Json, nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
    )
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "conversation_id",
            sa.String(128),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("rating", sa.Integer, nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("created_at", Stamp, nullable=False),
    )
    op.create_index("ix_feedback_conversation_id", "feedback", ["conversation_id"])
    op.create_table(
        "demo_products",
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column("data", Json, nullable=False),
        sa.Column("stock", sa.Integer, nullable=False),
    )
    op.create_table(
        "demo_orders",
        sa.Column("order_id", sa.String(64), primary_key=True),
        sa.Column("data", Json, nullable=False),
    )
    op.create_table(
        "demo_order_changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("customer_key", sa.String(300), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("data", Json, nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
        sa.UniqueConstraint("customer_key", "order_id", "kind", name="uq_demo_change_once"),
    )
    op.create_index("ix_demo_changes_customer_order", "demo_order_changes", ["customer_key", "order_id"])


def downgrade() -> None:
    for table in ("demo_order_changes", "demo_orders", "demo_products", "feedback", "turns", "events"):
        op.drop_table(table)
    op.drop_table("conversations")
