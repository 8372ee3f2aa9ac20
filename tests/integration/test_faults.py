"""Fault injection against the real processes: ``python -m consumer`` on the
test's own database, queues and thumbs directory, real RabbitMQ and Postgres,
photo hosts on this machine. Consumers are SIGKILLed at chosen moments, their
broker connections closed with rabbitmqctl, their database backends
terminated; every case ends with the invariant of tests/support/invariants.py.

Nothing here restarts RabbitMQ or Postgres: other test sessions may share them.
Connection faults are confined to this test's own consumers (found by the
connection name the consumer gives RabbitMQ, and by this test's database).
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.exc import DBAPIError

from photos import pipeline
from photos.config import Settings
from photos.db import SessionFactory, is_unavailable, sqlalchemy_url, unit_of_work
from photos.messages import PhotoMessage
from photos.models import Photo, PhotoStatus
from photos.queue import Publisher, Topology
from photos.storage import open_storage
from tests.support import images
from tests.support.invariants import Outcome, assert_settled
from tests.support.photo_host import Gate, PhotoHost, serve_bytes
from tests.support.proxy import TcpProxy
from tests.support.services import (
    Broker,
    Process,
    close_connections,
    closed_port,
    consumer,
    unreachable_amqp_uri,
)
from tests.support.storage import BOTH_BACKENDS, stored_keys
from tests.support.wait import wait_for
from web import create_app

pytestmark = [pytest.mark.slow, BOTH_BACKENDS]

JPEG = images.jpeg(640, 480)


# --- consumers as processes, and what they log ------------------------------------


def object_versions(settings: Settings) -> dict[str, str]:
    """Each stored object's ETag: a rewritten object gets a new one."""
    storage = open_storage(settings)
    return {key: storage.stat(key).etag for key in stored_keys(settings)}


@dataclass
class Consumers:
    """``python -m consumer`` processes of this test, each logging to its own file."""

    settings: Settings
    log_dir: Path
    started: list[Process] = field(default_factory=list)

    def start(self, settings: Settings | None = None, **env: str) -> Process:
        process = consumer(
            settings or self.settings, self.log_dir / f"consumer-{len(self.started)}.log", **env
        )
        self.started.append(process.start())
        wait_for(
            lambda: events(process, "consuming") or not process.alive(),
            timeout=30,
            what=f"consumer {process.pid} to start",
        )
        assert process.alive(), process.log()
        return process

    def alive(self) -> list[Process]:
        return [p for p in self.started if p.alive()]

    def logs(self) -> str:
        return "\n".join(f"--- {p.log_path.name}\n{p.log()}" for p in self.started)

    def stop(self) -> None:
        for process in self.alive():
            try:
                process.terminate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def events(process: Process, message: str, photo: uuid.UUID | None = None) -> list[dict[str, Any]]:
    """The consumer's log lines with this message (and photo)."""
    found = []
    for line in process.log().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("message") == message and (photo is None or entry.get("photo") == str(photo)):
            found.append(entry)
    return found


@dataclass
class Rig:
    """What the consumer tests here share: this test's settings, database,
    queues, photo host and consumers, and the steps they take with them."""

    settings: Settings
    factory: SessionFactory
    broker: Broker
    host: PhotoHost
    consumers: Consumers

    def add(self, urls: list[str]) -> list[uuid.UUID]:
        return pipeline.add_photos(self.factory, urls)

    def queue(self, photos: list[uuid.UUID]) -> None:
        publisher = Publisher(self.settings.amqp_uri, Topology(self.settings.queue_name))
        try:
            assert pipeline.queue_photos(self.factory, publisher, photos).queued == photos
        finally:
            publisher.close()

    def status_of(self, photo: uuid.UUID) -> PhotoStatus:
        with unit_of_work(self.factory) as session:
            found = session.scalar(select(Photo.status).where(Photo.uuid == photo))
            assert found is not None
            return found

    def completed_count(self, photos: list[uuid.UUID]) -> int:
        """0 while the database refuses this test too (its backends being terminated)."""
        try:
            with unit_of_work(self.factory) as session:
                return int(
                    session.scalar(
                        select(func.count()).where(
                            Photo.uuid.in_(photos), Photo.status == PhotoStatus.completed
                        )
                    )
                    or 0
                )
        except DBAPIError as exc:
            if not is_unavailable(exc):
                raise
            return 0

    def settle(
        self, photos: list[uuid.UUID], consumers: list[Process], timeout: float = 60.0
    ) -> dict[uuid.UUID, Outcome]:
        """:func:`assert_settled` on this test's database, queues and thumbs."""
        return assert_settled(
            self.factory, self.broker, self.settings, photos, consumers=consumers, timeout=timeout
        )


