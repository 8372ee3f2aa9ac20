"""``python -m photos.migrate_thumbs``: copy a local thumbs directory into the
bucket of STORAGE_URL, for a service switching from THUMBS_DIR to S3.

Every file the service wrote (renditions, upload originals, query mirrors) is
copied under the same key, so the rows that name them stay as they are.

- *Idempotent.* A file whose object is already in the bucket with the same
  bytes (its MD5, which is a single PUT's ETag) is skipped; one that differs
  is copied again.
- *Safe to interrupt.* Each object is one PUT, all or nothing: a run killed
  midway leaves whole objects, and running it again copies what is missing.
- Hidden files (the local backend's ``.partial-*`` leftovers) and files the
  service did not write are left alone.

Run it with the service stopped (or before consumers on S3 start), then start
the service with STORAGE_URL set.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from photos.config import ConfigError, Settings
from photos.storage import LocalStorage, StorageUnavailable, service_owned
from photos.storage_s3 import S3Storage


@dataclass(frozen=True)
class Migration:
    copied: int
    skipped: int
    bytes_copied: int


def migrate(source: LocalStorage, bucket: S3Storage, *, progress: bool = True) -> Migration:
    """Copy every service-owned file of ``source`` missing from, or different
    in, ``bucket``. Raises StorageUnavailable if the bucket cannot be used."""
    bucket.check()
    present = bucket.etags()
    keys = [k for k in source.list_keys() if service_owned(k)]
    copied = skipped = bytes_copied = 0
    with tqdm(
        total=len(keys), unit="file", desc="copying to " + bucket.describe(), disable=not progress
    ) as bar:
        for key in keys:
            data = source.read(key)
            if present.get(key) == f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"':
                skipped += 1
            else:
                bucket.write(key, data)
                copied += 1
                bytes_copied += len(data)
            bar.set_postfix(copied=copied, skipped=skipped, refresh=False)
            bar.update()
    return Migration(copied, skipped, bytes_copied)


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m photos.migrate_thumbs",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    parser.add_argument("--from", dest="source", type=Path, help="the thumbs directory (default: THUMBS_DIR)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args()
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"migrate_thumbs: {exc}", file=sys.stderr)
        return 2
    if settings.storage is None:
        print(
            "migrate_thumbs: set STORAGE_URL to the bucket to copy into (s3://bucket/prefix)", file=sys.stderr
        )
        return 2
    source = LocalStorage(args.source or settings.thumbs_dir)
    if not source.root.is_dir():
        print(f"migrate_thumbs: {source.root} is not a directory", file=sys.stderr)
        return 2
    bucket = S3Storage(settings.storage, settings.s3)
    try:
        done = migrate(source, bucket, progress=not args.no_progress)
    except StorageUnavailable as exc:
        print(f"migrate_thumbs: {exc.reason}", file=sys.stderr)
        return 1
    print(
        f"copied {done.copied} files ({done.bytes_copied} bytes), {done.skipped} already there, "
        f"from {source.root} to {bucket.describe()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
