"""The upscaling processor against real RabbitMQ and real local HTTP servers
for the upscaler and the image service (the worker that ``python entrypoint.py``
runs, here on a thread of the test)."""

from __future__ import annotations

import base64
import io
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pika
import pytest
from PIL import Image

from consumer.upscaling import UpscalingWorker, build_upscaling_worker
from photos.config import UpscalingSettings
from photos.queue import UpscaleTopology
from photos.upscaling import encode_request
from tests.support import images
from tests.support.http_stub import (
    Request,
    Responder,
    StubServer,
    answering,
    closed_port_url,
    failing_first,
    hanging,
    resizing_upscaler,
)
from tests.support.proxy import TcpProxy
from tests.support.services import AMQP_URI, close_connections
from tests.support.wait import wait_for
from tests.support.worker_threads import WorkerThreads

TOKEN = "test-token-" + uuid.uuid4().hex[:8]


@dataclass(frozen=True)
class DeadLetter:
    body: bytes
    headers: dict[str, Any]


class Queues:
    """The test's own upscale queue and dead-letter queue, on the real broker."""

    def __init__(self, topology: UpscaleTopology) -> None:
        self.topology = topology
        self.connection = pika.BlockingConnection(pika.URLParameters(AMQP_URI))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        topology.declare(self.channel)

    def publish(self, body: bytes) -> None:
        self.channel.basic_publish(
            "",
            self.topology.queue,
            body,
            pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent, message_id=uuid.uuid4().hex),
            mandatory=True,
        )

    def depth(self, queue: str) -> int:
        return int(self.channel.queue_declare(queue, passive=True).method.message_count)

    def consumers(self) -> int:
        return int(self.channel.queue_declare(self.topology.queue, passive=True).method.consumer_count)

    def dead_letters(self, count: int, timeout: float = 20) -> list[DeadLetter]:
        """Waits for ``count`` dead letters and takes them off the queue."""
        taken: list[DeadLetter] = []

        def take() -> bool:
            method, props, body = self.channel.basic_get(self.topology.dead_queue, auto_ack=True)
            if method is not None:
                taken.append(DeadLetter(body, dict(props.headers or {})))
            return len(taken) >= count

        wait_for(take, timeout, interval=0.05, what=f"{count} dead letters")
        return taken

    def close(self) -> None:
        for queue in (self.topology.queue, self.topology.dead_queue):
            self.channel.queue_delete(queue)
        self.channel.exchange_delete(self.topology.dead_exchange)
        self.connection.close()


@pytest.fixture
def upscale_settings() -> UpscalingSettings:
    return UpscalingSettings(
        upscaler_url=closed_port_url(),
        upscaler_token=TOKEN,
        image_service_url=closed_port_url(),
        amqp_uri=AMQP_URI,
        queue_name=f"image-upscaling-test-{uuid.uuid4().hex[:10]}",
        connect_timeout=2.0,
        upscaler_timeout=2.0,
        image_service_timeout=2.0,
        max_attempts=3,
        retry_base_delay=0.05,
        retry_max_delay=0.2,
        max_image_pixels=4_000_000,
    )


@pytest.fixture
def queues(upscale_settings: UpscalingSettings) -> Iterator[Queues]:
    queues = Queues(UpscaleTopology(upscale_settings.queue_name))
    yield queues
    queues.close()


@pytest.fixture
def servers() -> Iterator[Callable[[Callable[[Request], Any]], StubServer]]:
    started: list[StubServer] = []

    def start(respond: Callable[[Request], Any]) -> StubServer:
        server = StubServer(respond).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


StartProcessor = Callable[..., UpscalingWorker]


@pytest.fixture
def start_processor(upscale_settings: UpscalingSettings, queues: Queues) -> Iterator[StartProcessor]:
    threads = WorkerThreads()

    def start(upscaler: str, image_service: str, **changes: object) -> UpscalingWorker:
        settings = upscale_settings.with_(upscaler_url=upscaler, image_service_url=image_service, **changes)
        return threads.start(
            build_upscaling_worker(settings),
            ready=lambda: queues.consumers() == 1,
            what="the processor to consume",
        )

    yield start
    threads.stop_all()


StartBetween = Callable[..., tuple[StubServer, StubServer]]


