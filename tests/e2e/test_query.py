"""POST /query end to end: gunicorn and ``python -m consumer`` processes, real
Postgres and RabbitMQ, the image sent as ``curl -F image=@...`` sends it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
from typing import Any

import pytest
import requests
from pika.exceptions import ChannelClosedByBroker
from sqlalchemy import select

from photos.db import SessionFactory
from photos.models import Query
from tests.e2e.conftest import RunningService
from tests.support import images
from tests.support.wait import wait_for

pytestmark = pytest.mark.slow


def post_query(service: RunningService, data: bytes, filename: str = "test_image.jpg") -> requests.Response:
    return requests.post(service.url("/query"), files={"image": (filename, data)}, timeout=30)


def query_consumers(service: RunningService) -> int:
    with service.broker.channel() as channel:
        try:
            declared = channel.queue_declare(service.settings.queue_name + ".query", passive=True)
        except ChannelClosedByBroker:
            return 0
        return int(declared.method.consumer_count)


def waiting_requests(service: RunningService) -> int:
    return service.broker.depth(service.broker.topology.query_queue)


def amqp_bytes_unread(pid: int) -> int:
    """Bytes RabbitMQ has sent to process ``pid`` that it has not read yet (the
    receive queues of its connections to port 5672, from /proc)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    unread = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if fields[9] in inodes and remote_port == 5672:
                    unread += int(fields[4].split(":")[1], 16)
    return unread


def answered_by(body: dict[str, Any]) -> int:
    host, pid = str(body["consumer"]).rsplit(":", 1)
    assert host == socket.gethostname()
    return int(pid)


def test_a_query_through_the_real_processes(
    running_service: RunningService, session_factory: SessionFactory
) -> None:
    data = images.jpeg(400, 300)
    data += b"\0" * (84_000 - len(data))  # 84,000 bytes: the seed's 82kb file
    response = post_query(running_service, data)

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["size"], body["size_bytes"]) == ("SUCCESS", "82kb", 84_000)
    assert answered_by(body) == running_service.consumers[0].pid
    path = running_service.settings.thumbs_dir / body["mirrored"]
    assert images.is_red(images.decode(path.read_bytes()).getpixel((395, 5)))  # type: ignore[arg-type]
    assert requests.get(running_service.url(body["mirrored_url"]), timeout=10).content == path.read_bytes()
    with session_factory() as session:
        [row] = session.scalars(select(Query)).all()
    assert (str(row.uuid), row.size_bytes, row.mirrored_path) == (body["id"], 84_000, body["mirrored"])

    refused = post_query(running_service, b"plain text, not a picture", "notes.txt")
    assert refused.status_code == 415
    assert refused.json() == {"error": "not an image in a supported format (JPEG, PNG, WebP, GIF, BMP, TIFF)"}
    missing = requests.post(running_service.url("/query"), files={"file": ("a.jpg", data)}, timeout=30)
    assert missing.status_code == 400


def test_two_consumers_share_the_queries(running_service: RunningService) -> None:
    second = running_service.add_consumer()
    wait_for(lambda: query_consumers(running_service) == 2, 15, what="both consumers to take queries")
    pids = {running_service.consumers[0].pid, second.pid}

    seen: list[int] = []
    for i in range(20):
        response = post_query(running_service, images.jpeg(64 + i, 48))
        assert response.status_code == 200, response.text
        seen.append(answered_by(response.json()))
        if set(seen) == pids:
            break
    assert set(seen) == pids, f"answers came only from {set(seen)} of {pids}"


def test_a_query_held_by_a_consumer_that_is_killed_is_answered_by_another(
    running_service: RunningService,
) -> None:
    doomed = running_service.consumers[0]
    # Frozen, it still takes the request from RabbitMQ (into its socket) but
    # never answers it.
    os.kill(doomed.pid, signal.SIGSTOP)
    image = images.jpeg(80, 60)
    unread_before = amqp_bytes_unread(doomed.pid)
    outcome: list[requests.Response] = []
    asking = threading.Thread(target=lambda: outcome.append(post_query(running_service, image)))
    asking.start()
    try:
        wait_for(
            lambda: amqp_bytes_unread(doomed.pid) >= unread_before + len(image),
            5,
            what="the request to reach the frozen consumer",
        )
        assert waiting_requests(running_service) == 0
        doomed.kill()
        running_service.consumers.remove(doomed)
        wait_for(lambda: query_consumers(running_service) == 0, 10, what="RabbitMQ to notice the death")
        survivor = running_service.add_consumer()
    finally:
        asking.join(30)

    [response] = outcome
    assert response.status_code == 200, response.text
    assert answered_by(response.json()) == survivor.pid
