"""The knowledge library: operator-added documents with their encoded chunks, and a revision counter
that every change bumps so that each server process notices and reloads its index.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Stamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table("kb_documents"):
        op.create_table(
            "kb_documents",
            sa.Column("id", sa.String(200), primary_key=True),
            sa.Column("language", sa.String(8), primary_key=True),
            sa.Column("title", sa.String(500), nullable=False),
            sa.Column("source", sa.String(1000), nullable=False),
            sa.Column("kind", sa.String(16), nullable=False),
            sa.Column("version", sa.Integer, nullable=False),
            sa.Column("sha256", sa.String(64), nullable=False),
            sa.Column("chunk_count", sa.Integer, nullable=False),
            sa.Column("encoders", sa.String(200), nullable=False),
            sa.Column("data", sa.LargeBinary, nullable=False),
            sa.Column("created_at", Stamp, nullable=False),
            sa.Column("updated_at", Stamp, nullable=False),
        )
    if not inspector.has_table("kb_revision"):
        op.create_table(
            "kb_revision",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("revision", sa.Integer, nullable=False),
        )
        op.execute("INSERT INTO kb_revision (id, revision) VALUES (1, 0)")


def downgrade() -> None:
    for table in ("kb_revision", "kb_documents"):
        if sa.inspect(op.get_bind()).has_table(table):
            op.drop_table(table)