@pytest.fixture
def start_between(servers: Any, start_processor: StartProcessor) -> StartBetween:
    """Starts an upscaler and an image service that answer as given (by default
    as the real ones do), then the processor between them; returns the two."""

    def start(
        upscaler: Responder | None = None, image_service: Responder | None = None, **changes: object
    ) -> tuple[StubServer, StubServer]:
        upscaler_server = servers(upscaler or resizing_upscaler(TOKEN))
        image_service_server = servers(image_service or answering(200))
        start_processor(upscaler_server.url, image_service_server.url, **changes)
        return upscaler_server, image_service_server

    return start


def received(server: StubServer, count: int) -> Callable[[], bool]:
    return lambda: len(server.received()) >= count


def png_bytes(width: int, height: int) -> bytes:
    return images.png(width, height)


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def upscaler_answers(server: StubServer) -> list[bytes]:
    """The decoded images the upscaler sent back, request by request (re-upscaling its inputs)."""
    out = []
    for request in server.received():
        body = request.json()
        reply = resizing_upscaler(TOKEN)(request)
        out.append(base64.b64decode(json.loads(reply.body)["base64_image"]))
        assert body["access_token"] == TOKEN
    return out


# --- delivered -------------------------------------------------------------------


def test_an_image_is_upscaled_and_its_exact_bytes_posted_to_the_image_service(
    queues: Queues, start_between: StartBetween
) -> None:
    upscaler, image_service = start_between()
    original = png_bytes(40, 30)

    queues.publish(encode_request(original, 160, 120))

    [posted] = wait_for(image_service.received, 15, what="the image service to receive the image")
    [asked] = upscaler.received()
    assert asked.json() == {
        "access_token": TOKEN,
        "new_height": 120,
        "new_width": 160,
        "base64_image": base64.b64encode(original).decode(),
    }
    # The decoded bytes of the upscaler's answer, not its base64 text.
    assert posted.body == upscaler_answers(upscaler)[0]
    assert posted.headers["Content-Type"] == "image/png"
    assert decoded(posted.body).size == (160, 120)
    wait_for(lambda: queues.depth(queues.topology.queue) == 0, 5, what="the message to be acked")
    assert queues.depth(queues.topology.dead_queue) == 0


def test_the_queue_is_consumed_continuously(queues: Queues, start_between: StartBetween) -> None:
    _, image_service = start_between()
    for n in range(1, 4):
        # Each message after the queue has been empty for a while.
        wait_for(lambda: queues.depth(queues.topology.queue) == 0, 5)
        queues.publish(encode_request(png_bytes(10, 10), 20 * n, 20 * n))
        wait_for(received(image_service, n), 15, what=f"image {n}")
    sizes = [decoded(r.body).size for r in image_service.received()]
    assert sizes == [(20, 20), (40, 40), (60, 60)]


@pytest.mark.parametrize(
    ("image", "target"),
    [((50, 50), (300, 120)), ((30, 20), (30, 40))],
    # A target as wide as the image is still an upscale: it is sent to the upscaler.
    ids=["non-square-target", "same-width-as-the-image"],
)
def test_the_image_posted_has_exactly_the_target_size(
    queues: Queues,
    start_between: StartBetween,
    image: tuple[int, int],
    target: tuple[int, int],
) -> None:
    upscaler, image_service = start_between()
    queues.publish(encode_request(png_bytes(*image), *target))
    [posted] = wait_for(image_service.received, 15, what="the image")
    assert decoded(posted.body).size == target
    assert len(upscaler.received()) == 1


def test_an_upscaler_failing_twice_with_503_is_retried_until_it_succeeds(
    queues: Queues, start_between: StartBetween
) -> None:
    upscaler, image_service = start_between(failing_first(2, resizing_upscaler(TOKEN), status=503))
    queues.publish(encode_request(png_bytes(20, 20), 64, 64))
    [posted] = wait_for(image_service.received, 15, what="the image")
    assert len(upscaler.received()) == 3
    assert posted.body == upscaler_answers(upscaler)[2]
    assert queues.depth(queues.topology.dead_queue) == 0