@pytest.fixture
def rig(
    settings: Settings, session_factory: SessionFactory, broker: Broker, photo_host: PhotoHost, tmp_path: Path
) -> Iterator[Rig]:
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    consumers = Consumers(settings, log_dir)
    yield Rig(settings, session_factory, broker, photo_host, consumers)
    consumers.stop()
    print(consumers.logs())  # shown by pytest when the test failed


class Served:
    """Serves bytes, and tells when the last of them has been handed to the socket."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.done = threading.Event()

    def __call__(self, handler: BaseHTTPRequestHandler) -> None:
        serve_bytes(self.data, "image/png")(handler)
        handler.wfile.flush()
        self.done.set()


# --- SIGKILL -----------------------------------------------------------------------


def test_consumer_killed_mid_download(rig: Rig) -> None:
    gate = Gate(then=serve_bytes(JPEG))
    [p] = rig.add([rig.host.add("stalls.jpg", gate)])
    first = rig.consumers.start()
    rig.queue([p])
    wait_for(lambda: gate.arrivals == 1, what="the download to start")
    assert rig.status_of(p) == PhotoStatus.processing
    first.kill()
    gate.opened.set()  # the host answers the dead consumer's request, to nobody
    second = rig.consumers.start()
    outcome = rig.settle([p], consumers=[second])[p]
    assert (outcome.status, outcome.attempts) == (PhotoStatus.completed, 2)
    assert gate.arrivals == 2
    assert not events(first, "message done")


# The takeover's bound: a photo whose consumer was killed is completed by
# another consumer within this many seconds (issue 13), whatever the lease.
TAKEOVER_WITHIN = 10.0


def test_a_killed_consumers_photo_is_completed_by_another_within_seconds_in_every_round(rig: Rig) -> None:
    """Three rounds: a consumer downloading a photo (the host holds the answer)
    is SIGKILLed while another runs beside it; the other completes the photo
    at once, not after the 60 s lease: its redelivered message finds the
    photo's lock dropped with the dead consumer's connection."""
    beside = rig.consumers.start(LEASE_SECONDS="60")
    took: list[float] = []
    photos: list[uuid.UUID] = []
    for round_ in range(3):
        gate = Gate(serve_bytes(JPEG), serve_bytes(JPEG))
        [p] = rig.add([rig.host.add(f"stalls-{round_}.jpg", gate)])
        photos.append(p)
        doomed = rig.consumers.start(LEASE_SECONDS="60")
        rig.queue([p])
        wait_for(partial(lambda g: g.arrivals == 1, gate), what="a consumer to start the download")
        if events(beside, "photo claimed", p):
            # The one beside took it: it becomes the doomed one this round.
            doomed, beside = beside, doomed
        killed = time.monotonic()
        doomed.kill()
        gate.opened.set()
        wait_for(
            partial(lambda photo: rig.status_of(photo) == PhotoStatus.completed, p),
            timeout=60,
            interval=0.05,
            what="the takeover",
        )
        took.append(time.monotonic() - killed)
        # Logged after the commit (and, after a takeover, the storage prune): wait for it.
        wait_for(partial(events, beside, "message done", p), what="the outcome logged")
        assert [e["outcome"] for e in events(beside, "message done", p)] == ["completed"]
        assert not events(beside, "message delayed", p)
    print(f"killed consumer's photo completed by another after {', '.join(f'{t:.2f}' for t in took)} s")
    assert max(took) <= TAKEOVER_WITHIN, took
    outcomes = rig.settle(photos, consumers=[beside])
    assert {(o.status, o.attempts) for o in outcomes.values()} == {(PhotoStatus.completed, 2)}


def test_a_consumer_that_lost_its_database_connections_keeps_its_photo(rig: Rig, engine: Engine) -> None:
    """While a consumer downloads a photo, every database backend of it is
    terminated (its lock dropped with them), and a second copy of the message
    reaches another consumer: that one finds the lease alive and the message
    not redelivered, so it starts nothing; the first takes its lock again and
    completes the photo, downloaded once."""
    gate = Gate(serve_bytes(JPEG))
    [p] = rig.add([rig.host.add("p.jpg", gate)])
    # The download is held for as long as the test needs, well within its
    # deadline; with one message in hand, the copy can only go to the second.
    first = rig.consumers.start(LEASE_SECONDS="30", FETCH_TOTAL_TIMEOUT="60", CONSUMER_PREFETCH="1")
    rig.queue([p])
    wait_for(lambda: gate.arrivals == 1, what="the download to start")
    with engine.connect() as connection:
        terminated = connection.execute(
            text(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND backend_type = 'client backend' "
                "AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    assert terminated >= 1
    second = rig.consumers.start(LEASE_SECONDS="30")
    publisher = Publisher(rig.settings.amqp_uri, Topology(rig.settings.queue_name))
    try:
        publisher.publish([PhotoMessage(p)])
    finally:
        publisher.close()
    wait_for(lambda: events(second, "message delayed", p), what="the second copy to be put off")
    assert not events(second, "photo claimed", p)
    gate.opened.set()
    outcome = rig.settle([p], consumers=[first, second])[p]
    assert (outcome.status, outcome.attempts) == (PhotoStatus.completed, 1)
    assert gate.arrivals == 1
    assert [e["outcome"] for e in events(first, "message done", p)] == ["completed"]


def huge_png() -> bytes:
    """81 megapixels in 260 kB: downloaded at once, about a second to decode."""
    from PIL import Image, ImageDraw  # noqa: PLC0415

    im = Image.linear_gradient("L").resize((9000, 9000)).convert("RGB")
    ImageDraw.Draw(im).rectangle((0, 0, 1800, 1800), fill=(255, 0, 0))
    return images.encode(im, "PNG")


def test_consumer_killed_mid_thumbnail(rig: Rig) -> None:
    served = Served(huge_png())
    [p] = rig.add([rig.host.add("huge.png", served)])
    first = rig.consumers.start()
    rig.queue([p])
    assert served.done.wait(30)
    first.kill()
    # The download was over and nothing was committed: the kill landed in the image work.
    assert rig.status_of(p) == PhotoStatus.processing
    assert events(first, "photo claimed", p) and not events(first, "message done", p)
    assert stored_keys(rig.settings) == []
    second = rig.consumers.start()
    outcome = rig.settle([p], consumers=[second])[p]
    assert (outcome.status, outcome.attempts) == (PhotoStatus.completed, 2)
    assert rig.host.requests == ["/huge.png", "/huge.png"]


def test_consumer_killed_between_commit_and_ack(rig: Rig) -> None:
    """The first consumer reaches RabbitMQ through a proxy that, once the photo
    is claimed, drops what the consumer sends: its ack never arrives. It is
    killed when its commit is visible; RabbitMQ delivers the message again and
    the second consumer must find the photo done and do nothing more."""
    gate = Gate(then=serve_bytes(JPEG))
    [p] = rig.add([rig.host.add("p.jpg", gate)])
    proxy = TcpProxy.in_front_of(rig.settings.amqp_uri, 5672)
    try:
        via_proxy = rig.settings.with_(amqp_uri=proxy.uri(rig.settings.amqp_uri))
        assert via_proxy.amqp_uri != rig.settings.amqp_uri
        first = rig.consumers.start(via_proxy)
        rig.queue([p])
        wait_for(lambda: gate.arrivals == 1, what="the first consumer to claim the photo")
        proxy.blackhole_upstream()
        gate.opened.set()
        wait_for(lambda: rig.status_of(p) == PhotoStatus.completed, what="the commit")
        wait_for(lambda: events(first, "message done", p), what="the first consumer to try to ack")
        first.kill()
        assert proxy.dropped > 0  # the ack, lost
        versions = object_versions(rig.settings)
        assert len(versions) == 1
        second = rig.consumers.start()
        wait_for(lambda: events(second, "message done", p), what="the redelivery")
        assert [e["outcome"] for e in events(second, "message done", p)] == ["already completed"]
        outcome = rig.settle([p], consumers=[second])[p]
    finally:
        proxy.stop()
    assert (outcome.status, outcome.attempts) == (PhotoStatus.completed, 1)
    assert rig.host.requests == ["/p.jpg"]
    assert object_versions(rig.settings) == versions


def test_sigterm_lets_the_photo_in_hand_finish(rig: Rig) -> None:
    gate = Gate(then=serve_bytes(JPEG))
    [p] = rig.add([rig.host.add("p.jpg", gate)])
    running = rig.consumers.start()
    rig.queue([p])
    wait_for(lambda: gate.arrivals == 1, what="the download to start")
    assert running.popen is not None
    running.popen.send_signal(signal.SIGTERM)
    wait_for(lambda: events(running, "stop requested"), what="the consumer to take the signal")
    assert rig.status_of(p) == PhotoStatus.processing
    gate.opened.set()
    assert running.popen.wait(30) == 0
    assert [e["outcome"] for e in events(running, "message done", p)] == ["completed"]
    assert events(running, "consumer stopped")[0]["abandoned"] is False
    outcome = rig.settle([p], consumers=[])[p]
    assert (outcome.status, outcome.attempts) == (PhotoStatus.completed, 1)


def test_one_photo_at_a_time_and_the_next_in_hand_returns_at_a_stop(rig: Rig) -> None:
    """With the default prefetch of 2, a consumer holds the next message while
    it works on one photo, but does not start it; on SIGTERM the photo in hand
    finishes and the waiting message goes back to the queue unstarted, for the
    next consumer."""
    gate = Gate(serve_bytes(JPEG))
    first_photo, next_photo = rig.add(
        [rig.host.add("first.jpg", gate), rig.host.add("next.jpg", serve_bytes(JPEG))]
    )
    running = rig.consumers.start()
    assert rig.settings.prefetch == 2
    rig.queue([first_photo, next_photo])
    wait_for(lambda: gate.arrivals == 1, what="the first download to start")
    wait_for(lambda: rig.broker.depth() == 0, what="the second message to be in the consumer's hand")
    assert rig.status_of(next_photo) == PhotoStatus.pending  # in hand, not started
    assert running.popen is not None
    running.popen.send_signal(signal.SIGTERM)
    wait_for(lambda: events(running, "stop requested"), what="the consumer to take the signal")
    gate.opened.set()
    assert running.popen.wait(30) == 0
    assert [e["outcome"] for e in events(running, "message done", first_photo)] == ["completed"]
    assert not events(running, "photo claimed", next_photo)
    assert rig.broker.depth() == 1, "the unstarted message did not return to the queue"
    second = rig.consumers.start()
    outcomes = rig.settle([first_photo, next_photo], consumers=[second])
    assert {(o.status, o.attempts) for o in outcomes.values()} == {(PhotoStatus.completed, 1)}


def test_sigterm_gives_back_a_photo_that_cannot_finish_within_the_grace(rig: Rig) -> None:
    """The download hangs past STOP_GRACE_SECONDS: the consumer gives the photo
    back (pending), exits without waiting for the download (whose own deadline
    is a minute away), and the next consumer takes it over at once, not after
    the lease."""
    gate = Gate(then=serve_bytes(JPEG))
    [p] = rig.add([rig.host.add("hangs.jpg", gate)])
    first = rig.consumers.start(STOP_GRACE_SECONDS="1", FETCH_TOTAL_TIMEOUT="60")
    rig.queue([p])
    wait_for(lambda: gate.arrivals == 1, what="the download to start")
    signalled = time.monotonic()
    assert first.terminate(timeout=30) == 0
    assert time.monotonic() - signalled < 10, "the consumer waited for the hanging download"
    assert [e["given_back"] for e in events(first, "photo given back", p)] == [True]
    assert events(first, "consumer stopped")[0]["abandoned"] is True
    assert rig.status_of(p) == PhotoStatus.pending
    assert rig.broker.depth() == 1, "the message did not return to the queue"
    second = rig.consumers.start()
    wait_for(lambda: gate.arrivals == 2, what="the next consumer to download the photo")
    gate.opened.set()
    outcome = rig.settle([p], consumers=[second])[p]
    assert (outcome.status, outcome.attempts) == (PhotoStatus.completed, 2)
    assert not events(second, "message delayed", p), "the photo waited out the stopped consumer's lease"


def test_two_consumers_receiving_the_same_message(rig: Rig) -> None:
    gate = Gate(then=serve_bytes(JPEG))
    [p] = rig.add([rig.host.add("p.jpg", gate)])
    # One message in hand each: the two copies go to the two consumers.
    started = [rig.consumers.start(CONSUMER_PREFETCH="1"), rig.consumers.start(CONSUMER_PREFETCH="1")]
    publisher = Publisher(rig.settings.amqp_uri, Topology(rig.settings.queue_name))
    try:
        publisher.publish([PhotoMessage(p), PhotoMessage(p)])
    finally:
        publisher.close()
    wait_for(lambda: gate.arrivals == 1, what="one consumer to download")
    # The other has the second copy and finds the photo taken.
    wait_for(lambda: any(events(c, "message delayed", p) for c in started), what="the second copy to wait")
    gate.opened.set()
    outcome = rig.settle([p], consumers=started)[p]
    assert (outcome.status, outcome.attempts) == (PhotoStatus.completed, 1)
    assert gate.arrivals == 1
    done = sorted(e["outcome"] for c in started for e in events(c, "message done", p))
    assert done == ["already completed", "completed"]


def test_a_photo_that_kills_every_consumer_fails_by_the_attempts_bound(rig: Rig) -> None:
    """Whichever consumer claims the photo dies (SIGKILL, while its download
    hangs); a new one replaces it. The photo must end failed with a reason,
    not loop for ever."""
    rig.settings = rig.consumers.settings = rig.settings.with_(max_attempts=3)
    [p] = rig.add([rig.host.add("deadly.jpg", Gate(then=serve_bytes(JPEG)))])
    pool = [rig.consumers.start(), rig.consumers.start()]
    rig.queue([p])
    kills = 0
    while rig.status_of(p) != PhotoStatus.failed:
        assert kills <= rig.settings.max_attempts, rig.consumers.logs()
        holder = wait_for(
            lambda: (
                next((c for c in pool if c.alive() and events(c, "photo claimed", p)), None)  # noqa: B023
                or (rig.status_of(p) == PhotoStatus.failed)
            ),
            timeout=30,
            what="a consumer to claim the photo",
        )
        if isinstance(holder, Process):
            holder.kill()
            kills += 1
            pool = [c for c in pool if c is not holder] + [rig.consumers.start()]
    outcome = rig.settle([p], consumers=pool)[p]
    assert kills == rig.settings.max_attempts
    assert outcome.reason == "gave up after 3 attempts: the consumer processing it stopped"


def test_a_message_returned_more_often_than_the_delivery_limit_is_dead_lettered_and_fails_its_photo(
    rig: Rig, engine: Engine
) -> None:
    """Each consumer dies holding the message before it could even claim the
    photo (the test holds the photo's row lock, so the claim waits; the
    consumer is SIGKILLed). RabbitMQ counts the returns and dead-letters the
    message past the queue's delivery limit; a consumer then fails the photo."""
    [p] = rig.add([rig.host.add("p.jpg", serve_bytes(JPEG))])
    rig.queue([p])
    dead_queue = rig.broker.topology.dead_queue
    with engine.connect() as lock:
        lock.execute(text("SELECT 1 FROM photos WHERE uuid = :p FOR UPDATE"), {"p": p})
        waiting: set[int] = set()
        kills = 0
        while rig.broker.depth(dead_queue) == 0:
            assert kills < 10, "the message was never dead-lettered"
            process = rig.consumers.start()
            new = wait_for(
                lambda: lock_waiters(engine) - waiting,  # noqa: B023
                what="the consumer's claim to wait on the lock",
            )
            waiting |= new
            process.kill()
            kills += 1
            wait_for(
                lambda: rig.broker.depth() + rig.broker.depth(dead_queue) == 1,
                what="the message to come back",
            )
        last = rig.consumers.start()
        wait_for(
            lambda: lock_waiters(engine) - waiting, what="the dead letter's consumer to wait on the lock"
        )
        lock.rollback()
    outcome = rig.settle([p], consumers=[last])[p]
    assert outcome.status == PhotoStatus.failed
    assert outcome.reason == (
        f"every consumer that took this photo stopped before finishing (delivered {kills} times); "
        "the photo may crash the image code"
    )
    assert rig.host.requests == []


