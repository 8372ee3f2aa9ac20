"""photos, photo_status and photo_thumbnails

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("pending", "completed", "processing", "failed")


def upgrade() -> None:
    status = postgresql.ENUM(*STATUSES, name="photo_status", create_type=False)
    status.create(op.get_bind(), checkfirst=True)
    uuid_pk = sa.Column(
        "uuid",
        postgresql.UUID(as_uuid=True),
        primary_key=True,
        server_default=sa.text("gen_random_uuid()"),
    )
    op.create_table(
        "photos",
        uuid_pk,
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("status", status, nullable=False, server_default="pending"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("failure_reason", sa.Text()),
        sa.Column("lease_owner", postgresql.UUID(as_uuid=True)),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True)),
        sa.Column("queued_at", sa.DateTime(timezone=True)),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("attempts >= 0", name="ck_photos_attempts"),
    )
    op.create_index("ix_photos_status_created_at", "photos", ["status", "created_at"])
    op.create_table(
        "photo_thumbnails",
        sa.Column(
            "uuid",
            postgresql.UUID(as_uuid=True),
            primary_key=True,
            server_default=sa.text("gen_random_uuid()"),
        ),
        sa.Column(
            "photo_uuid",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("photos.uuid", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("rendition", sa.Text(), nullable=False, server_default="fit-320"),
        sa.Column("width", sa.SmallInteger(), nullable=False),
        sa.Column("height", sa.SmallInteger(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("photo_uuid", "rendition", name="uq_photo_thumbnails_photo_rendition"),
    )


def downgrade() -> None:
    op.drop_table("photo_thumbnails")
    op.drop_index("ix_photos_status_created_at", table_name="photos")
    op.drop_table("photos")
    postgresql.ENUM(name="photo_status").drop(op.get_bind(), checkfirst=True)