def test_an_image_service_failing_once_gets_the_same_bytes_again_without_a_second_upscale(
    queues: Queues, start_between: StartBetween
) -> None:
    upscaler, image_service = start_between(image_service=failing_first(1, answering(200), status=500))
    queues.publish(encode_request(png_bytes(20, 20), 64, 64))
    wait_for(received(image_service, 2), 15, what="the second post")
    first, second = image_service.received()
    assert len(upscaler.received()) == 1
    assert first.body == second.body == upscaler_answers(upscaler)[0]
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    wait_for(lambda: queues.depth(queues.topology.queue) == 0, 5)
    assert queues.depth(queues.topology.dead_queue) == 0


# --- dead letters ----------------------------------------------------------------


def test_an_upscaler_that_is_down_dead_letters_the_message_after_bounded_attempts(
    queues: Queues, servers: Any, start_processor: StartProcessor
) -> None:
    image_service = servers(answering(200))
    start_processor(closed_port_url(), image_service.url)
    body = encode_request(png_bytes(20, 20), 64, 64)
    queues.publish(body)
    [dead] = queues.dead_letters(1)
    assert dead.body == body
    assert dead.headers["x-upscale-step"] == "upscaler"
    assert dead.headers["x-upscale-attempts"] == 3
    assert dead.headers["x-upscale-reason"] == (
        "gave up after 3 attempts: cannot reach the upscaler: connection refused"
    )
    assert image_service.received() == []
    assert queues.depth(queues.topology.queue) == 0


def test_an_upscaler_that_does_not_answer_in_time_is_retried_then_dead_lettered(
    queues: Queues, start_between: StartBetween
) -> None:
    release = threading.Event()
    try:
        upscaler, _ = start_between(hanging(release), upscaler_timeout=0.5, max_attempts=2)
        queues.publish(encode_request(png_bytes(20, 20), 64, 64))
        [dead] = queues.dead_letters(1)
    finally:
        release.set()
    assert dead.headers["x-upscale-reason"] == (
        "gave up after 2 attempts: the upscaler did not answer within 0.5 seconds"
    )
    assert len(upscaler.received()) == 2


@pytest.mark.parametrize(
    ("status", "answer"),
    [(401, b'{"error": "invalid access token"}'), (400, b'{"error": "new_width must be an integer"}')],
)
def test_an_upscaler_refusing_the_request_dead_letters_it_at_once(
    queues: Queues, servers: Any, start_processor: StartProcessor, status: int, answer: bytes
) -> None:
    upscaler = servers(answering(status, answer))
    start_processor(upscaler.url, closed_port_url())
    queues.publish(encode_request(png_bytes(20, 20), 64, 64))
    [dead] = queues.dead_letters(1)
    assert dead.headers["x-upscale-reason"] == f"the upscaler answered HTTP {status}: {answer.decode()}"
    assert dead.headers["x-upscale-attempts"] == 1
    assert len(upscaler.received()) == 1


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (b"<html>oops</html>", "the upscaler's answer is not JSON"),
        (b'{"image": "..."}', "the upscaler's answer has no base64_image"),
        (b'{"base64_image": "***"}', "the upscaler's base64_image is not valid base64"),
        (
            json.dumps({"base64_image": base64.b64encode(images.jpeg(64, 64)).decode()}).encode(),
            "the upscaler's base64_image is not a PNG",
        ),
    ],
)
def test_an_upscaler_answering_something_that_is_not_a_png_dead_letters_at_once(
    queues: Queues, start_between: StartBetween, answer: bytes, reason: str
) -> None:
    _, image_service = start_between(answering(200, answer))
    queues.publish(encode_request(png_bytes(20, 20), 64, 64))
    [dead] = queues.dead_letters(1)
    assert (dead.headers["x-upscale-step"], dead.headers["x-upscale-reason"]) == ("upscaler", reason)
    assert image_service.received() == []


def test_an_image_service_refusing_the_image_dead_letters_it_at_once(
    queues: Queues, start_between: StartBetween
) -> None:
    _, image_service = start_between(image_service=answering(422, b"unsupported"))
    queues.publish(encode_request(png_bytes(20, 20), 64, 64))
    [dead] = queues.dead_letters(1)
    assert dead.headers["x-upscale-step"] == "image-service"
    assert dead.headers["x-upscale-reason"] == "the image service answered HTTP 422: unsupported"
    assert len(image_service.received()) == 1