def lock_waiters(engine: Engine) -> set[int]:
    """Backends of this test's database waiting for a lock. (Asked on a
    connection of its own: pg_stat_activity is a snapshot per transaction.)"""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
        )
        return {int(r.pid) for r in rows}


# --- broker connections closed, database backends terminated -----------------------


def test_all_consumer_connections_closed_while_500_photos_are_in_flight(rig: Rig) -> None:
    photo_bytes = images.jpeg(1024, 768)
    photos = rig.add([rig.host.add(f"{i}.jpg", serve_bytes(photo_bytes)) for i in range(500)])
    started = [rig.consumers.start(), rig.consumers.start(), rig.consumers.start()]
    rig.queue(photos)
    for round_ in (1, 2):
        # Twice: once under way, and again as soon as every consumer is back.
        wait_for(lambda: rig.completed_count(photos) >= 20, timeout=60)
        wait_for(lambda: all(len(events(c, "consuming")) == round_ for c in started), timeout=30)  # noqa: B023
        assert rig.completed_count(photos) < 500, "the fault came too late to matter"
        assert close_connections(f"consumer {rig.settings.queue_name}") == 3, (
            "the consumers' connections were not found"
        )
    outcome = rig.settle(photos, consumers=started, timeout=120)
    assert {o.status for o in outcome.values()} == {PhotoStatus.completed}
    reconnects = sum(len(events(c, "broker connection lost")) for c in started)
    assert reconnects >= 6


