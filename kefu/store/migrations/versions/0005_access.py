"""Access control: API keys (only their SHA-256 is kept) and the agent and admin accounts.

Idempotent, like the others: what already exists is left as it is.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Stamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table("api_keys"):
        op.create_table(
            "api_keys",
            sa.Column("id", sa.String(16), primary_key=True),
            sa.Column("name", sa.String(100), nullable=False),
            sa.Column("role", sa.String(16), nullable=False),
            sa.Column("secret_sha256", sa.String(64), nullable=False),
            sa.Column("created_at", Stamp, nullable=False),
            sa.Column("last_used_at", Stamp),
            sa.Column("revoked_at", Stamp),
        )
    if not inspector.has_table("accounts"):
        op.create_table(
            "accounts",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("username", sa.String(64), nullable=False),
            sa.Column("role", sa.String(16), nullable=False),
            sa.Column("password_hash", sa.String(255), nullable=False),
            sa.Column("session_gen", sa.Integer, nullable=False),
            sa.Column("created_at", Stamp, nullable=False),
            sa.Column("password_changed_at", Stamp, nullable=False),
            sa.Column("last_login_at", Stamp),
            sa.Column("disabled_at", Stamp),
            sa.UniqueConstraint("username", name="uq_accounts_username"),
        )


def downgrade() -> None:
    for table in ("accounts", "api_keys"):
        if sa.inspect(op.get_bind()).has_table(table):
            op.drop_table(table)
