"""photos.thumbhash: the ThumbHash placeholder of a completed photo

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Some 25 bytes, written with the photo's completion. Photos completed
    # before this migration have none until they are processed again.
    op.add_column("photos", sa.Column("thumbhash", sa.LargeBinary()))


def downgrade() -> None:
    op.drop_column("photos", "thumbhash")
