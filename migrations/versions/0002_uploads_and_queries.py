"""uploads (source, original_path, renditions on photos) and queries

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Where a photo's bytes come from: its URL, or a file uploaded to us and
    # kept under the thumbs directory at original_path.
    op.add_column("photos", sa.Column("source", sa.Text(), nullable=False, server_default="url"))
    op.add_column("photos", sa.Column("original_path", sa.Text()))
    op.create_check_constraint(
        "ck_photos_source",
        "photos",
        "(source = 'url' AND original_path IS NULL) OR (source = 'upload' AND original_path IS NOT NULL)",
    )
    # The renditions (recipe names) to make of the photo.
    op.add_column(
        "photos",
        sa.Column(
            "renditions",
            postgresql.ARRAY(sa.Text()),
            nullable=False,
            server_default=sa.text("ARRAY['fit-320']::text[]"),
        ),
    )
    # The record of each synchronous query (POST /query): names the mirrored file.
    op.create_table(
        "queries",
        sa.Column(
            "uuid",
            postgresql.UUID(as_uuid=True),
            primary_key=True,
            server_default=sa.text("gen_random_uuid()"),
        ),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("mirrored_path", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("queries")
    op.drop_column("photos", "renditions")
    op.drop_constraint("ck_photos_source", "photos")
    op.drop_column("photos", "original_path")
    op.drop_column("photos", "source")
