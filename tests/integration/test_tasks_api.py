"""The image-resizer task API (POST /tasks, GET /tasks/<id>, GET /tasks/<id>/image)
against real Postgres and RabbitMQ; a real Processor makes the renditions."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update

from photos import pipeline, uploads
from photos.config import Settings
from photos.db import SessionFactory, unit_of_work
from photos.models import Photo, PhotoStatus, Thumbnail
from photos.queue import Publisher, Topology
from photos.storage import Storage, open_storage
from tests.support import images
from tests.support.services import Broker
from tests.support.storage import BOTH_BACKENDS, read_stored, stored_keys
from tests.support.uploads import AppClients, b64, drain, photos_in, process_queued, processor

pytestmark = BOTH_BACKENDS


@pytest.fixture
def make_client(settings: Settings, session_factory: SessionFactory, broker: Broker) -> Iterator[AppClients]:
    clients = AppClients(settings)
    yield clients
    clients.close()


def post_task(client: FlaskClient, data: bytes) -> uuid.UUID:
    response = client.post("/tasks", json={"data": b64(data)})
    assert response.status_code == 201, response.get_json()
    return uuid.UUID(response.get_json()["id"])


# --- POST /tasks -------------------------------------------------------------


def test_a_square_image_becomes_a_waiting_task_with_its_original_kept_and_queued(
    client: FlaskClient, settings: Settings, session_factory: SessionFactory, broker: Broker
) -> None:
    data = images.png(50, 50)
    response = client.post("/tasks", json={"data": b64(data)})

    assert response.status_code == 201
    body = response.get_json()
    assert body == {"id": body["id"], "status": "WAITING"}
    task = uuid.UUID(body["id"])
    assert response.headers["Location"] == f"/tasks/{task}"
    [photo] = photos_in(session_factory)
    assert photo.uuid == task
    assert (photo.source, photo.status, photo.renditions) == (
        "upload",
        PhotoStatus.pending,
        ["square-64", "square-32"],
    )
    assert photo.original_path == f"{str(task)[:2]}/{task}/original.png"
    assert photo.url == f"upload:{photo.original_path}"
    assert photo.queued_at is not None
    assert read_stored(settings, photo.original_path) == data
    assert stored_keys(settings) == [photo.original_path]
    assert [m.photo_uuid for m in drain(broker)] == [task]


def test_a_jpeg_is_kept_as_jpg(
    client: FlaskClient, settings: Settings, session_factory: SessionFactory
) -> None:
    task = post_task(client, images.jpeg(40, 40))
    [photo] = photos_in(session_factory)
    assert photo.original_path == f"{str(task)[:2]}/{task}/original.jpg"


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ("not base64!", "not valid base64"),
        ("aGVsbG8", "not valid base64"),  # padding missing
        ("aGVs\nbG8=", "not valid base64"),  # whitespace is not part of strict base64
        ("data:image/png;base64,aGVsbG8=", "not valid base64"),
        ("", "empty"),
        (42, "must be a string"),
        (None, "must be a string"),
    ],
)
def test_bad_base64_is_a_400_and_stores_nothing(
    client: FlaskClient,
    settings: Settings,
    session_factory: SessionFactory,
    broker: Broker,
    data: object,
    error: str,
) -> None:
    response = client.post("/tasks", json={"data": data})
    assert response.status_code == 400
    assert error in response.get_json()["error"]
    assert photos_in(session_factory) == []
    assert stored_keys(settings) == []
    assert broker.depth() == 0


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"image": "aGVsbG8="}, 400, '"data"'),
        (["aGVsbG8="], 400, "JSON object"),
    ],
)
def test_a_body_without_data_is_a_400(client: FlaskClient, body: object, status: int, error: str) -> None:
    response = client.post("/tasks", json=body)
    assert response.status_code == status
    assert error in response.get_json()["error"]


def test_a_body_that_is_not_json_is_a_415(client: FlaskClient) -> None:
    response = client.post("/tasks", data=b64(images.png(8, 8)), content_type="text/plain")
    assert response.status_code == 415
    assert "JSON" in response.get_json()["error"]


@pytest.mark.parametrize(
    ("data", "displayed"),
    [
        (images.png(30, 20), "30x20"),
        (images.jpeg(20, 30), "20x30"),
        # Stored 30x40 but displayed 40x30: the displayed size is what counts.
        (images.jpeg(40, 30, orientation=6), "40x30"),
    ],
)
def test_only_square_images_are_accepted(
    client: FlaskClient, settings: Settings, session_factory: SessionFactory, data: bytes, displayed: str
) -> None:
    response = client.post("/tasks", json={"data": b64(data)})
    assert response.status_code == 400
    assert response.get_json() == {"error": f"only square images are accepted, got {displayed}"}
    assert photos_in(session_factory) == []
    assert stored_keys(settings) == []


def test_a_square_judged_by_its_displayed_size_is_accepted(client: FlaskClient) -> None:
    post_task(client, images.jpeg(48, 48, orientation=8))


@pytest.mark.parametrize(
    "data",
    [b"hello, world", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", images.png(10, 10)[:20]],
    ids=["text", "eps", "truncated-header"],
)
def test_bytes_that_are_not_an_image_are_a_415(
    client: FlaskClient, settings: Settings, session_factory: SessionFactory, data: bytes
) -> None:
    response = client.post("/tasks", json={"data": b64(data)})
    assert response.status_code == 415
    assert response.get_json()["error"]
    assert photos_in(session_factory) == []
    assert stored_keys(settings) == []


def test_a_body_over_max_content_length_is_a_413(make_client: AppClients) -> None:
    client = make_client(max_content_length=10_000)
    response = client.post("/tasks", json={"data": b64(images.png(200, 200))})
    assert response.status_code == 413
    assert "error" in response.get_json()


def test_an_image_over_the_decoded_byte_limit_is_a_413(
    make_client: AppClients, settings: Settings, session_factory: SessionFactory
) -> None:
    data = images.png(120, 120)
    client = make_client(upload_max_bytes=len(data) - 1)
    response = client.post("/tasks", json={"data": b64(data)})
    assert response.status_code == 413
    assert f"limit of {len(data) - 1} bytes" in response.get_json()["error"]
    assert photos_in(session_factory) == []
    # One byte less is accepted: the limit is on the decoded bytes, not the base64.
    client = make_client(upload_max_bytes=len(data))
    assert client.post("/tasks", json={"data": b64(data)}).status_code == 201


def test_an_image_over_the_pixel_limit_is_a_413(make_client: AppClients) -> None:
    client = make_client(max_image_pixels=99 * 99)
    response = client.post("/tasks", json={"data": b64(images.png(100, 100))})
    assert response.status_code == 413
    assert "100x100" in response.get_json()["error"]


@pytest.mark.parametrize(
    ("down", "error"),
    [
        ({"amqp_uri": "amqp://guest:guest@127.0.0.1:1/%2F"}, "nothing was queued"),
        ({"pg_uri": "postgresql://postgres@127.0.0.1:1/photos"}, "the database is unavailable"),
    ],
    ids=["broker", "database"],
)
def test_a_broker_or_database_that_is_down_is_a_503_and_nothing_stays(
    make_client: AppClients,
    settings: Settings,
    session_factory: SessionFactory,
    broker: Broker,
    down: dict[str, str],
    error: str,
) -> None:
    """With the broker down the upload is withdrawn; with the database down no file stays."""
    client = make_client(**down)
    response = client.post("/tasks", json={"data": b64(images.png(40, 40))})
    assert response.status_code == 503
    assert error in response.get_json()["error"]
    assert photos_in(session_factory) == []
    assert stored_keys(settings) == []
    assert broker.depth() == 0


# --- GET /tasks/<id> ------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (PhotoStatus.pending, {"status": "WAITING"}),
        (PhotoStatus.processing, {"status": "IN_PROGRESS"}),
        (PhotoStatus.completed, {"status": "DONE"}),
        (PhotoStatus.failed, {"status": "FAILED", "reason": "the image data is corrupt"}),
    ],
)
def test_task_status_maps_the_photo_status(
    client: FlaskClient,
    session_factory: SessionFactory,
    status: PhotoStatus,
    expected: dict[str, str],
) -> None:
    task = post_task(client, images.png(16, 16))
    reason = expected.get("reason")
    with unit_of_work(session_factory) as session:
        session.execute(update(Photo).where(Photo.uuid == task).values(status=status, failure_reason=reason))
    response = client.get(f"/tasks/{task}")
    assert response.status_code == 200
    assert response.get_json() == {"id": str(task), **expected}


@pytest.mark.parametrize("task_id", [str(uuid.uuid4()), "not-a-uuid", "1"])
def test_an_unknown_or_malformed_task_id_is_a_404(client: FlaskClient, task_id: str) -> None:
    for path in (f"/tasks/{task_id}", f"/tasks/{task_id}/image?size=original"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert (
            "no task" in response.get_json()["error"] or "no uploaded photo" in response.get_json()["error"]
        )


def test_a_photo_that_came_by_url_is_not_a_task(client: FlaskClient, session_factory: SessionFactory) -> None:
    [photo] = pipeline.add_photos(session_factory, ["http://127.0.0.1/a.jpg"])
    assert client.get(f"/tasks/{photo}").status_code == 404


# --- GET /tasks/<id>/image ------------------------------------------------------


@pytest.mark.parametrize("query", ["", "?size=", "?size=128", "?size=ORIGINAL", "?size=64&size=32x"])
def test_a_size_other_than_original_64_or_32_is_a_400(client: FlaskClient, query: str) -> None:
    task = post_task(client, images.png(16, 16))
    response = client.get(f"/tasks/{task}/image{query}")
    assert response.status_code == 400
    assert "size must be one of original, 64, 32" in response.get_json()["error"]


def test_the_original_is_there_at_once_and_renditions_404_until_made(
    client: FlaskClient, settings: Settings, session_factory: SessionFactory, broker: Broker
) -> None:
    data = images.png(70, 70)
    task = post_task(client, data)

    original = client.get(f"/tasks/{task}/image?size=original")
    assert original.status_code == 200
    assert original.get_json() == {
        "id": str(task),
        "size": "original",
        "content_type": "image/png",
        "data": b64(data),
    }
    for wanted in ("64", "32"):
        response = client.get(f"/tasks/{task}/image?size={wanted}")
        assert response.status_code == 404
        assert "not made yet" in response.get_json()["error"]

    assert process_queued(settings, session_factory, broker) == [pipeline.Done(pipeline.Settled.completed)]
    done = client.get(f"/tasks/{task}").get_json()
    assert done == {"id": str(task), "status": "DONE", "thumbhash": done["thumbhash"]}
    assert 15 <= len(base64.b64decode(done["thumbhash"], validate=True)) <= 30
    for size in (64, 32):
        response = client.get(f"/tasks/{task}/image?size={size}")
        assert response.status_code == 200
        body = response.get_json()
        assert (body["id"], body["size"], body["content_type"]) == (str(task), str(size), "image/jpeg")
        assert images.decode(base64.b64decode(body["data"], validate=True)).size == (size, size)
    with unit_of_work(session_factory) as session:
        rows = {t.rendition: (t.width, t.height) for t in session.scalars(select(Thumbnail))}
    assert rows == {"square-64": (64, 64), "square-32": (32, 32)}
    assert client.get(f"/tasks/{task}/image?size=original").get_json()["data"] == b64(data)


def test_a_task_whose_image_cannot_be_processed_fails_with_a_reason(
    client: FlaskClient, settings: Settings, session_factory: SessionFactory, broker: Broker
) -> None:
    # The header says 64x64 PNG, the pixel data is cut off: only decoding finds out.
    data = images.png(64, 64)[:120]
    task = post_task(client, data)
    process_queued(settings, session_factory, broker)
    body = client.get(f"/tasks/{task}").get_json()
    assert body["status"] == "FAILED"
    assert body["reason"]
    assert client.get(f"/tasks/{task}/image?size=64").status_code == 404


# --- withdrawing an upload whose message was not confirmed ----------------------


def test_withdraw_removes_an_untouched_upload_and_its_files(
    settings: Settings, session_factory: SessionFactory, broker: Broker
) -> None:
    storage = open_storage(settings)
    photo = register(settings, session_factory, storage)
    assert broker.depth() == 0
    assert uploads.withdraw_upload(session_factory, storage, photo) is True
    assert photos_in(session_factory) == []
    assert stored_keys(settings) == []


def test_withdraw_keeps_an_upload_a_consumer_has_claimed(
    settings: Settings, session_factory: SessionFactory, broker: Broker
) -> None:
    """The message got through although its confirm did not: the consumer that
    took it must find its photo and original."""
    storage = open_storage(settings)
    photo = register(settings, session_factory, storage)
    assert isinstance(processor(settings, session_factory).claim(photo), pipeline.Claim)
    assert uploads.withdraw_upload(session_factory, storage, photo) is False
    [row] = photos_in(session_factory)
    assert row.status == PhotoStatus.processing
    assert row.original_path is not None
    assert stored_keys(settings) == [row.original_path]


def register(settings: Settings, factory: SessionFactory, storage: Storage) -> uuid.UUID:
    """An upload that is not queued."""
    publisher = Publisher(settings.amqp_uri, Topology(settings.queue_name))
    try:
        photo = uploads.register_upload(
            factory,
            storage,
            publisher,
            images.png(20, 20),
            limits=uploads.Limits(settings.upload_max_bytes, settings.max_image_pixels),
        )
    finally:
        publisher.close()
    return photo.uuid
