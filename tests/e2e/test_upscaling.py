"""``python entrypoint.py`` end to end: the real process, real RabbitMQ, real
local HTTP servers for the upscaler and the image service."""

from __future__ import annotations

import os
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest

from photos.queue import UpscaleTopology
from photos.upscaling import encode_request
from tests.support import images
from tests.support.http_stub import Reply, Request, Responder, StubServer, answering, resizing_upscaler
from tests.support.services import AMQP_URI, ROOT, Process
from tests.support.wait import wait_for

pytestmark = pytest.mark.slow

TOKEN = "e2e-secret-" + uuid.uuid4().hex[:8]


class Queue:
    def __init__(self) -> None:
        self.topology = UpscaleTopology(f"image-upscaling-e2e-{uuid.uuid4().hex[:10]}")
        self.connection = pika.BlockingConnection(pika.URLParameters(AMQP_URI))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        self.topology.declare(self.channel)

    def publish(self, body: bytes) -> None:
        props = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent)
        self.channel.basic_publish("", self.topology.queue, body, props, mandatory=True)

    def consumers(self) -> int:
        return int(self.channel.queue_declare(self.topology.queue, passive=True).method.consumer_count)

    def depth(self, queue: str) -> int:
        return int(self.channel.queue_declare(queue, passive=True).method.message_count)


@pytest.fixture
def queue() -> Iterator[Queue]:
    queue = Queue()
    yield queue
    for name in (queue.topology.queue, queue.topology.dead_queue):
        queue.channel.queue_delete(name)
    queue.channel.exchange_delete(queue.topology.dead_exchange)
    queue.connection.close()


@pytest.fixture
def stubs() -> Iterator[list[StubServer]]:
    started: list[StubServer] = []
    yield started
    for server in started:
        server.stop()


def processor(
    queue: Queue, upscaler: StubServer, image_service: StubServer, log: Path, **env: str
) -> Process:
    environment = dict(os.environ)
    environment.update(
        PYTHONPATH=str(ROOT),
        AMQP_URI=AMQP_URI,
        UPSCALE_QUEUE=queue.topology.queue,
        UPSCALER_URL=upscaler.url,
        UPSCALER_TOKEN=TOKEN,
        IMAGE_SERVICE_URL=image_service.url,
        UPSCALE_RETRY_BASE_DELAY="0.05",
        UPSCALE_RETRY_MAX_DELAY="0.2",
    )
    environment.update(env)
    return Process([sys.executable, "entrypoint.py"], environment, log)


def started(process: Process, queue: Queue, consumers: int = 1) -> Process:
    process.start()
    wait_for(
        lambda: (process.alive() or pytest.fail(process.log())) and queue.consumers() == consumers,
        30,
        what="entrypoint.py to consume",
    )
    return process


def test_entrypoint_upscales_until_sigterm_stops_it_cleanly(
    queue: Queue, stubs: list[StubServer], tmp_path: Path
) -> None:
    upscaler = StubServer(resizing_upscaler(TOKEN)).start()
    image_service = StubServer(answering(200)).start()
    stubs += [upscaler, image_service]
    running = started(processor(queue, upscaler, image_service, tmp_path / "upscaler.log"), queue)
    try:
        for width in (64, 96):
            queue.publish(encode_request(images.png(32, 32), width, width))
        wait_for(lambda: len(image_service.received()) == 2, 30, what="both images")
    finally:
        code = running.terminate(timeout=15)

    assert code == 0, running.log()
    assert [images.decode(r.body).size for r in image_service.received()] == [(64, 64), (96, 96)]
    log = running.log()
    assert "image upscaled and delivered" in log
    assert "upscaler stopped" in log
    assert TOKEN not in log
    assert queue.depth(queue.topology.queue) == 0


def test_entrypoint_refuses_to_start_without_its_configuration(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UPSCALER_", "IMAGE_SERVICE_"))}
    env["PYTHONPATH"] = str(ROOT)
    process = Process([sys.executable, "entrypoint.py"], env, tmp_path / "upscaler.log").start()
    assert process.popen is not None
    assert process.popen.wait(30) == 2
    assert "UPSCALER_TOKEN must be set" in process.log()


def first_call_hangs(release: threading.Event, then: Responder) -> Responder:
    calls: list[Request] = []

    def respond(request: Request) -> Reply:
        calls.append(request)
        if len(calls) == 1:
            release.wait(60)
            return Reply(503)
        return then(request)

    return respond


def test_a_processor_killed_mid_upscale_loses_no_message(
    queue: Queue, stubs: list[StubServer], tmp_path: Path
) -> None:
    release = threading.Event()
    upscaler = StubServer(first_call_hangs(release, resizing_upscaler(TOKEN))).start()
    image_service = StubServer(answering(200)).start()
    stubs += [upscaler, image_service]
    try:
        doomed = started(processor(queue, upscaler, image_service, tmp_path / "doomed.log"), queue)
        queue.publish(encode_request(images.png(32, 32), 128, 128))
        wait_for(lambda: len(upscaler.received()) == 1, 30, what="the first upscale call")
        doomed.kill()
        wait_for(lambda: queue.consumers() == 0, 10, what="RabbitMQ to notice")

        successor = started(processor(queue, upscaler, image_service, tmp_path / "successor.log"), queue)
        [posted] = wait_for(image_service.received, 30, what="the image, from the successor")
        assert images.decode(posted.body).size == (128, 128)
        assert successor.terminate(timeout=15) == 0
    finally:
        release.set()
    assert queue.depth(queue.topology.dead_queue) == 0
