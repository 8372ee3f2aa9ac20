"""POST /query against real Postgres and RabbitMQ, answered by a real consumer
(the worker ``python -m consumer`` runs, here on a thread of the test)."""

from __future__ import annotations

import io
import logging
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pika
import pytest
from flask import Flask
from flask.testing import FlaskClient
from pika.exceptions import ChannelClosedByBroker
from PIL import ImageOps
from sqlalchemy import select
from werkzeug.datastructures import FileStorage

from consumer.worker import Worker, build_worker
from photos import rpc
from photos.config import Settings
from photos.db import SessionFactory
from photos.imaging import Encoded
from photos.models import Query
from photos.query import Answer, kilobytes
from photos.rpc import DIRECT_REPLY_TO, QueryClient, QueryRequest
from tests.support import colours, icc, images
from tests.support.services import Broker, unreachable_amqp_uri
from tests.support.storage import BOTH_BACKENDS, read_stored, stored_keys
from tests.support.wait import wait_for
from tests.support.worker_threads import WorkerThreads
from web import create_app

StartConsumer = Callable[[Settings], Worker]

pytestmark = BOTH_BACKENDS


def query_consumers(broker: Broker) -> int:
    with broker.channel() as channel:
        try:
            declared = channel.queue_declare(broker.topology.query_queue, passive=True)
        except ChannelClosedByBroker:
            return 0
        return int(declared.method.consumer_count)


@pytest.fixture
def start_consumer(broker: Broker) -> Iterator[StartConsumer]:
    """Runs the consumer's worker on a thread until the test ends."""
    threads = WorkerThreads()

    def start(settings: Settings) -> Worker:
        before = query_consumers(broker)
        return threads.start(
            build_worker(settings),
            ready=lambda: query_consumers(broker) > before,
            what="the consumer to subscribe to queries",
        )

    yield start
    threads.stop_all()


@pytest.fixture
def answering(settings: Settings, start_consumer: StartConsumer) -> Worker:
    return start_consumer(settings)


@contextmanager
def app_with(settings: Settings) -> Iterator[Flask]:
    app = create_app(settings)
    app.config["TESTING"] = True
    try:
        yield app
    finally:
        app.extensions["photos"].close()


def post_image(
    client: FlaskClient, data: bytes, filename: str = "test_image.jpg"
) -> tuple[int, dict[str, Any]]:
    response = client.post(
        "/query",
        data={"image": FileStorage(stream=io.BytesIO(data), filename=filename)},
        content_type="multipart/form-data",
    )
    return response.status_code, response.get_json()


def padded_jpeg(size: int) -> bytes:
    """A JPEG of exactly ``size`` bytes (bytes after the end-of-image marker are ignored by readers)."""
    data = images.jpeg(400, 300)
    assert len(data) < size
    return data + b"\0" * (size - len(data))


def rows(factory: SessionFactory) -> list[Query]:
    with factory() as session:
        return list(session.scalars(select(Query)))


# --- answers ---------------------------------------------------------------


def test_a_query_answers_the_size_and_keeps_a_mirrored_copy_named_by_its_record(
    client: FlaskClient, answering: Worker, settings: Settings, session_factory: SessionFactory
) -> None:
    status, body = post_image(client, padded_jpeg(84_000))

    assert status == 200, body
    assert body["status"] == "SUCCESS"
    assert body["size"] == "82kb"
    assert body["size_bytes"] == 84_000
    assert (body["width"], body["height"]) == (400, 300)
    host, pid = body["consumer"].rsplit(":", 1)
    assert host == socket.gethostname() and int(pid) > 0

    [row] = rows(session_factory)
    assert str(row.uuid) == body["id"]
    assert row.size_bytes == 84_000
    assert row.mirrored_path == body["mirrored"]
    assert body["mirrored_url"] == f"/thumbs/{body['mirrored']}"
    assert stored_keys(settings) == [body["mirrored"]]

    mirrored = images.decode(read_stored(settings, body["mirrored"]))
    assert mirrored.format == "JPEG"
    assert mirrored.size == (400, 300)
    # The red mark of the top-left corner is now top-right.
    assert images.is_red(mirrored.getpixel((400 - 5, 5)))  # type: ignore[arg-type]
    assert not images.is_red(mirrored.getpixel((5, 5)))  # type: ignore[arg-type]

    served = client.get(body["mirrored_url"])
    assert served.status_code == 200
    assert served.data == read_stored(settings, body["mirrored"])


