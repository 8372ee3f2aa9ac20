"""Engine, sessions and the unit of work: one transaction per use case."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker


def sqlalchemy_url(uri: str) -> str:
    """PG_CONNECTION_URI is a libpq URI (``postgres://`` or ``postgresql://``, as
    psql takes it); SQLAlchemy is told to use psycopg2 for it."""
    for prefix in ("postgresql://", "postgres://"):
        if uri.startswith(prefix):
            return "postgresql+psycopg2://" + uri[len(prefix) :]
    return uri


def make_engine(uri: str, *, pool_size: int = 5) -> Engine:
    """An engine whose pool replaces connections that died (Postgres restarted,
    backend terminated, idle sessions dropped) before handing them out, so a
    dropped connection never reaches a request or a message. That costs a
    round trip per checkout; the consumer once went
    without it, and a completion that met a dead pooled connection made the
    photo wait out its own lease (tests/integration/test_dropped_connections.py)."""
    return create_engine(
        sqlalchemy_url(uri),
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        connect_args={"connect_timeout": 5, "application_name": "photo-processor"},
    )


class SessionFactory(sessionmaker[Session]):
    """Sessions on one engine (objects stay readable after their commit), and
    Core transactions on the same engine (:func:`transaction`)."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine, expire_on_commit=False)
        self.engine = engine

    def dispose(self) -> None:
        """Close the engine's pooled connections (those in use stay open)."""
        self.engine.dispose()


def make_session_factory(engine: Engine) -> SessionFactory:
    return SessionFactory(engine)


@contextmanager
def unit_of_work(factory: SessionFactory) -> Iterator[Session]:
    """A transaction: committed when the block ends normally, rolled back when
    it raises. Every use case opens one and commits once."""
    with factory() as session, session.begin():
        yield session


@contextmanager
def transaction(factory: SessionFactory) -> Iterator[Connection]:
    """The same boundary as :func:`unit_of_work` for Core statements: a
    connection in one transaction, committed when the block ends normally,
    rolled back when it raises. No Session: nothing to track or flush, for the
    statements run on every message."""
    with factory.engine.begin() as connection:
        yield connection


def ping(engine: Engine) -> None:
    """Returns when the database answers a query; raises SQLAlchemyError otherwise."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def is_dropped(exc: BaseException) -> bool:
    """True when the error came from a connection that had been dropped (its
    backend terminated, Postgres restarted): the pool has discarded it and the
    connections as old, so trying again at once gets a new one."""
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def is_unavailable(exc: BaseException) -> bool:
    """True when the error means the database could not be reached or the
    connection was lost, as opposed to a bad statement or a constraint."""
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)