def test_postgres_backends_terminated_mid_transaction(rig: Rig, engine: Engine) -> None:
    """The consumers' database backends are terminated, over and over, while
    100 photos are processed: every few tens of milliseconds whatever they are
    doing, and for sure inside transactions: the test holds the row lock of
    ten photos for a while, so claims wait for it mid-transaction and are
    terminated there. Nothing may be lost, duplicated or failed, and the
    consumers keep running."""
    photos = rig.add([rig.host.add(f"{i}.jpg", serve_bytes(JPEG)) for i in range(100)])
    rig.queue(photos)
    killer_engine = create_engine(sqlalchemy_url(rig.settings.pg_uri), isolation_level="AUTOCOMMIT")
    stop = threading.Event()
    terminated = {"in_transaction": 0, "other": 0}
    spared: set[int] = set()

    def terminate_backends() -> None:
        with killer_engine.connect() as connection:
            while not stop.wait(0.03):
                rows = connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) AS done, "
                        "state <> 'idle' AND xact_start IS NOT NULL AS in_transaction "
                        "FROM pg_stat_activity WHERE datname = current_database() "
                        "AND backend_type = 'client backend' "
                        "AND pid <> pg_backend_pid() AND NOT pid = ANY(:spared)"
                    ),
                    {"spared": list(spared)},
                ).all()
                for row in rows:
                    if row.done:
                        terminated["in_transaction" if row.in_transaction else "other"] += 1

    killer = threading.Thread(target=terminate_backends, daemon=True)
    try:
        with engine.connect() as holder:
            spared.add(int(holder.execute(text("SELECT pg_backend_pid()")).scalar_one()))
            holder.execute(text("SELECT 1 FROM photos WHERE uuid = ANY(:p) FOR UPDATE"), {"p": photos[:10]})
            # Started now, the consumers find the locked photos first in the queue.
            started = [rig.consumers.start(), rig.consumers.start()]
            killer.start()
            wait_for(
                lambda: terminated["in_transaction"] >= 10,
                timeout=60,
                what="backends terminated inside transactions",
            )
            holder.rollback()
        # The photos flow again, under the same fire.
        wait_for(lambda: rig.completed_count(photos) >= 20, timeout=60)
    finally:
        stop.set()
        killer.join(10)
        killer_engine.dispose()
    assert rig.completed_count(photos) < len(photos), "the fault came too late to matter"
    assert all(c.alive() for c in started), "a consumer died of a database fault"
    outcome = rig.settle(photos, consumers=started, timeout=120)
    assert {o.status for o in outcome.values()} == {PhotoStatus.completed}, {
        u: o.reason for u, o in outcome.items() if o.status != PhotoStatus.completed
    }
    assert not [e for c in started for e in events(c, "bug while processing")]
    print(f"terminated: {terminated}; attempts: {sorted(o.attempts for o in outcome.values())[-5:]}")


