"""``python -m photos.schema {upgrade,reset}``: the schema, by Alembic only.

``reset`` drops what the migrations created (and what older hand-written set-ups
left, thumbnails first so the foreign key never stands in the way), migrates to
head, removes the objects (renditions, upload originals, query mirrors) that
the dropped rows named, from whichever storage STORAGE_URL chooses, and loads the
sample photos as pending.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from photos import db, pipeline, storage
from photos.config import Settings
from photos.models import Base

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ("landscape.jpg", "portrait.jpg", "rotated-exif6.jpg", "sunset.png", "square.jpg")
# Served by nobody: shows what a failed download looks like.
MISSING_SAMPLE = "no-such-photo.jpg"


def alembic_config(pg_uri: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", pg_uri.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    return config


def upgrade(pg_uri: str) -> None:
    command.upgrade(alembic_config(pg_uri), "head")


def reset(settings: Settings) -> None:
    engine = db.make_engine(settings.pg_uri)
    with engine.begin() as connection:
        # Every table the models know, dependents first; CASCADE also takes
        # foreign keys that hand-made tables of older set-ups point at them.
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(text(f'DROP TABLE IF EXISTS "{table.name}" CASCADE'))
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
        connection.execute(text("DROP TYPE IF EXISTS photo_status CASCADE"))
    engine.dispose()
    upgrade(settings.pg_uri)
    storage.clear(storage.open_storage(settings))


def load_samples(settings: Settings) -> None:
    engine = db.make_engine(settings.pg_uri)
    base = settings.sample_base_url.rstrip("/") + "/"
    pipeline.add_photos(db.make_session_factory(engine), [base + n for n in (*SAMPLES, MISSING_SAMPLE)])
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m photos.schema", description=__doc__)
    parser.add_argument("action", choices=["upgrade", "reset"])
    parser.add_argument("--no-samples", action="store_true", help="with reset: load no sample photos")
    args = parser.parse_args()
    settings = Settings.from_env()
    if args.action == "upgrade":
        upgrade(settings.pg_uri)
    else:
        reset(settings)
        if not args.no_samples:
            load_samples(settings)
        print(f"schema reset; sample photos loaded from {settings.sample_base_url}")


if __name__ == "__main__":
    main()
