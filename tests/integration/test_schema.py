"""The schema comes only from Alembic; `make db-schema` resets it anywhere."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, text

from photos import schema
from photos.config import Settings
from photos.db import sqlalchemy_url
from tests.support.s3 import MotoS3
from tests.support.services import temporary_database


def scalar(uri: str, sql: str) -> object:
    engine = create_engine(sqlalchemy_url(uri))
    with engine.connect() as connection:
        value = connection.execute(text(sql)).scalar()
    engine.dispose()
    return value


def execute(uri: str, sql: str) -> None:
    engine = create_engine(sqlalchemy_url(uri))
    with engine.begin() as connection:
        connection.execute(text(sql))
    engine.dispose()


def test_migrations_create_the_specified_enum_and_unique_rendition(database_uri: str) -> None:
    labels = scalar(
        database_uri,
        "SELECT array_agg(enumlabel ORDER BY enumsortorder) FROM pg_enum "
        "JOIN pg_type t ON t.oid = enumtypid WHERE t.typname = 'photo_status'",
    )
    assert isinstance(labels, list)
    assert sorted(labels) == ["completed", "failed", "pending", "processing"]


def test_migrations_go_down_and_up_again(tmp_path: Path) -> None:
    with temporary_database() as uri:
        schema.upgrade(uri)
        command.downgrade(schema.alembic_config(uri), "base")
        assert scalar(uri, "SELECT to_regclass('photos')") is None
        schema.upgrade(uri)
        assert scalar(uri, "SELECT to_regclass('photo_thumbnails')") == "photo_thumbnails"


def test_reset_works_on_a_database_holding_thumbnails_and_loads_samples(tmp_path: Path) -> None:
    thumbs = tmp_path / "thumbs"
    (thumbs / "ab" / "abc").mkdir(parents=True)
    (thumbs / "ab" / "abc" / "fit-320.jpg").write_bytes(b"old")
    (thumbs / ".gitkeep").write_bytes(b"")
    with temporary_database() as uri:
        schema.upgrade(uri)
        execute(
            uri,
            "INSERT INTO photos (uuid, url, status) VALUES "
            "('00000000-0000-0000-0000-000000000001', 'http://x/1.jpg', 'completed')",
        )
        execute(
            uri,
            "INSERT INTO photo_thumbnails (photo_uuid, width, height, url) VALUES "
            "('00000000-0000-0000-0000-000000000001', 320, 200, 'ab/abc/fit-320.jpg')",
        )
        settings = Settings(pg_uri=uri, thumbs_dir=thumbs, sample_base_url="http://localhost:3000/samples/")
        schema.reset(settings)
        schema.load_samples(settings)
        assert scalar(uri, "SELECT count(*) FROM photo_thumbnails") == 0
        assert scalar(uri, "SELECT count(*) FROM photos WHERE status = 'pending'") == len(schema.SAMPLES) + 1
        assert (
            scalar(uri, "SELECT count(*) FROM photos WHERE url LIKE 'http://localhost:3000/samples/%'") == 6
        )
    assert sorted(p.name for p in thumbs.iterdir()) == [".gitkeep"]
    samples = Path(schema.ROOT) / "samples"
    assert all((samples / name).is_file() for name in schema.SAMPLES)
    assert not (samples / schema.MISSING_SAMPLE).exists()


def test_reset_replaces_a_hand_made_schema_of_the_original_exercise(tmp_path: Path) -> None:
    """The exercise's own set-up: an enum with two values, photos, thumbnails
    with a foreign key, and no alembic_version."""
    with temporary_database() as uri:
        execute(uri, "CREATE TYPE photo_status AS ENUM ('pending', 'completed')")
        execute(
            uri,
            "CREATE TABLE photos (uuid uuid PRIMARY KEY DEFAULT gen_random_uuid(), url text NOT NULL, "
            "status photo_status NOT NULL DEFAULT 'pending', created_at timestamptz NOT NULL DEFAULT now())",
        )
        execute(
            uri,
            "CREATE TABLE photo_thumbnails (uuid uuid PRIMARY KEY DEFAULT gen_random_uuid(), "
            "photo_uuid uuid NOT NULL REFERENCES photos(uuid), width smallint NOT NULL, "
            "height smallint NOT NULL, url text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())",
        )
        execute(uri, "INSERT INTO photos (uuid, url) VALUES ('00000000-0000-0000-0000-000000000002', 'x')")
        execute(
            uri,
            "INSERT INTO photo_thumbnails (photo_uuid, width, height, url) VALUES "
            "('00000000-0000-0000-0000-000000000002', 1, 1, 'x')",
        )
        schema.reset(Settings(pg_uri=uri, thumbs_dir=tmp_path))
        assert scalar(uri, "SELECT version_num FROM alembic_version") is not None
        assert scalar(uri, "SELECT count(*) FROM photos") == 0
        execute(uri, "INSERT INTO photos (url, status) VALUES ('y', 'failed')")


def test_reset_removes_what_the_dropped_rows_named_from_the_bucket(moto_s3: MotoS3, tmp_path: Path) -> None:
    """make db-schema on the S3 backend: the renditions, originals and query
    mirrors go with their rows; what the service did not write stays."""
    location = moto_s3.new_bucket(prefix="thumbs/")
    s3 = moto_s3.client()
    for key in ("ab/abc/fit-320.0123456789abcdef.jpg", "ab/abc/original.png", "queries/cd/x-mirrored.jpg"):
        s3.put_object(Bucket=location.bucket, Key=location.prefix + key, Body=b"x")
    s3.put_object(Bucket=location.bucket, Key=location.prefix + "README.txt", Body=b"mine")
    s3.put_object(Bucket=location.bucket, Key="elsewhere/ab/abc/fit-320.jpg", Body=b"not under the prefix")
    with temporary_database() as uri:
        schema.reset(
            Settings(pg_uri=uri, thumbs_dir=tmp_path, storage=location, s3=moto_s3.client_settings())
        )
    assert sorted(moto_s3.objects(location)) == ["elsewhere/ab/abc/fit-320.jpg", "thumbs/README.txt"]
