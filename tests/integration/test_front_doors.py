"""One rule decides which images are accepted, whichever door they come in by:
a URL (``POST /photos/process``), an upload (``POST /photos``), a task
(``POST /tasks``) and a query (``POST /query``). The same odd files, as cameras
and editors write them, go through every door; each gets the same verdict
everywhere: made, or refused with the same reason.

A real consumer (the worker ``python -m consumer`` runs) on a thread of the
test makes the renditions and answers the queries.
"""

from __future__ import annotations

import base64
import io
import uuid
from collections.abc import Callable, Iterator

import pytest
from flask.testing import FlaskClient
from PIL import Image
from werkzeug.datastructures import FileStorage
from werkzeug.test import TestResponse

from consumer.worker import build_worker
from photos import pipeline
from photos.config import Settings
from photos.db import SessionFactory, unit_of_work
from photos.models import Photo, PhotoStatus
from tests.support import images
from tests.support.photo_host import PhotoHost, serve_bytes
from tests.support.services import Broker
from tests.support.uploads import AppClients
from tests.support.wait import wait_for
from tests.support.worker_threads import WorkerThreads

SIDE = 64  # square, so that the task door (square images only) takes them all
MAX_PIXELS = 100 * 100
MADE = "made"
NOT_AN_IMAGE = "not an image in a supported format (JPEG, PNG, WebP, GIF, BMP, TIFF)"


def mpo() -> bytes:
    """A multi-picture JPEG, as some cameras write them (two pictures)."""
    out = io.BytesIO()
    first, second = images.photo(SIDE, SIDE), images.photo(SIDE, SIDE, seed=1)
    first.save(out, "MPO", save_all=True, append_images=[second])
    assert Image.open(io.BytesIO(out.getvalue())).format == "MPO"
    return out.getvalue()


def bilevel_png_with_trns() -> bytes:
    """A 1-bit PNG whose transparent colour is a tRNS chunk."""
    im = Image.new("1", (SIDE, SIDE), 1)
    for x in range(SIDE // 2):
        im.putpixel((x, x), 0)
    return images.encode(im, "PNG", transparency=0)


def animated_gif() -> bytes:
    frames = [images.photo(SIDE, SIDE, seed=n).convert("P") for n in range(3)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


# name -> (bytes, the verdict every door must give)
ODD_FILES: dict[str, tuple[bytes, str]] = {
    "multi-picture.mpo": (mpo(), MADE),
    "bilevel-trns.png": (bilevel_png_with_trns(), MADE),
    "cmyk.jpg": (images.encode(images.photo(SIDE, SIDE).convert("CMYK"), "JPEG"), MADE),
    "16-bit-grey.png": (images.encode(images.photo(SIDE, SIDE).convert("I;16"), "PNG"), MADE),
    "palette-alpha.png": (images.png(SIDE, SIDE, mode="RGBA"), MADE),
    "animated.gif": (animated_gif(), MADE),
    "grey.tiff": (images.encode(images.photo(SIDE, SIDE, mode="L"), "TIFF"), MADE),
    "page.html": (b"<!doctype html><html><body>Sorry, this photo is private</body></html>", NOT_AN_IMAGE),
    "drawing.eps": (images.encode(images.photo(SIDE, SIDE), "EPS"), NOT_AN_IMAGE),
    "too-many-pixels.png": (
        images.png(128, 128),
        f"image is 128x128, more than the limit of {MAX_PIXELS} pixels",
    ),
}

Door = Callable[[str, bytes], str]


@pytest.fixture
def odd_settings(settings: Settings) -> Settings:
    return settings.with_(max_image_pixels=MAX_PIXELS)


@pytest.fixture
def web(odd_settings: Settings, broker: Broker) -> Iterator[FlaskClient]:
    clients = AppClients(odd_settings)
    yield clients()
    clients.close()


@pytest.fixture
def consumer(odd_settings: Settings, broker: Broker) -> Iterator[None]:
    threads = WorkerThreads()
    threads.start(
        build_worker(odd_settings),
        ready=lambda: broker.consumers(broker.topology.query_queue) > 0,
        what="the consumer to subscribe",
    )
    yield
    threads.stop_all()


def settled(session_factory: SessionFactory, photo_uuid: uuid.UUID) -> str:
    """The verdict on a photo a door took in: made, or its failure reason."""

    def outcome() -> Photo | None:
        with unit_of_work(session_factory) as session:
            photo = session.get(Photo, photo_uuid)
            assert photo is not None
            return photo if photo.status in (PhotoStatus.completed, PhotoStatus.failed) else None

    photo = wait_for(outcome, 30, what=f"photo {photo_uuid} to be completed or failed")
    assert photo is not None
    return MADE if photo.status == PhotoStatus.completed else str(photo.failure_reason)


@pytest.fixture
def doors(web: FlaskClient, session_factory: SessionFactory, photo_host: PhotoHost) -> dict[str, Door]:
    def by_url(name: str, data: bytes) -> str:
        url = photo_host.add(f"{uuid.uuid4().hex}-{name}", serve_bytes(data, "application/octet-stream"))
        [photo_uuid] = pipeline.add_photos(session_factory, [url])
        response = web.post("/photos/process", json=[str(photo_uuid)])
        assert response.status_code == 202, response.get_json()
        return settled(session_factory, photo_uuid)

    def post_file(path: str, field: str, name: str, data: bytes) -> TestResponse:
        file = FileStorage(stream=io.BytesIO(data), filename=name)
        return web.post(path, data={field: file}, content_type="multipart/form-data")

    def by_upload(name: str, data: bytes) -> str:
        response = post_file("/photos?process=true", "file", name, data)
        if response.status_code != 201:
            return str(response.get_json()["error"])
        return settled(session_factory, uuid.UUID(response.get_json()["uuid"]))

    def by_task(name: str, data: bytes) -> str:
        response = web.post("/tasks", json={"data": base64.b64encode(data).decode()})
        if response.status_code != 201:
            return str(response.get_json()["error"])
        return settled(session_factory, uuid.UUID(response.get_json()["id"]))

    def by_query(name: str, data: bytes) -> str:
        response = post_file("/query", "image", name, data)
        if response.status_code != 200:
            assert response.status_code in (413, 415), response.get_json()
            return str(response.get_json()["error"])
        return MADE

    return {"url": by_url, "upload": by_upload, "task": by_task, "query": by_query}


@pytest.mark.parametrize("name", ODD_FILES)
def test_every_front_door_gives_an_odd_file_the_same_verdict(
    name: str, doors: dict[str, Door], consumer: None
) -> None:
    data, expected = ODD_FILES[name]
    verdicts = {door: enter(name, data) for door, enter in doors.items()}
    assert verdicts == dict.fromkeys(doors, expected)
