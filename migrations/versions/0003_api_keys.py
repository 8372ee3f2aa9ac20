"""api_keys: the keys that may use the service (only their SHA-256 is kept)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), sa.Identity(), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        # The key itself is shown once and never stored; a request's key is
        # hashed and looked up by this (unique, so indexed) column.
        sa.Column("key_sha256", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("name", name="uq_api_keys_name"),
        sa.UniqueConstraint("key_sha256", name="uq_api_keys_key_sha256"),
        sa.CheckConstraint("octet_length(key_sha256) = 32", name="ck_api_keys_key_sha256_length"),
        sa.CheckConstraint("name <> ''", name="ck_api_keys_name_not_empty"),
    )
    # "Is any key in force?" is asked on every request.
    op.create_index(
        "ix_api_keys_unrevoked", "api_keys", ["id"], postgresql_where=sa.text("revoked_at IS NULL")
    )


def downgrade() -> None:
    op.drop_table("api_keys")
