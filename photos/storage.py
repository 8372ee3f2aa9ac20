"""Where renditions, upload originals and query mirrors live: one interface,
:class:`Storage`, two backends chosen by ``STORAGE_URL`` (:func:`open_storage`).

Keys are relative to the storage root (``THUMBS_DIR``, or the bucket's prefix)
and are what rows record. Both backends guarantee that no object is ever seen
half-written and that staged bytes get a name only when the caller publishes
them (see ``README.md``, "Storage", for how the pipeline keeps every object
named by a row).

*Local* (:class:`LocalStorage`, the default): a rendition's name is fixed by
its photo and rendition, so writing it again replaces it and never adds a
second one. Writes are atomic and leave nothing behind a writer that dies:

- the bytes go to an anonymous file (``O_TMPFILE``) in the target's directory
  and are flushed to disk; a process killed before publishing leaves nothing,
  the kernel drops the file with its last descriptor;
- publishing links the file to its name, or, when the name exists already, to a
  hidden ``.partial-<host>-<pid>-<token>`` name renamed over it at once. Only a
  writer killed between those two syscalls leaves a partial file, which
  :meth:`LocalStorage.sweep_partials` (run by every consumer as it starts)
  removes as soon as its writer is gone.

Filesystems without ``O_TMPFILE`` get the partial name from the start.

*S3* (:mod:`photos.storage_s3`): a PUT is all or nothing, so nothing is ever
half-written; renditions get write-once names (a random token per write), so
a stale writer can never replace anyone's object and a name's bytes never
change.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import hashlib
import os
import secrets
import socket
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from photos.errors import TransientError

if TYPE_CHECKING:
    from photos.config import Settings

PARTIAL_PREFIX = ".partial-"
_HOST = socket.gethostname().replace("/", "_")
_AT_FDCWD = -100
_AT_EMPTY_PATH = 0x1000


# Top-level names the service writes under the root: two hex characters (a
# photo's uuid prefix: its renditions and upload original) and the query mirrors.
QUERIES = "queries"

CONTENT_TYPES = {
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "avif": "image/avif",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "tiff": "image/tiff",
}


class StorageUnavailable(TransientError):
    """Our own outage, not the photo's fault: the bucket is missing, the
    credentials are refused, the endpoint does not answer. Work waits for it,
    it never fails a photo."""


class MissingObject(FileNotFoundError):
    """No object has this key."""


class InvalidKey(ValueError):
    """A key that names nothing the storage may hold (leaves the root, hidden)."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str  # quoted, as sent in an ETag header
    last_modified: datetime
    content_type: str


@dataclass(frozen=True)
class StoredObject:
    info: ObjectInfo
    data: bytes


class Staged(Protocol):
    """Bytes stored, not yet under their name for anyone reading the rows:
    :meth:`publish` (called while the row that names ``key`` is being
    committed) makes them final, :meth:`discard` (or the writer dying, or a
    later prune) drops them. ``discard`` after ``publish`` does nothing."""

    @property
    def key(self) -> str: ...

    def publish(self) -> None: ...

    def discard(self) -> None: ...


class Storage(Protocol):
    """What every writer and reader of stored bytes goes through."""

    def describe(self) -> str:
        """Where the objects are, for logs and error messages."""
        ...

    def rendition_key(self, photo_uuid: uuid.UUID, rendition: str, extension: str) -> str:
        """The key a new rendition of the photo is staged under."""
        ...

    def is_write_once(self, key: str) -> bool:
        """True if ``key``'s bytes never change once written (it may be cached
        as immutable)."""
        ...

    def stage(self, key: str, data: bytes) -> Staged: ...

    def write(self, key: str, data: bytes) -> None:
        """Atomically put ``data`` at ``key``, replacing what was there."""
        ...

    def read(self, key: str) -> bytes:
        """MissingObject if there is none, StorageUnavailable in an outage."""
        ...

    def stat(self, key: str) -> ObjectInfo: ...

    def fetch(self, key: str) -> StoredObject: ...

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        """Every key under ``prefix`` (a folder, ending in ``/``, or "")."""
        ...

    def delete(self, keys: Iterable[str]) -> None:
        """Remove these keys; absent ones are no error."""
        ...

    def check(self) -> None:
        """StorageUnavailable, saying why, unless objects can be read and written."""
        ...

    def sweep_partials(self, older_than: float = 600.0) -> int:
        """Remove what dead writers left half-written; how many."""
        ...


def photo_prefix(photo_uuid: uuid.UUID) -> str:
    """The folder of a photo's objects: its renditions and upload original."""
    return f"{str(photo_uuid)[:2]}/{photo_uuid}/"


def photo_key(photo_uuid: uuid.UUID, name: str, extension: str) -> str:
    """A key fixed by the photo and ``name`` (``original``, or a rendition)."""
    return f"{photo_prefix(photo_uuid)}{name}.{extension}"


def prune_photo(storage: Storage, photo_uuid: uuid.UUID, keep: Iterable[str]) -> list[str]:
    """Remove the photo's objects that ``keep`` (the keys its rows name) does
    not list: those of writers that died before committing, or whose lease was
    taken over, and those its rows named before. Returns the keys removed."""
    wanted = set(keep)
    stale = [k for k in storage.list_keys(photo_prefix(photo_uuid)) if k not in wanted]
    storage.delete(stale)
    return stale


def clear(storage: Storage) -> int:
    """Remove every object the service writes (``make db-schema``'s reset,
    which drops the rows naming them). Returns how many."""
    doomed = [k for k in storage.list_keys() if service_owned(k)]
    storage.delete(doomed)
    return len(doomed)


