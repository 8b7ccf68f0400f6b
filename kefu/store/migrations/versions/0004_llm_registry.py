"""The LLM gateway: model versions, the stable/canary aliases, their audit trail, per-call accounting,
and a revision counter that servers poll so a promotion takes effect on the next turn.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Stamp = sa.DateTime(timezone=True)
Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table("llm_models"):
        op.create_table(
            "llm_models",
            sa.Column("name", sa.String(100), primary_key=True),
            sa.Column("base_url", sa.String(500), nullable=False),
            sa.Column("model", sa.String(200), nullable=False),
            sa.Column("profile", sa.String(32)),
            sa.Column("params", Json, nullable=False),
            sa.Column("languages", Json, nullable=False),
            sa.Column("notes", sa.Text, nullable=False),
            sa.Column("created_at", Stamp, nullable=False),
        )
    if not inspector.has_table("llm_aliases"):
        op.create_table(
            "llm_aliases",
            sa.Column("alias", sa.String(16), primary_key=True),
            sa.Column("name", sa.String(100), sa.ForeignKey("llm_models.name"), nullable=False),
            sa.Column("percent", sa.Float, nullable=False),
            sa.Column("updated_at", Stamp, nullable=False),
        )
    if not inspector.has_table("llm_audit"):
        op.create_table(
            "llm_audit",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("at", Stamp, nullable=False),
            sa.Column("actor", sa.String(100), nullable=False),
            sa.Column("action", sa.String(32), nullable=False),
            sa.Column("alias", sa.String(16)),
            sa.Column("from_name", sa.String(100)),
            sa.Column("to_name", sa.String(100)),
            sa.Column("detail", Json, nullable=False),
        )
        op.create_index("ix_llm_audit_alias", "llm_audit", ["alias", "id"])
    if not inspector.has_table("llm_calls"):
        op.create_table(
            "llm_calls",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("at", Stamp, nullable=False),
            sa.Column("conversation_id", sa.String(128), nullable=False),
            sa.Column("message_id", sa.String(128), nullable=False),
            sa.Column("name", sa.String(100), nullable=False),
            sa.Column("model", sa.String(200), nullable=False),
            sa.Column("variant", sa.String(16), nullable=False),
            sa.Column("outcome", sa.String(32), nullable=False),
            sa.Column("prompt_tokens", sa.Integer, nullable=False),
            sa.Column("completion_tokens", sa.Integer, nullable=False),
            sa.Column("ttft_ms", sa.Float),
            sa.Column("total_ms", sa.Float, nullable=False),
        )
        op.create_index("ix_llm_calls_at", "llm_calls", ["at"])
    if not inspector.has_table("llm_revision"):
        op.create_table(
            "llm_revision",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("revision", sa.Integer, nullable=False),
        )
        op.execute("INSERT INTO llm_revision (id, revision) VALUES (1, 0)")


def downgrade() -> None:
    for table in ("llm_revision", "llm_calls", "llm_audit", "llm_aliases", "llm_models"):
        if sa.inspect(op.get_bind()).has_table(table):
            op.drop_table(table)