def test_an_image_service_that_keeps_failing_dead_letters_after_bounded_attempts(
    queues: Queues, start_between: StartBetween
) -> None:
    upscaler, image_service = start_between(image_service=answering(502))
    queues.publish(encode_request(png_bytes(20, 20), 64, 64))
    [dead] = queues.dead_letters(1)
    assert dead.headers["x-upscale-reason"] == "gave up after 3 attempts: the image service answered HTTP 502"
    assert dead.headers["x-upscale-attempts"] == 3
    assert len(upscaler.received()) == 1
    assert len(image_service.received()) == 3


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            encode_request(images.png(100, 80), 50, 40),
            "not an upscale: 50x40 is smaller than the image's 100x80",
        ),
        (
            encode_request(images.png(100, 80), 200, 60),
            "not an upscale: 200x60 is smaller than the image's 100x80",
        ),
        (
            json.dumps({"width": 64, "height": 64, "image_data": "not base64!"}).encode(),
            "image_data is not valid base64",
        ),
        (
            encode_request(images.jpeg(20, 20), 64, 64),
            "image_data is not a PNG",
        ),
        (json.dumps({"width": 64}).encode(), "missing fields: height, image_data"),
        (b"\x00\x01 not json", "the message is not JSON"),
    ],
    ids=["smaller", "smaller-in-one-dimension", "invalid-base64", "not-a-png", "missing-fields", "not-json"],
)
def test_a_message_that_cannot_be_carried_out_is_dead_lettered_at_once_without_calling_anyone(
    queues: Queues, start_between: StartBetween, body: bytes, reason: str
) -> None:
    upscaler, image_service = start_between()
    queues.publish(body)
    [dead] = queues.dead_letters(1)
    assert dead.body == body
    assert dead.headers["x-upscale-step"] == "message"
    assert dead.headers["x-upscale-reason"] == reason
    assert upscaler.received() == [] and image_service.received() == []


# --- stopping --------------------------------------------------------------------


def test_a_stop_while_waiting_to_retry_returns_the_message_to_the_queue(
    queues: Queues, servers: Any, start_processor: StartProcessor
) -> None:
    upscaler = servers(answering(503))
    worker = start_processor(upscaler.url, closed_port_url(), retry_base_delay=60.0, retry_max_delay=60.0)
    queues.publish(encode_request(png_bytes(20, 20), 64, 64))
    wait_for(lambda: len(upscaler.received()) == 1, 15, what="the first attempt")

    worker.stop()
    wait_for(lambda: queues.depth(queues.topology.queue) == 1, 15, what="the message to be back")
    assert queues.depth(queues.topology.dead_queue) == 0
    assert len(upscaler.received()) == 1


# --- the broker connection ---------------------------------------------------------


def test_a_connection_closed_while_a_message_is_settled_does_not_crash_the_upscaler(
    queues: Queues, servers: Any, start_processor: StartProcessor
) -> None:
    """pika learns of a close that arrives while a message is being settled
    inside the callback that settles it; the upscaler must reconnect and carry
    on rather than die on its next turn of the I/O loop. Here the settlement
    is a dead letter's publish, waiting for its confirm while a proxy holds
    the broker's replies; the broker closes the connection meanwhile."""
    proxy = TcpProxy.in_front_of(AMQP_URI, 5672)
    try:
        release = threading.Event()
        upscaler = servers(resizing_upscaler(TOKEN))
        image_service = servers(hanging(release, then=answering(400)))
        start_processor(upscaler.url, image_service.url, amqp_uri=proxy.uri(AMQP_URI))
        queues.publish(encode_request(png_bytes(20, 20), 40, 40))
        wait_for(received(image_service, 1), 15, what="the image service to be called")

        proxy.hold_replies()
        release.set()
        wait_for(
            lambda: queues.depth(queues.topology.dead_queue) == 1, 15, what="the dead letter to be published"
        )
        assert close_connections(f"upscaler {queues.topology.queue}") == 1
        proxy.pass_replies()

        queues.publish(encode_request(png_bytes(10, 10), 30, 30))
        wait_for(
            lambda: any(decoded(r.body).size == (30, 30) for r in image_service.received()),
            30,
            what="the next message, on a new connection",
        )
    finally:
        proxy.stop()
