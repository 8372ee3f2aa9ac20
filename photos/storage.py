"""Where renditions live on disk.

A file's name is fixed by its photo and rendition, so writing it again replaces
it and never adds a second one. Writes are atomic and leave nothing behind a
writer that dies:

- the bytes go to an anonymous file (``O_TMPFILE``) in the target's directory
  and are flushed to disk; a process killed before publishing leaves nothing,
  the kernel drops the file with its last descriptor;
- publishing links the file to its name, or, when the name exists already, to a
  hidden ``.partial-<host>-<pid>-<token>`` name renamed over it at once. Only a
  writer killed between those two syscalls leaves a partial file, which
  :meth:`Storage.sweep_partials` (run by every consumer as it starts) removes
  as soon as its writer is gone.

Filesystems without ``O_TMPFILE`` get the partial name from the start.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import secrets
import socket
import time
import uuid
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

PARTIAL_PREFIX = ".partial-"
_HOST = socket.gethostname().replace("/", "_")
_AT_FDCWD = -100
_AT_EMPTY_PATH = 0x1000


class Staged:
    """Bytes written and flushed, not yet under their name: :meth:`publish`
    puts them there atomically, :meth:`discard` (or the process dying) drops them."""

    def __init__(self, target: Path, *, fd: int | None = None, partial: Path | None = None) -> None:
        self.target = target
        self._fd = fd
        self._partial = partial

    def publish(self) -> Path:
        try:
            if self._fd is not None:
                try:
                    _link_anonymous(self._fd, self.target)
                    return self.target
                except FileExistsError:
                    self._partial = _partial_name(self.target)
                    _link_anonymous(self._fd, self._partial)
                except _CannotLink:
                    self._partial = _partial_name(self.target)
                    _copy_to(self._fd, self._partial)
            assert self._partial is not None
            os.replace(self._partial, self.target)
            self._partial = None
        except BaseException:
            self.discard()
            raise
        finally:
            self._close()
        return self.target

    def discard(self) -> None:
        self._close()
        if self._partial is not None:
            self._partial.unlink(missing_ok=True)
            self._partial = None

    def _close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


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
        """Put ``data`` on disk beside ``relative`` without giving it a name yet,
        to be published (linked into place) or discarded later: lets a caller
        commit the row that names the file in between."""
        target = self.resolve(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = _open_anonymous(target.parent)
        partial = None
        if fd is None:
            partial = _partial_name(target)
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        staged = Staged(target, fd=fd) if partial is None else Staged(target, partial=partial)
        try:
            _write_all(fd, data)
            os.fsync(fd)
            if partial is not None:
                os.close(fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            staged.discard()
            raise
        return staged

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

    def remove_renditions(self, photo_uuid: uuid.UUID, renditions: Iterable[str]) -> None:
        """Remove the photo's files for these renditions (whatever their
        extension); other files of the photo (its uploaded original) stay."""
        directory = self.root / str(photo_uuid)[:2] / str(photo_uuid)
        names = set(renditions)
        if not directory.is_dir():
            return
        for child in directory.iterdir():
            if child.suffix and child.stem in names:
                child.unlink(missing_ok=True)

    def sweep_partials(self, older_than: float = 600.0) -> int:
        """Remove partial files whose writer is gone: a process of this host that
        no longer runs, or, for other hosts' (a shared volume), any older than
        ``older_than`` seconds. Returns how many were removed."""
        removed = 0
        cutoff = time.time() - older_than
        if not self.root.is_dir():
            return 0
        for path in self.root.rglob(f"{PARTIAL_PREFIX}*"):
            try:
                if not _writer_alive(path.name) or path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed


def _partial_name(target: Path) -> Path:
    return target.parent / f"{PARTIAL_PREFIX}{_HOST}-{os.getpid()}-{secrets.token_hex(6)}"


def _writer_alive(name: str) -> bool:
    """False only for a partial file written by a process of this host that has
    ended; True when that cannot be known."""
    host, _, rest = name[len(PARTIAL_PREFIX) :].rpartition("-")[0].rpartition("-")
    if host != _HOST or not rest.isdigit():
        return True
    try:
        os.kill(int(rest), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _open_anonymous(directory: Path) -> int | None:
    """A file without a name in ``directory``, or None where the filesystem
    cannot make one."""
    flag = getattr(os, "O_TMPFILE", 0)
    if not flag:
        return None
    try:
        return os.open(directory, flag | os.O_RDWR, 0o644)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
            return None
        raise


class _CannotLink(OSError):
    """This process may not give an anonymous file a name here."""


def _link_anonymous(fd: int, name: Path) -> None:
    """Give the anonymous file ``fd`` the ``name`` (FileExistsError if taken)."""
    try:
        os.link(f"/proc/self/fd/{fd}", name)
        return
    except FileExistsError:
        raise
    except OSError as exc:
        # gVisor and procfs-less systems refuse the /proc route; linkat with
        # AT_EMPTY_PATH does the same where the process may use it.
        if exc.errno not in (errno.EXDEV, errno.ENOENT, errno.EPERM, errno.EACCES):
            raise
    if _libc().linkat(fd, b"", _AT_FDCWD, os.fsencode(name), _AT_EMPTY_PATH) == 0:
        return
    code = ctypes.get_errno()
    if code == errno.EEXIST:
        raise FileExistsError(code, os.strerror(code), str(name))
    raise _CannotLink(code, os.strerror(code), str(name))


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _copy_to(fd: int, name: Path) -> None:
    """The anonymous file's bytes, written under ``name`` and flushed."""
    out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        offset = 0
        while chunk := os.pread(fd, 1 << 20, offset):
            _write_all(out, chunk)
            offset += len(chunk)
        os.fsync(out)
    finally:
        os.close(out)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