def test_a_png_is_mirrored_into_a_png(client: FlaskClient, answering: Worker, settings: Settings) -> None:
    data = images.png(120, 80, mode="RGBA")
    status, body = post_image(client, data, "picture.png")
    assert status == 200, body
    assert body["size"] == f"{kilobytes(len(data))}kb"
    assert body["mirrored"].endswith(".png")
    mirrored = images.decode(read_stored(settings, body["mirrored"]))
    assert (mirrored.format, mirrored.mode, mirrored.size) == ("PNG", "RGBA", (120, 80))
    assert images.is_red(mirrored.getpixel((120 - 3, 3)))  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_a_tagged_image_is_mirrored_in_its_own_colours_without_a_profile(
    client: FlaskClient, answering: Worker, settings: Settings, fmt: str
) -> None:
    data = {"jpeg": colours.jpeg, "png": colours.png}[fmt](colours.scene(400, 300), icc.ADOBE_RGB)
    status, body = post_image(client, data, f"tagged.{fmt}")
    assert status == 200, body
    served = client.get(body["mirrored_url"]).data
    assert "icc_profile" not in images.decode(served).info
    expected = ImageOps.mirror(colours.managed_reading(data))
    assert colours.mean_difference(colours.browser_reading(served), expected) <= 3.0


def test_every_query_gets_its_own_record_and_file(
    client: FlaskClient, answering: Worker, settings: Settings, session_factory: SessionFactory
) -> None:
    answers = [post_image(client, images.jpeg(60 + i, 40))[1] for i in range(3)]
    assert len({a["id"] for a in answers}) == 3
    assert [a["width"] for a in answers] == [60, 61, 62]
    assert sorted(str(r.uuid) for r in rows(session_factory)) == sorted(a["id"] for a in answers)
    assert len(stored_keys(settings)) == 3


# --- refusals --------------------------------------------------------------


def test_without_an_image_field_it_is_a_400(client: FlaskClient, broker: Broker) -> None:
    response = client.post("/query", data={"picture": (io.BytesIO(b"x"), "a.jpg")})
    assert response.status_code == 400
    assert "image" in response.get_json()["error"]
    response = client.post("/query", json={"image": "aGVsbG8="})
    assert response.status_code == 400
    assert broker.depth(broker.topology.query_queue) == 0


def test_an_empty_image_is_a_400(client: FlaskClient, broker: Broker) -> None:
    status, body = post_image(client, b"")
    assert status == 400
    assert body["error"] == "the image is empty (0 bytes)"
    assert broker.depth(broker.topology.query_queue) == 0


def test_what_is_not_an_image_is_refused_by_the_consumer_with_a_415(
    client: FlaskClient, answering: Worker, settings: Settings, session_factory: SessionFactory
) -> None:
    status, body = post_image(client, b"%PDF-1.4 not an image at all" * 10, "report.pdf")
    assert status == 415
    assert body == {"error": "not an image in a supported format (JPEG, PNG, WebP, GIF, BMP, TIFF)"}
    assert rows(session_factory) == []
    assert stored_keys(settings) == []


