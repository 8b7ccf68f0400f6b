"""Retention and erasure: the privacy audit, and the indexes an erasure or a retention purge looks rows up by
(conversations by last activity, model-call accounting by conversation).

Idempotent, like the others: what already exists is left as it is.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Stamp = sa.DateTime(timezone=True)
Json = sa.JSON().with_variant(JSONB(), "postgresql")
INDEXES = (
    ("ix_conversations_updated_at", "conversations", ["updated_at"]),
    ("ix_llm_calls_conversation_id", "llm_calls", ["conversation_id"]),
)


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table("privacy_audit"):
        op.create_table(
            "privacy_audit",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("at", Stamp, nullable=False),
            sa.Column("actor", sa.String(100), nullable=False),
            sa.Column("action", sa.String(32), nullable=False),
            sa.Column("subject", sa.String(100), nullable=False),
            sa.Column("counts", Json, nullable=False),
            sa.Column("dry_run", sa.Boolean, nullable=False),
        )
    for name, table, columns in INDEXES:
        if name not in {ix["name"] for ix in inspector.get_indexes(table)}:
            op.create_index(name, table, columns)


def downgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for name, table, _ in INDEXES:
        if name in {ix["name"] for ix in inspector.get_indexes(table)}:
            op.drop_index(name, table_name=table)
    if inspector.has_table("privacy_audit"):
        op.drop_table("privacy_audit")
