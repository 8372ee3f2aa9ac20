"""Engine, sessions and the unit of work: one transaction per use case."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine
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
    backend terminated) before handing them out, so a dropped connection never
    reaches a request or a message."""
    return create_engine(
        sqlalchemy_url(uri),
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        connect_args={"connect_timeout": 5, "application_name": "photo-processor"},
    )


SessionFactory = sessionmaker[Session]


def make_session_factory(engine: Engine) -> SessionFactory:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: SessionFactory) -> Iterator[Session]:
    """A transaction: committed when the block ends normally, rolled back when
    it raises. Every use case opens one and commits once."""
    with factory() as session, session.begin():
        yield session


def is_unavailable(exc: BaseException) -> bool:
    """True when the error means the database could not be reached or the
    connection was lost, as opposed to a bad statement or a constraint."""
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)
