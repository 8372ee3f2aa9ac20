"""A consumer's /metrics on its METRICS_PORT: the worker runs on a thread of
the test and processes real photos from a local photo host."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from consumer.worker import build_worker
from photos import pipeline
from photos.config import Settings
from photos.db import SessionFactory, unit_of_work
from photos.messages import PhotoMessage
from photos.metrics import ProcessingMetrics
from photos.models import Photo, PhotoStatus
from photos.queue import Publisher, Topology
from tests.support import images
from tests.support.metrics import value
from tests.support.photo_host import PhotoHost, flaky, gated, serve_bytes
from tests.support.services import Broker, closed_port, consumer
from tests.support.wait import wait_for
from tests.support.worker_threads import WorkerThreads

JPEG = images.jpeg(640, 480)


@pytest.fixture
def served(settings: Settings, broker: Broker) -> Iterator[str]:
    """A consumer on a thread, its metrics served; yields their URL."""
    metrics = ProcessingMetrics()
    server = metrics.serve(closed_port(), addr="127.0.0.1")
    threads = WorkerThreads()
    worker = build_worker(settings, metrics)
    try:
        threads.start(worker, ready=lambda: broker_consumers(broker) == 1, what="the consumer to subscribe")
        yield f"http://127.0.0.1:{server.port}/metrics"
    finally:
        threads.stop_all()
        server.close()


def broker_consumers(broker: Broker) -> int:
    with broker.channel() as channel:
        return int(channel.queue_declare(broker.topology.queue, passive=True).method.consumer_count)


def queue(settings: Settings, factory: SessionFactory, photos: list[uuid.UUID]) -> None:
    publisher = Publisher(settings.amqp_uri, Topology(settings.queue_name))
    try:
        publisher.publish([PhotoMessage(p) for p in photos])
    finally:
        publisher.close()


def settled(factory: SessionFactory, photos: list[uuid.UUID]) -> bool:
    with unit_of_work(factory) as session:
        statuses = session.scalars(select(Photo.status).where(Photo.uuid.in_(photos))).all()
    return all(s in (PhotoStatus.completed, PhotoStatus.failed) for s in statuses)


def scrape(url: str) -> str:
    response = requests.get(url, timeout=5)
    assert response.status_code == 200
    return response.text


def test_outcomes_stages_and_bytes_are_counted(
    served: str, settings: Settings, session_factory: SessionFactory, photo_host: PhotoHost
) -> None:
    before = scrape(served)
    for outcome in ("completed", "failed", "retried"):
        assert value(before, "photo_processor_processed_total", outcome=outcome) == 0
    urls = [
        photo_host.add("a.jpg", serve_bytes(JPEG)),
        photo_host.add("b.jpg", serve_bytes(JPEG)),
        photo_host.add("flaky.jpg", flaky(1, serve_bytes(JPEG))),
        photo_host.url("missing.jpg"),  # 404: fails
    ]
    photos = pipeline.add_photos(session_factory, urls)
    queue(settings, session_factory, photos)
    wait_for(lambda: settled(session_factory, photos), 30, what="every photo to settle")

    # An outcome is counted once its message is settled, just after the commit.
    expected = {"completed": 3, "failed": 1, "retried": 1}

    def counted() -> dict[str, float | None]:
        text = scrape(served)
        return {o: value(text, "photo_processor_processed_total", outcome=o) for o in expected}

    wait_for(lambda: counted() == expected, 10, what=f"outcomes counted as {expected}")
    text = scrape(served)
    stage = "photo_processor_stage_duration_seconds_count"
    # Every attempt downloads (the flaky photo twice); only the photos downloaded go on.
    assert value(text, stage, stage="download") == 5
    for later in ("render", "store", "commit"):
        assert value(text, stage, stage=later) == 3
    assert value(text, "photo_processor_downloaded_bytes_total") == 3 * len(JPEG)
    assert value(text, "photo_processor_in_flight") == 0


def test_in_flight_counts_the_photo_in_hand(
    served: str, settings: Settings, session_factory: SessionFactory, photo_host: PhotoHost
) -> None:
    gate = threading.Event()
    photos = pipeline.add_photos(
        session_factory, [photo_host.add("slow.jpg", gated(gate, serve_bytes(JPEG)))]
    )
    queue(settings, session_factory, photos)
    try:
        wait_for(lambda: value(scrape(served), "photo_processor_in_flight") == 1, 15, what="one in flight")
    finally:
        gate.set()
    wait_for(lambda: value(scrape(served), "photo_processor_in_flight") == 0, 15, what="none in flight")
    assert value(scrape(served), "photo_processor_processed_total", outcome="completed") == 1


def test_a_consumer_whose_metrics_port_is_taken_exits_saying_so(
    settings: Settings, broker: Broker, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = consumer(settings, tmp_path / "consumer.log", METRICS_PORT=str(port)).start()
        assert process.popen is not None
        assert process.popen.wait(30) == 2
    assert "cannot serve metrics on METRICS_PORT" in process.log()
    assert broker_consumers(broker) == 0
