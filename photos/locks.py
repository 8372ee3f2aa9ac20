"""Which photos a consumer is working on, as Postgres sees it: one
session-level advisory lock per photo, held on a connection of the consumer's
own for as long as the work lasts.

Postgres drops a session's locks the moment its connection ends, and a killed
process's connections end with it (the kernel closes them; a machine that
vanished is noticed by the TCP keepalives set here within about 25 s). A free
lock on a ``processing`` photo therefore says that whoever held it is gone,
or that its lock connection is: :mod:`photos.pipeline` takes such a photo over
only when RabbitMQ redelivered its message too (the holder's broker channel
closed as well), and otherwise leaves it to the lease. A holder whose lock
connection dropped takes its locks again on the next :meth:`PhotoLocks.refresh`.

The locks decide who *starts* on a photo; the lease token in the conditional
UPDATEs still decides whose outcome is written.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid

from sqlalchemy import Connection, Engine, TextClause, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from photos.db import sqlalchemy_url

log = logging.getLogger(__name__)

# How long a claim of a redelivered photo waits for the lock: the previous
# holder's backend may still be ending when RabbitMQ hands the message over.
LOCK_WAIT_SECONDS = 5.0
_LOCK_NOT_AVAILABLE = "55P03"  # lock_timeout reached

_TRY = text("SELECT pg_try_advisory_lock(:key)")
_WAIT = text("SELECT pg_advisory_lock(:key)")
_UNLOCK = text("SELECT pg_advisory_unlock(:key)")


def lock_key(photo: uuid.UUID) -> int:
    """The photo's advisory lock key: its 128 bits folded into a signed bigint
    (two photos sharing one would only make one wait for the other)."""
    folded = int.from_bytes(photo.bytes[:8], "big") ^ int.from_bytes(photo.bytes[8:], "big")
    return folded - (1 << 64) if folded >= 1 << 63 else folded


def make_lock_engine(uri: str, *, wait_seconds: float = LOCK_WAIT_SECONDS) -> Engine:
    """Connections for :class:`PhotoLocks`, one at a time, never pooled: a
    lock belongs to the session that took it. The server probes an idle client
    with keepalives, so a vanished machine's locks are dropped within ~25 s."""
    options = (
        f"-c lock_timeout={int(wait_seconds * 1000)} "
        "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3"
    )
    return create_engine(
        sqlalchemy_url(uri),
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
        connect_args={
            "connect_timeout": 5,
            "application_name": "photo-processor locks",
            "options": options,
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
        },
    )


class PhotoLocks:
    """The advisory locks of one consumer's photos, on one connection (opened
    on first use, replaced when it dropped). Thread-safe."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Connection | None = None
        self._held: set[uuid.UUID] = set()
        self._mutex = threading.Lock()

    def acquire(self, photo: uuid.UUID, *, wait: bool = False) -> bool:
        """True when this consumer now holds the photo's lock; False when
        another session holds it (after waiting up to LOCK_WAIT_SECONDS if
        ``wait``) or this consumer is working on the photo already. Raises
        when the database cannot be reached."""
        with self._mutex:
            if photo in self._held:
                return False
            try:
                got = self._take_reconnecting(photo, wait)
            except DBAPIError as exc:
                if _lock_timeout(exc):
                    return False
                raise
            if got:
                self._held.add(photo)
            return got

    def release(self, photo: uuid.UUID) -> None:
        """Let go of the photo's lock (after its outcome is committed). A lock
        connection that dropped meanwhile took the lock with it."""
        with self._mutex:
            if photo not in self._held:
                return
            self._held.discard(photo)
            if self._connection is None:
                return
            try:
                self._execute(_UNLOCK, photo)
            except DBAPIError as exc:
                log.warning("lock connection lost", extra={"photo": str(photo), "error": repr(exc)})

    def refresh(self) -> list[uuid.UUID]:
        """Check the lock connection; if it dropped, open another and take the
        locks of the photos still in hand again. Returns those another consumer
        took meanwhile (their outcome is no longer ours to write)."""
        with self._mutex:
            if not self._held:
                return []
            if self._connection is not None:
                try:
                    self._connection.execute(text("SELECT 1"))
                    return []
                except DBAPIError:
                    self._drop()
            try:
                lost = [photo for photo in list(self._held) if not self._take(photo, wait=False)]
            except DBAPIError:
                return []  # the database is away: tried again on the next round
            self._held.difference_update(lost)
        for photo in lost:
            log.warning("photo taken over while our lock connection was down", extra={"photo": str(photo)})
        return lost

    def held(self) -> set[uuid.UUID]:
        with self._mutex:
            return set(self._held)

    def close(self) -> None:
        with self._mutex:
            self._held.clear()
            self._drop()
        self._engine.dispose()

    def _take_reconnecting(self, photo: uuid.UUID, wait: bool) -> bool:
        """_take, once more on a new connection if the kept one had dropped
        (the locks it held went with it; refresh() takes them again)."""
        try:
            return self._take(photo, wait)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
        return self._take(photo, wait)

    def _take(self, photo: uuid.UUID, wait: bool) -> bool:
        if wait:
            self._execute(_WAIT, photo)
            return True
        return bool(self._execute(_TRY, photo))

    def _execute(self, statement: TextClause, photo: uuid.UUID) -> object:
        """One statement on the lock connection (opened if need be); any error
        closes the connection, whose locks the server then drops."""
        if self._connection is None:
            self._connection = self._engine.connect()
        try:
            return self._connection.execute(statement, {"key": lock_key(photo)}).scalar()
        except DBAPIError as exc:
            if not _lock_timeout(exc):
                self._drop()
            raise

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(DBAPIError):
                connection.close()


def _lock_timeout(exc: DBAPIError) -> bool:
    return getattr(exc.orig, "pgcode", None) == _LOCK_NOT_AVAILABLE
