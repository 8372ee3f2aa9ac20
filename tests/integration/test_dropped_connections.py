"""A consumer whose pooled database connections are dropped while it works
(idle_session_timeout, a pooler, an operator's pg_terminate_backend): real
Postgres, RabbitMQ, photo host and the consumer's Worker as ``python -m
consumer`` builds it, on a thread of the test."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text

from consumer.worker import Worker, build_worker
from photos import pipeline
from photos.config import Settings
from photos.db import SessionFactory, sqlalchemy_url
from photos.models import PhotoStatus
from photos.queue import Publisher, Topology
from tests.support import images
from tests.support.invariants import assert_settled
from tests.support.photo_host import Gate, PhotoHost, serve_bytes
from tests.support.services import Broker
from tests.support.wait import wait_for

JPEG = images.jpeg(640, 480)


@pytest.fixture
def killer(settings: Settings) -> Iterator[Engine]:
    engine = create_engine(sqlalchemy_url(settings.pg_uri), isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


def terminate_idle_backends(killer: Engine) -> None:
    """What a Postgres that drops idle sessions (idle_session_timeout, a
    pooler, an operator's pg_terminate_backend) does to the consumer's pool
    while it downloads: every idle connection of this database is gone."""
    with killer.connect() as connection:
        pids = (
            connection.execute(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND backend_type = 'client backend' AND state = 'idle' AND pid <> pg_backend_pid()"
                )
            )
            .scalars()
            .all()
        )
        assert pids, "the consumer had no idle connection"
        connection.execute(
            text("SELECT pg_terminate_backend(pid) FROM unnest(CAST(:p AS int[])) AS pid"), {"p": pids}
        )
        wait_for(
            lambda: (
                not connection.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(CAST(:p AS int[]))"),
                    {"p": pids},
                ).scalar_one()
            ),
            10,
            what="the terminated backends to exit",
        )


def test_idle_connections_dropped_during_a_download_cost_neither_a_lease_nor_an_attempt(
    settings: Settings,
    session_factory: SessionFactory,
    broker: Broker,
    photo_host: PhotoHost,
    killer: Engine,
) -> None:
    """The consumer claims the photo and downloads it; meanwhile its pooled
    (idle) database connections are dropped. Completing the photo must simply
    use a new connection: one download, one attempt, completed at once. (Without
    the pool's pre-ping, the completion ran on a dead connection, the whole
    handling was run again, and its claim found the photo held under the
    consumer's own live lease: the photo waited out the lease, was downloaded
    a second time and spent an attempt.)"""
    settings = settings.with_(lease_seconds=8.0)
    gate = Gate(then=serve_bytes(JPEG))
    [photo] = pipeline.add_photos(session_factory, [photo_host.add("p.jpg", gate)])
    worker: Worker = build_worker(settings)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        publisher = Publisher(settings.amqp_uri, Topology(settings.queue_name))
        try:
            assert pipeline.queue_photos(session_factory, publisher, [photo]).queued == [photo]
        finally:
            publisher.close()
        gate.wait_arrived(15, "the consumer never downloaded the photo")
        # Claimed (committed) and downloading: the consumer's connections are idle in its pool.
        terminate_idle_backends(killer)
        gate.opened.set()

        def state() -> tuple[PhotoStatus, int] | None:
            with killer.connect() as connection:
                row = connection.execute(
                    text("SELECT status, attempts FROM photos WHERE uuid = :u"), {"u": photo}
                ).one()
            return (PhotoStatus(row.status), row.attempts) if row.status == "completed" else None

        # Well inside the 8 s lease: a completion on a fresh connection takes milliseconds.
        try:
            wait_for(state, 4, what="the photo to be completed")
        except AssertionError:
            with killer.connect() as connection:
                row = connection.execute(
                    text("SELECT status, attempts, lease_owner FROM photos WHERE uuid = :u"), {"u": photo}
                ).one()
            raise AssertionError(
                f"not completed 4 s after its download was released: status={row.status}, "
                f"attempts={row.attempts}, held by this very consumer: {row.lease_owner == worker.processor.owner}, "
                f"messages waiting in the delay queue: {broker.depth(broker.topology.delay_queue)}"
            ) from None
        assert state() == (PhotoStatus.completed, 1)
        assert photo_host.requests == ["/p.jpg"], "the photo was downloaded again"
        assert_settled(session_factory, broker, settings, [photo], timeout=10)
    finally:
        gate.opened.set()
        worker.stop()
        thread.join(30)