# --- the web app without its broker or database ---------------------------------------


@pytest.fixture
def make_app(settings: Settings) -> Iterator[Any]:
    apps: list[Flask] = []

    def make(**changes: object) -> Flask:
        app = create_app(settings.with_(**changes))
        app.config["TESTING"] = True
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["photos"].close()


def test_broker_down_answers_503_and_the_photos_can_be_queued_later(
    settings: Settings, session_factory: SessionFactory, broker: Broker, make_app: Any
) -> None:
    photos = pipeline.add_photos(session_factory, ["http://127.0.0.1/a.jpg", "http://127.0.0.1/b.jpg"])
    down = make_app(amqp_uri=unreachable_amqp_uri()).test_client()
    started = time.monotonic()
    response = down.post("/photos/process", json=[str(u) for u in photos])
    assert time.monotonic() - started < 10
    assert response.status_code == 503
    assert response.is_json
    assert "broker is unavailable" in response.get_json()["error"]
    assert broker.total_depth() == 0
    with unit_of_work(session_factory) as session:
        assert set(session.scalars(select(Photo.status).where(Photo.uuid.in_(photos)))) == {
            PhotoStatus.pending
        }
    up = make_app().test_client()
    assert up.post("/photos/process", json=[str(u) for u in photos]).status_code == 202
    assert wait_for(lambda: broker.depth() == 2, timeout=10)


def test_database_down_answers_503_json(make_app: Any) -> None:
    down = make_app(pg_uri=f"postgresql://postgres@127.0.0.1:{closed_port()}/photos").test_client()
    for method, path, body in (
        ("GET", "/photos/pending", None),
        ("POST", "/photos/process", [str(uuid.uuid4())]),
        ("GET", f"/photos/{uuid.uuid4()}", None),
    ):
        response = down.open(path, method=method, json=body)
        assert response.status_code == 503, (path, response.data[:300])
        assert response.get_json() == {"error": "the database is unavailable, try again"}


def test_a_dropped_database_connection_never_reaches_a_request(
    settings: Settings, session_factory: SessionFactory, make_app: Any, engine: Engine
) -> None:
    pipeline.add_photos(session_factory, ["http://127.0.0.1/a.jpg"])
    client = make_app().test_client()
    assert client.get("/photos/pending").status_code == 200
    with engine.connect() as connection:
        ended = connection.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            )
        ).scalar()
    assert ended
    response = client.get("/photos/pending")
    assert response.status_code == 200
    assert len(response.get_json()) == 1