def test_a_truncated_image_is_a_415(client: FlaskClient, answering: Worker) -> None:
    data = images.jpeg(400, 300)
    status, body = post_image(client, data[: len(data) // 3])
    assert status == 415
    assert "corrupt or truncated" in body["error"]


def test_more_bytes_than_the_limit_is_a_413_and_nothing_is_sent(
    settings: Settings, broker: Broker, session_factory: SessionFactory
) -> None:
    with app_with(settings.with_(query_max_bytes=10_000, query_timeout=0.5)) as app:
        status, body = post_image(app.test_client(), b"\xff" * 10_001)
        assert status == 413
        assert body["error"] == "the image is larger than the limit of 10000 bytes"
        assert broker.depth(broker.topology.query_queue) == 0
        # At the limit it is sent (and, with no consumer running, times out).
        status, _ = post_image(app.test_client(), b"\xff" * 10_000)
        assert status == 504


def test_more_pixels_than_the_consumer_takes_is_a_413(
    client: FlaskClient, settings: Settings, start_consumer: StartConsumer, session_factory: SessionFactory
) -> None:
    start_consumer(settings.with_(max_image_pixels=100 * 100))
    status, body = post_image(client, images.jpeg(101, 100))
    assert status == 413
    assert body["error"] == "image is 101x100, more than the limit of 10000 pixels"
    status, body = post_image(client, images.jpeg(100, 100))
    assert status == 200, body
    assert len(rows(session_factory)) == 1


def test_without_an_answer_in_time_it_is_a_504_and_the_request_expires(
    settings: Settings, broker: Broker, session_factory: SessionFactory
) -> None:
    with app_with(settings.with_(query_timeout=1.0)) as app:
        status, body = post_image(app.test_client(), images.jpeg(50, 50))
        assert status == 504
        assert body == {"error": "no consumer answered within 1 seconds"}
        assert rows(session_factory) == []
        # Nobody is left to read an answer, so nobody should be asked.
        wait_for(lambda: broker.depth(broker.topology.query_queue) == 0, 10, what="the request to expire")


def test_an_unreachable_broker_is_a_503(settings: Settings, session_factory: SessionFactory) -> None:
    with app_with(settings.with_(amqp_uri=unreachable_amqp_uri())) as app:
        status, body = post_image(app.test_client(), images.jpeg(50, 50))
        assert status == 503
        assert "broker is unavailable" in body["error"]
        assert rows(session_factory) == []


# --- correlation ---------------------------------------------------------------


class Responder:
    """Stands in for a consumer on the real query queue, answering in an order
    the test chooses: it holds each request until told to answer."""

    def __init__(self, settings: Settings, broker: Broker) -> None:
        self.queue = broker.topology.query_queue
        self.connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_uri))
        self.channel = self.connection.channel()
        self.requests: list[QueryRequest] = []

    def take(self, count: int) -> None:
        def one() -> bool:
            method, props, body = self.channel.basic_get(self.queue, auto_ack=True)
            if method is not None:
                self.requests.append(QueryRequest.decode(body, props))
            return len(self.requests) >= count

        wait_for(one, 10, what=f"{count} requests")

    def answer(self, request: QueryRequest, *, width: int, correlation_id: str | None = None) -> None:
        answer = Answer(1, Encoded(b"mirrored", width, 1, "image/png", "png"), consumer="responder:1")
        body, props = rpc.encode_reply(answer, correlation_id or request.correlation_id, "responder:1")
        self.channel.basic_publish("", request.reply_to, body, props)

    def close(self) -> None:
        self.connection.close()


def ask_in_thread(client: QueryClient, image: bytes) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(client.ask(image))
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_replies_to_other_queries_are_ignored(settings: Settings, broker: Broker) -> None:
    client = QueryClient(settings.amqp_uri, broker.topology, timeout=2.0)
    responder = Responder(settings, broker)
    try:
        # The first query times out; its answer arrives while the second waits.
        thread, outcome = ask_in_thread(client, b"first")
        responder.take(1)
        thread.join()
        assert isinstance(outcome[0], rpc.QueryTimeout)

        thread, outcome = ask_in_thread(client, b"second")
        responder.take(2)
        first, second = responder.requests
        assert (first.image, second.image) == (b"first", b"second")
        responder.answer(first, width=1)
        responder.answer(second, width=3, correlation_id=uuid.uuid4().hex)
        responder.answer(second, width=2)
        thread.join()
        [answer] = outcome
        assert isinstance(answer, Answer)
        assert answer.mirrored.width == 2
    finally:
        responder.close()
        client.close()


def test_a_consumer_answering_an_asker_that_has_gone_keeps_answering(
    client: FlaskClient,
    settings: Settings,
    broker: Broker,
    start_consumer: StartConsumer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="consumer")
    # A request whose asker gives up and disconnects before any consumer runs.
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_uri))
    channel = connection.channel()
    broker.declare()
    channel.basic_consume(DIRECT_REPLY_TO, lambda *_: None, auto_ack=True)
    request = QueryRequest(images.jpeg(30, 30), DIRECT_REPLY_TO, "gone")
    channel.basic_publish("", broker.topology.query_queue, request.image, request.properties(60_000))
    connection.close()
    assert broker.depth(broker.topology.query_queue) == 1

    start_consumer(settings)
    wait_for(
        lambda: broker.depth(broker.topology.query_queue) == 0, 10, what="the orphan request to be taken"
    )
    status, body = post_image(client, images.jpeg(40, 40))
    assert status == 200, body
    # Answering into the void cost the consumer neither its channel nor its connection.
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("consumer")]
    assert "query answered" in messages
    assert not {"broker connection lost", "could not settle a message"} & set(messages), messages
