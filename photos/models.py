"""SQLAlchemy models. The schema itself is created only by Alembic migrations."""

from __future__ import annotations

import enum
from datetime import datetime
from uuid import UUID as PyUUID

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Enum,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class PhotoStatus(enum.StrEnum):
    pending = "pending"
    completed = "completed"
    processing = "processing"
    failed = "failed"


photo_status = Enum(
    PhotoStatus,
    name="photo_status",
    values_callable=lambda e: [m.value for m in e],
    create_type=False,
)


class Base(DeclarativeBase):
    pass


class Photo(Base):
    __tablename__ = "photos"
    __table_args__ = (
        Index("ix_photos_status_created_at", "status", "created_at"),
        CheckConstraint("attempts >= 0", name="ck_photos_attempts"),
    )

    uuid: Mapped[PyUUID] = mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )
    url: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[PhotoStatus] = mapped_column(
        photo_status, nullable=False, server_default=PhotoStatus.pending.value
    )
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    # How many times a consumer has claimed the photo since it was last queued.
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    failure_reason: Mapped[str | None] = mapped_column(Text)
    # While processing: who holds the photo and until when. A lease that has run
    # out belongs to a consumer that died; the next delivery takes the photo over.
    lease_owner: Mapped[PyUUID | None] = mapped_column(UUID(as_uuid=True))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # "url": downloaded from url; "upload": bytes kept at original_path (relative
    # to the thumbs directory).
    source: Mapped[str] = mapped_column(Text, nullable=False, server_default="url")
    original_path: Mapped[str | None] = mapped_column(Text)
    renditions: Mapped[list[str]] = mapped_column(
        ARRAY(Text), nullable=False, server_default=text("ARRAY['fit-320']::text[]")
    )
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A ThumbHash (some 25 bytes) of the completed photo: the page's placeholder.
    thumbhash: Mapped[bytes | None] = mapped_column(LargeBinary)

    thumbnails: Mapped[list[Thumbnail]] = relationship(
        back_populates="photo", order_by="Thumbnail.rendition", lazy="raise"
    )


class Thumbnail(Base):
    __tablename__ = "photo_thumbnails"
    __table_args__ = (
        UniqueConstraint("photo_uuid", "rendition", name="uq_photo_thumbnails_photo_rendition"),
    )

    uuid: Mapped[PyUUID] = mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )
    photo_uuid: Mapped[PyUUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("photos.uuid", ondelete="CASCADE"), nullable=False
    )
    rendition: Mapped[str] = mapped_column(Text, nullable=False, server_default="fit-320")
    width: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    height: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    # The file's storage key (a path relative to the storage root); the column
    # keeps the name the specification gives it.
    key: Mapped[str] = mapped_column("url", Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )

    photo: Mapped[Photo] = relationship(back_populates="thumbnails", lazy="raise")


class Query(Base):
    """The record of a synchronous query (POST /query) and its mirrored file."""

    __tablename__ = "queries"

    uuid: Mapped[PyUUID] = mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )
    size_bytes: Mapped[int] = mapped_column(Integer, nullable=False)
    mirrored_path: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class ApiKey(Base):
    """A key that may use the service. Only the SHA-256 of the key is kept; a
    revoked key stays listed (with ``revoked_at``) and its name stays taken."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    key_sha256: Mapped[bytes] = mapped_column(LargeBinary, nullable=False, unique=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
