"""``python -m photos.migrate_thumbs``: a local thumbs directory copied into
the bucket under the same keys, idempotently, safely re-run after a kill.
The real command, against moto's S3 server."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from photos.config import S3Location, Settings
from photos.storage import LocalStorage, photo_key
from tests.support.s3 import MotoS3
from tests.support.services import ROOT, service_env
from tests.support.wait import wait_for


def local_thumbs(root: Path, photos: int) -> dict[str, bytes]:
    """What a service on THUMBS_DIR leaves: renditions, originals, query
    mirrors; plus what it must not copy (a partial file, .gitkeep)."""
    storage = LocalStorage(root)
    written: dict[str, bytes] = {}
    for i in range(photos):
        photo = uuid.uuid4()
        for name, ext in (("original", "png"), ("fit-320", "jpg")):
            key = photo_key(photo, name, ext)
            written[key] = f"{key} {i}".encode() * 50
            storage.write(key, written[key])
    mirror = f"queries/ab/{uuid.uuid4()}-mirrored.jpg"
    written[mirror] = b"mirrored"
    storage.write(mirror, written[mirror])
    (root / ".gitkeep").write_bytes(b"")
    (root / "ab").mkdir(exist_ok=True)
    (root / "ab" / ".partial-host-1-abc").write_bytes(b"half")
    (root / "notes.txt").write_text("not the service's")
    return written


def run(settings: Settings, source: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "photos.migrate_thumbs", "--from", str(source), *args],
        env=service_env(settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def in_bucket(moto_s3: MotoS3, location: S3Location) -> dict[str, bytes]:
    return {k.removeprefix(location.prefix): v for k, v in moto_s3.objects(location).items()}


@pytest.fixture
def s3_settings(settings: Settings, moto_s3: MotoS3) -> Settings:
    return settings.with_(storage=moto_s3.new_bucket(prefix="migrated/"), s3=moto_s3.client_settings())


def test_every_file_is_copied_under_its_key_once_with_a_progress_bar(
    s3_settings: Settings, moto_s3: MotoS3, tmp_path: Path
) -> None:
    source = tmp_path / "old-thumbs"
    source.mkdir()
    written = local_thumbs(source, photos=5)
    assert s3_settings.storage is not None

    first = run(s3_settings, source)
    assert first.returncode == 0, first.stderr
    assert in_bucket(moto_s3, s3_settings.storage) == written
    assert f"copied {len(written)} files" in first.stdout
    assert "0 already there" in first.stdout
    assert "11/11" in first.stderr and "file" in first.stderr  # tqdm's bar

    again = run(s3_settings, source, "--no-progress")
    assert again.returncode == 0, again.stderr
    assert f"copied 0 files (0 bytes), {len(written)} already there" in again.stdout
    assert again.stderr == ""
    assert in_bucket(moto_s3, s3_settings.storage) == written


def test_a_file_changed_since_is_copied_again(s3_settings: Settings, moto_s3: MotoS3, tmp_path: Path) -> None:
    source = tmp_path / "old-thumbs"
    source.mkdir()
    written = local_thumbs(source, photos=2)
    assert run(s3_settings, source).returncode == 0
    key = next(k for k in written if k.endswith("fit-320.jpg"))
    LocalStorage(source).write(key, b"re-rendered")
    done = run(s3_settings, source, "--no-progress")
    assert f"copied 1 files (11 bytes), {len(written) - 1} already there" in done.stdout
    assert s3_settings.storage is not None
    assert in_bucket(moto_s3, s3_settings.storage)[key] == b"re-rendered"


@pytest.mark.slow
def test_a_run_killed_midway_leaves_whole_objects_and_the_next_run_finishes(
    s3_settings: Settings, moto_s3: MotoS3, tmp_path: Path
) -> None:
    source = tmp_path / "old-thumbs"
    source.mkdir()
    written = local_thumbs(source, photos=150)
    location = s3_settings.storage
    assert location is not None
    process = subprocess.Popen(
        [sys.executable, "-m", "photos.migrate_thumbs", "--from", str(source), "--no-progress"],
        env=service_env(s3_settings),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: moto_s3.count(location) >= 20, timeout=60, what="the first objects")
        assert process.poll() is None, "the copy finished before it could be interrupted"
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    partway = in_bucket(moto_s3, location)
    assert 20 <= len(partway) < len(written)
    assert all(written[k] == v for k, v in partway.items()), "an object is not whole"

    done = run(s3_settings, source, "--no-progress")
    assert done.returncode == 0, done.stderr
    assert f"{len(partway)} already there" in done.stdout
    assert in_bucket(moto_s3, location) == written


def test_without_a_bucket_configured_it_says_so_and_exits_2(settings: Settings, tmp_path: Path) -> None:
    done = run(settings, tmp_path)
    assert done.returncode == 2
    assert "set STORAGE_URL" in done.stderr


def test_a_missing_bucket_is_an_error_that_copies_nothing(
    s3_settings: Settings, moto_s3: MotoS3, tmp_path: Path
) -> None:
    assert s3_settings.storage is not None
    moto_s3.client().delete_bucket(Bucket=s3_settings.storage.bucket)
    source = tmp_path / "old-thumbs"
    source.mkdir()
    local_thumbs(source, photos=1)
    done = run(s3_settings, source)
    assert done.returncode == 1
    assert "does not exist" in done.stderr
