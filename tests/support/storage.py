"""Tests that run on both storage backends, and what they look at in storage."""

from __future__ import annotations

from pathlib import Path

import pytest

from photos.config import Settings
from photos.storage import open_storage

# `pytestmark = BOTH_BACKENDS` runs every test of a module once on THUMBS_DIR
# and once on a bucket of moto's S3 server (see the `settings` fixture).
BOTH_BACKENDS = pytest.mark.parametrize("storage_kind", ["local", "s3"], indirect=True)


def stored_keys(settings: Settings) -> list[str]:
    """Every key in the test's storage, sorted; with S3 also checks that
    nothing was written to THUMBS_DIR."""
    if settings.storage is not None:
        assert local_files(settings.thumbs_dir) == [], "the S3 backend wrote to THUMBS_DIR"
    return sorted(open_storage(settings).list_keys())


def read_stored(settings: Settings, key: str) -> bytes:
    return open_storage(settings).read(key)


def local_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