def service_owned(key: str) -> bool:
    """Whether ``key`` is one the service writes (and so one a row names)."""
    top = key.split("/", 1)[0]
    return top == QUERIES or (len(top) == 2 and all(c in "0123456789abcdef" for c in top))


def content_type(key: str) -> str:
    return CONTENT_TYPES.get(key.rsplit(".", 1)[-1].lower(), "application/octet-stream")


def check_key(key: str) -> str:
    """``key`` if it may name a stored object: relative, no empty, ``.`` or
    ``..`` segment, no hidden name, no control character. InvalidKey otherwise."""
    segments = key.split("/")
    if not key or any(not s or s.startswith(".") for s in segments) or any(ord(c) < 32 for c in key):
        raise InvalidKey(f"{key!r} is not a storage key")
    return key


def open_storage(settings: Settings) -> Storage:
    """The backend ``settings`` choose: the bucket of STORAGE_URL, else THUMBS_DIR."""
    if settings.storage is None:
        return LocalStorage(settings.thumbs_dir)
    # boto3 is imported only where S3 is used (and photos.storage_s3 imports this module).
    from photos.storage_s3 import S3Storage  # noqa: PLC0415

    return S3Storage(settings.storage, settings.s3)


class LocalStaged:
    """Bytes written and flushed, not yet under their name: :meth:`publish`
    puts them there atomically, :meth:`discard` (or the process dying) drops them."""

    def __init__(self, key: str, target: Path, *, fd: int | None = None, partial: Path | None = None) -> None:
        self._key = key
        self.target = target
        self._fd = fd
        self._partial = partial

    @property
    def key(self) -> str:
        return self._key

    def publish(self) -> None:
        try:
            if self._fd is not None:
                try:
                    _link_anonymous(self._fd, self.target)
                    return
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

    def discard(self) -> None:
        self._close()
        if self._partial is not None:
            self._partial.unlink(missing_ok=True)
            self._partial = None

    def _close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


class LocalStorage:
    """Files under a directory (THUMBS_DIR): today's guarantees, see the module."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self) -> str:
        return f"the directory {self.root}"

    def rendition_key(self, photo_uuid: uuid.UUID, rendition: str, extension: str) -> str:
        return photo_key(photo_uuid, rendition, extension)

    def is_write_once(self, key: str) -> bool:
        # A rendition's name is rewritten whenever its photo is processed again.
        return False

    def write(self, key: str, data: bytes) -> None:
        self.stage(key, data).publish()

    def stage(self, key: str, data: bytes) -> LocalStaged:
        """Put ``data`` on disk beside ``key`` without giving it a name yet."""
        target = self.resolve(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = _open_anonymous(target.parent)
        partial = None
        if fd is None:
            partial = _partial_name(target)
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        staged = (
            LocalStaged(key, target, fd=fd) if partial is None else LocalStaged(key, target, partial=partial)
        )
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

    def read(self, key: str) -> bytes:
        try:
            return self.resolve(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise MissingObject(f"no object {key!r} in {self.describe()}") from None

    def stat(self, key: str) -> ObjectInfo:
        path = self.resolve(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise MissingObject(f"no object {key!r} in {self.describe()}") from None
        if not path.is_file():
            raise MissingObject(f"no object {key!r} in {self.describe()}")
        return _local_info(key, st)

    def fetch(self, key: str) -> StoredObject:
        path = self.resolve(key)
        try:
            with path.open("rb") as f:
                st = os.fstat(f.fileno())
                data = f.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise MissingObject(f"no object {key!r} in {self.describe()}") from None
        return StoredObject(_local_info(key, st), data)

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        top = self.root / prefix if prefix else self.root
        if not top.is_dir():
            return
        for path in sorted(top.rglob("*")):
            if path.is_file() and not path.is_symlink() and not path.name.startswith("."):
                yield path.relative_to(self.root).as_posix()

    def delete(self, keys: Iterable[str]) -> None:
        folders: set[Path] = set()
        for key in keys:
            path = self.resolve(key)
            path.unlink(missing_ok=True)
            folders.add(path.parent)
        root = self.root.resolve()
        for folder in sorted(folders, key=lambda f: len(f.parts), reverse=True):
            # Empty folders go with their last file (a photo's, then its prefix's).
            current = folder
            while current != root and root in current.parents:
                try:
                    current.rmdir()
                except OSError:
                    break
                current = current.parent

    def check(self) -> None:
        if not self.root.is_dir():
            raise StorageUnavailable(f"{self.describe()} does not exist")
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageUnavailable(f"{self.describe()} is not writable")

    def resolve(self, key: str) -> Path:
        """The absolute path of ``key``; InvalidKey for anything outside the root."""
        root = self.root.resolve()
        path = (root / check_key(key)).resolve()
        if path == root or root not in path.parents:
            raise InvalidKey(f"path {key!r} leaves the storage root")
        return path

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


def _local_info(key: str, st: os.stat_result) -> ObjectInfo:
    # A replaced file is a new inode with a new mtime: the tag changes with it.
    tag = hashlib.blake2b(f"{st.st_ino}-{st.st_mtime_ns}-{st.st_size}".encode(), digest_size=8).hexdigest()
    return ObjectInfo(
        key=key,
        size=st.st_size,
        etag=f'"{tag}"',
        last_modified=datetime.fromtimestamp(st.st_mtime, UTC),
        content_type=content_type(key),
    )


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
