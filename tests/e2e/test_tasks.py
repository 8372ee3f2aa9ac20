"""The image-resizer task API end to end: gunicorn and ``python -m consumer`` as
real processes, images sent as base64 over HTTP, renditions made by the consumer."""

from __future__ import annotations

import base64
import io
import os
import signal
import uuid
from typing import Any

import pytest
import requests
from PIL import Image
from sqlalchemy import select

from photos.db import SessionFactory, unit_of_work
from photos.models import Photo, PhotoStatus, Thumbnail
from tests.e2e.conftest import RunningService
from tests.support import images
from tests.support.wait import wait_for

pytestmark = pytest.mark.slow

DONE_TIMEOUT = 60.0


def create_task(service: RunningService, data: bytes) -> str:
    response = requests.post(
        service.url("/tasks"), json={"data": base64.b64encode(data).decode("ascii")}, timeout=30
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "WAITING"
    return str(body["id"])


def task(service: RunningService, task_id: str) -> dict[str, Any]:
    response = requests.get(service.url(f"/tasks/{task_id}"), timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_until_done(service: RunningService, task_id: str) -> None:
    def finished() -> str | None:
        status = str(task(service, task_id)["status"])
        return status if status in ("DONE", "FAILED") else None

    status = wait_for(finished, DONE_TIMEOUT, interval=0.1, what=f"task {task_id} to finish")
    assert status == "DONE", task(service, task_id)


def image(service: RunningService, task_id: str, size: str) -> tuple[bytes, str]:
    response = requests.get(service.url(f"/tasks/{task_id}/image"), params={"size": size}, timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["id"], body["size"]) == (task_id, size)
    return base64.b64decode(body["data"], validate=True), str(body["content_type"])


def check_images(service: RunningService, task_id: str, original: bytes, content_type: str) -> None:
    assert image(service, task_id, "original") == (original, content_type)
    for size in (64, 32):
        data, kind = image(service, task_id, str(size))
        assert kind == "image/jpeg"
        assert images.decode(data).size == (size, size)


def test_square_png_and_jpeg_tasks_are_resized_to_64_and_32(running_service: RunningService) -> None:
    uploaded = {
        "png": (images.png(500, 500), "image/png"),
        "jpeg": (images.jpeg(640, 640), "image/jpeg"),
        # Stored 300x300 with an EXIF rotation: square either way, made upright.
        "rotated-jpeg": (images.jpeg(300, 300, orientation=6), "image/jpeg"),
    }
    ids = {name: create_task(running_service, data) for name, (data, _) in uploaded.items()}
    for name, (data, content_type) in uploaded.items():
        wait_until_done(running_service, ids[name])
        check_images(running_service, ids[name], data, content_type)

    # The red mark of the displayed top-left corner stays at the top left.
    rotated, _ = image(running_service, ids["rotated-jpeg"], "64")
    thumb = images.decode(rotated).convert("RGB")
    assert images.is_red(thumb.getpixel((3, 3)))  # type: ignore[arg-type]


def test_a_non_square_image_is_refused_by_the_running_service(running_service: RunningService) -> None:
    response = requests.post(
        running_service.url("/tasks"),
        json={"data": base64.b64encode(images.png(64, 48)).decode("ascii")},
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json() == {"error": "only square images are accepted, got 64x48"}


def slow_square_png(side: int = 9000) -> bytes:
    """A large greyscale PNG that compresses to about a megabyte but takes the
    consumer a second or more per rendition: PNG has no reduced-scale decoding."""
    im = Image.linear_gradient("L").resize((side, side))
    out = io.BytesIO()
    im.save(out, "PNG", compress_level=1)
    return out.getvalue()


def photo_row(factory: SessionFactory, task_id: str) -> tuple[PhotoStatus, int, int]:
    """(status, attempts, thumbnail rows)"""
    with unit_of_work(factory) as session:
        photo = session.get_one(Photo, uuid.UUID(task_id))
        thumbnails = session.scalars(select(Thumbnail).where(Thumbnail.photo_uuid == photo.uuid)).all()
        return photo.status, photo.attempts, len(thumbnails)


def test_a_task_whose_consumer_is_killed_mid_task_still_ends_done(
    running_service: RunningService, session_factory: SessionFactory
) -> None:
    data = slow_square_png()
    [victim] = running_service.consumers
    task_id = create_task(running_service, data)

    wait_for(
        lambda: task(running_service, task_id)["status"] == "IN_PROGRESS",
        DONE_TIMEOUT,
        interval=0.02,
        what="the consumer to start on the task",
    )
    # Freeze it, make sure it is frozen mid-task, then kill it: no chance to
    # finish, ack or give the message back.
    os.kill(victim.pid, signal.SIGSTOP)
    status, attempts, made = photo_row(session_factory, task_id)
    assert (status, attempts, made) == (PhotoStatus.processing, 1, 0), (
        "the consumer finished before it could be stopped; make slow_square_png slower"
    )
    victim.kill()
    running_service.consumers.remove(victim)
    assert task(running_service, task_id)["status"] == "IN_PROGRESS"

    # RabbitMQ gives the unacked message to the next consumer, which takes the
    # photo over once the dead one's lease (3 s in the test settings) runs out.
    running_service.add_consumer()
    wait_until_done(running_service, task_id)
    check_images(running_service, task_id, data, "image/png")
    status, attempts, made = photo_row(session_factory, task_id)
    assert (status, attempts, made) == (PhotoStatus.completed, 2, 2)
    wait_for(lambda: running_service.broker.total_depth() == 0, 30, what="queues to drain")
