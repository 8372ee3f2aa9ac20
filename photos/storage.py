"""Where renditions live on disk.

A file's name is fixed by its photo and rendition, so writing it again replaces
it and never adds a second one. Writes are atomic: the bytes go to a hidden
``.partial-*`` file in the same directory, are flushed to disk and renamed into
place. A writer killed mid-write leaves only such a partial file, which
:meth:`Storage.sweep_partials` removes once it is older than any write takes.
"""

from __future__ import annotations

import os
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

PARTIAL_PREFIX = ".partial-"


@dataclass(frozen=True)
class Staged:
    """Bytes written and flushed under a partial name, not yet at their own."""

    partial: Path
    target: Path

    def publish(self) -> Path:
        try:
            os.replace(self.partial, self.target)
        except BaseException:
            self.discard()
            raise
        return self.target

    def discard(self) -> None:
        self.partial.unlink(missing_ok=True)


class Storage:
    def __init__(self, root: Path) -> None:
        self.root = root

    def rendition_path(self, photo_uuid: uuid.UUID, rendition: str, extension: str) -> str:
        """The path, relative to the root, of a photo's rendition."""
        return str(PurePosixPath(str(photo_uuid)[:2], str(photo_uuid), f"{rendition}.{extension}"))

    def write(self, relative: str, data: bytes) -> Path:
        """Atomically put ``data`` at ``relative`` (replacing what was there)."""
        return self.stage(relative, data).publish()

    def stage(self, relative: str, data: bytes) -> Staged:
        """Put ``data`` on disk under a partial name beside ``relative``, to be
        published (renamed into place) or discarded later: lets a caller commit
        the row that names the file in between."""
        target = self.resolve(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.parent / f"{PARTIAL_PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return Staged(partial, target)

    def read(self, relative: str) -> bytes:
        return self.resolve(relative).read_bytes()

    def delete_photo(self, photo_uuid: uuid.UUID) -> None:
        directory = self.root / str(photo_uuid)[:2] / str(photo_uuid)
        if directory.is_dir():
            for child in directory.iterdir():
                child.unlink(missing_ok=True)
            directory.rmdir()

    def resolve(self, relative: str) -> Path:
        """The absolute path of ``relative``; refuses anything outside the root."""
        root = self.root.resolve()
        path = (root / relative).resolve()
        if path == root or root not in path.parents:
            raise ValueError(f"path {relative!r} leaves the storage root")
        return path

    def sweep_partials(self, older_than: float = 600.0) -> int:
        """Remove partial files left by dead writers; returns how many."""
        removed = 0
        cutoff = time.time() - older_than
        if not self.root.is_dir():
            return 0
        for path in self.root.rglob(f"{PARTIAL_PREFIX}*"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed
