"""The demo bank's table: per-customer changes to the seeded cards (a freeze).

Idempotent: a database where the table already exists (created by hand or by an earlier build) is left as
it is, so 0001 followed by 0002 always ends in the same schema.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Stamp = sa.DateTime(timezone=True)
TABLE = "demo_card_changes"
INDEX = "ix_demo_card_changes_customer"


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table(TABLE):
        op.create_table(
            TABLE,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("customer_key", sa.String(300), nullable=False),
            sa.Column("last4", sa.String(4), nullable=False),
            sa.Column("kind", sa.String(32), nullable=False),
            sa.Column("data", Json, nullable=False),
            sa.Column("created_at", Stamp, nullable=False),
            sa.UniqueConstraint("customer_key", "last4", "kind", name="uq_demo_card_change_once"),
        )
    if INDEX not in {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes(TABLE)}:
        op.create_index(INDEX, TABLE, ["customer_key"])


def downgrade() -> None:
    if sa.inspect(op.get_bind()).has_table(TABLE):
        op.drop_table(TABLE)
