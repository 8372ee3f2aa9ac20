"""POST /photos: a photo registered from its bytes (multipart or JSON base64),
queued on request, against real Postgres and RabbitMQ."""

from __future__ import annotations

import base64
import io
import re
import uuid
from collections.abc import Iterator

import fast_thumbhash
import pytest
from flask.testing import FlaskClient

from photos.config import Settings
from photos.db import SessionFactory
from photos.models import Photo, PhotoStatus
from photos.pipeline import Done, Settled
from tests.support import images
from tests.support.services import Broker
from tests.support.storage import BOTH_BACKENDS, read_stored, stored_keys
from tests.support.uploads import AppClients, b64, drain, photos_in, process_queued

pytestmark = BOTH_BACKENDS


@pytest.fixture
def make_client(settings: Settings, session_factory: SessionFactory, broker: Broker) -> Iterator[AppClients]:
    clients = AppClients(settings)
    yield clients
    clients.close()


def multipart(data: bytes, filename: str = "photo.jpg", **fields: str) -> dict[str, object]:
    return {"file": (io.BytesIO(data), filename), **fields}


def with_files(kwargs: dict[str, object]) -> dict[str, object]:
    """The request's ``(bytes, filename)`` form fields as files, new for each
    request (the test client closes the files it sends)."""
    data = kwargs.get("data")
    if not isinstance(data, dict):
        return kwargs
    files = {k: (io.BytesIO(v[0]), v[1]) if isinstance(v, tuple) else v for k, v in data.items()}
    return {**kwargs, "data": files}


def the_photo(factory: SessionFactory) -> Photo:
    [photo] = photos_in(factory)
    return photo


def test_a_multipart_file_is_registered_as_a_pending_upload_and_not_queued(
    client: FlaskClient, settings: Settings, session_factory: SessionFactory, broker: Broker
) -> None:
    data = images.jpeg(300, 200)
    response = client.post("/photos", data=multipart(data, "../../etc/passwd.jpg"))

    assert response.status_code == 201
    record = response.get_json()
    photo = the_photo(session_factory)
    assert record["uuid"] == str(photo.uuid)
    assert response.headers["Location"] == f"/photos/{photo.uuid}"
    assert (record["status"], record["source"], record["renditions"]) == ("pending", "upload", ["fit-320"])
    # The name comes from the photo, never from the client.
    assert photo.original_path == f"{str(photo.uuid)[:2]}/{photo.uuid}/original.jpg"
    assert record["original"] == f"/thumbs/{photo.original_path}"
    assert record["url"] == f"upload:{photo.original_path}"
    assert stored_keys(settings) == [photo.original_path]
    assert read_stored(settings, photo.original_path) == data
    assert client.get(record["original"]).data == data
    assert photo.queued_at is None
    assert broker.depth() == 0


@pytest.mark.parametrize(
    "send",
    [
        lambda c, d: c.post("/photos?process=1", data=multipart(d)),
        lambda c, d: c.post("/photos", data=multipart(d, process="true")),
        lambda c, d: c.post("/photos", json={"data": b64(d), "process": True}),
        lambda c, d: c.post("/photos?process=yes", json={"data": b64(d)}),
    ],
    ids=["multipart-query", "multipart-field", "json-field", "json-query"],
)
def test_process_queues_the_upload_and_a_consumer_makes_its_thumbnail(
    client: FlaskClient, settings: Settings, session_factory: SessionFactory, broker: Broker, send: object
) -> None:
    data = images.png(640, 480)
    response = send(client, data)  # type: ignore[operator]
    assert response.status_code == 201, response.get_json()
    photo = the_photo(session_factory)
    assert photo.queued_at is not None

    assert process_queued(settings, session_factory, broker) == [Done(Settled.completed)]
    shown = client.get(f"/photos/{photo.uuid}").get_json()
    assert shown["status"] == "completed"
    [thumbnail] = shown["thumbnails"]
    assert (thumbnail["rendition"], thumbnail["width"], thumbnail["height"]) == ("fit-320", 320, 240)
    assert images.decode(client.get(thumbnail["url"]).data).size == (320, 240)


def test_a_json_upload_without_process_is_not_queued(
    client: FlaskClient, session_factory: SessionFactory, broker: Broker
) -> None:
    response = client.post("/photos", json={"data": b64(images.png(30, 10)), "process": False})
    assert response.status_code == 201
    assert the_photo(session_factory).status == PhotoStatus.pending
    assert drain(broker) == []


@pytest.mark.parametrize(
    "renditions", [["square-64", "mirror"], "square-64, mirror", ["square-64", "mirror", "square-64"]]
)
def test_renditions_can_be_chosen(
    client: FlaskClient, session_factory: SessionFactory, renditions: object
) -> None:
    response = client.post("/photos", json={"data": b64(images.png(30, 10)), "renditions": renditions})
    assert response.status_code == 201
    assert response.get_json()["renditions"] == ["square-64", "mirror"]
    assert the_photo(session_factory).renditions == ["square-64", "mirror"]


def test_renditions_in_a_multipart_form(client: FlaskClient) -> None:
    response = client.post("/photos", data=multipart(images.jpeg(30, 10), renditions="square-32"))
    assert response.status_code == 201
    assert response.get_json()["renditions"] == ["square-32"]


@pytest.mark.parametrize(
    ("request_kwargs", "status", "error"),
    [
        ({"json": {"data": "aGVsbG8", "renditions": ["fit-320"]}}, 400, "not valid base64"),
        ({"json": {"image": "aGVsbG8="}}, 400, '"data"'),
        ({"json": {"data": b64(images.png(8, 8)), "renditions": ["huge"]}}, 400, "unknown renditions huge"),
        ({"json": {"data": b64(images.png(8, 8)), "renditions": []}}, 400, "at least one rendition"),
        ({"json": {"data": b64(images.png(8, 8)), "renditions": [1]}}, 400, "renditions must be"),
        ({"json": {"data": b64(images.png(8, 8)), "process": "maybe"}}, 400, "process must be"),
        ({"data": {"image": (images.png(8, 8), "a.png")}}, 400, 'field "file"'),
        ({"data": {"file": (b"", "photo.jpg")}}, 400, "empty"),
        ({"data": {"file": (images.png(8, 8)[:20], "photo.jpg")}}, 415, "image"),
        ({"data": {"file": (b"plain text", "photo.jpg")}}, 415, "not an image"),
        ({"data": b"raw bytes", "content_type": "image/jpeg"}, 415, "multipart/form-data"),
    ],
    ids=[
        "bad-base64",
        "no-data",
        "unknown-rendition",
        "no-rendition",
        "rendition-not-a-name",
        "bad-process-flag",
        "no-file-field",
        "empty-file",
        "broken-header",
        "not-an-image",
        "raw-body",
    ],
)
def test_bad_uploads_are_refused_with_a_json_error_and_store_nothing(
    client: FlaskClient,
    settings: Settings,
    session_factory: SessionFactory,
    request_kwargs: dict[str, object],
    status: int,
    error: str,
) -> None:
    response = client.post("/photos", **with_files(request_kwargs))
    assert response.status_code == status
    assert error in response.get_json()["error"]
    assert photos_in(session_factory) == []
    assert stored_keys(settings) == []


def test_a_file_over_the_byte_limit_is_a_413(make_client: AppClients, settings: Settings) -> None:
    data = images.jpeg(200, 200)
    client = make_client(upload_max_bytes=len(data) - 1)
    response = client.post("/photos", data=multipart(data))
    assert response.status_code == 413
    assert "limit" in response.get_json()["error"]
    assert stored_keys(settings) == []


def test_a_body_over_max_content_length_is_a_413(make_client: AppClients) -> None:
    client = make_client(max_content_length=5_000)
    response = client.post("/photos", data=multipart(images.png(200, 200)))
    assert response.status_code == 413


def test_a_broker_that_is_down_withdraws_a_processed_upload_but_not_a_plain_one(
    make_client: AppClients, settings: Settings, session_factory: SessionFactory
) -> None:
    client = make_client(amqp_uri="amqp://guest:guest@127.0.0.1:1/%2F")
    assert client.post("/photos?process=1", data=multipart(images.jpeg(40, 30))).status_code == 503
    assert stored_keys(settings) == []
    # Without process nothing is published, so the broker is not needed.
    assert client.post("/photos", data=multipart(images.jpeg(40, 30))).status_code == 201
    assert the_photo(session_factory).status == PhotoStatus.pending


def test_uploaded_photos_can_be_queued_later_by_uuid(
    client: FlaskClient, settings: Settings, session_factory: SessionFactory, broker: Broker
) -> None:
    record = client.post("/photos", data=multipart(images.jpeg(400, 400))).get_json()
    assert client.post("/photos/process", json=[record["uuid"]]).status_code == 202
    assert [m.photo_uuid for m in drain(broker)] == [uuid.UUID(record["uuid"])]


def test_the_same_bytes_uploaded_twice_are_two_photos_with_two_originals(
    client: FlaskClient, settings: Settings, session_factory: SessionFactory
) -> None:
    data = images.jpeg(64, 48)
    first = client.post("/photos", data=multipart(data, "same.jpg")).get_json()
    second = client.post("/photos", data=multipart(data, "same.jpg")).get_json()
    assert first["uuid"] != second["uuid"]
    assert first["original"] != second["original"]
    assert len(photos_in(session_factory)) == 2
    assert [read_stored(settings, k) for k in stored_keys(settings)] == [data, data]


def test_webp_and_avif_renditions_are_made_and_served_with_their_content_type(
    client: FlaskClient, settings: Settings, session_factory: SessionFactory, broker: Broker
) -> None:
    wanted = ["fit-320", "fit-320-webp", "fit-320-avif"]
    response = client.post(
        "/photos?process=1", json={"data": b64(images.jpeg(1600, 1200)), "renditions": wanted}
    )
    assert response.status_code == 201, response.get_json()
    assert process_queued(settings, session_factory, broker) == [Done(Settled.completed)]
    shown = client.get(f"/photos/{response.get_json()['uuid']}").get_json()
    by_name = {t["rendition"]: t for t in shown["thumbnails"]}
    assert sorted(by_name) == sorted(wanted)
    for name, (content_type, fmt) in {
        "fit-320": ("image/jpeg", "JPEG"),
        "fit-320-webp": ("image/webp", "WEBP"),
        "fit-320-avif": ("image/avif", "AVIF"),
    }.items():
        thumbnail = by_name[name]
        extension = content_type.split("/")[1].replace("jpeg", "jpg")
        # The S3 backend's names carry a write-once token between the two.
        assert re.fullmatch(rf"/thumbs/.+/{name}(\.[0-9a-f]{{16}})?\.{extension}", thumbnail["url"])
        served = client.get(thumbnail["url"])
        assert served.status_code == 200
        assert served.headers["Content-Type"] == content_type
        im = images.decode(served.data)
        assert (im.format, im.size) == (fmt, (320, 240)) == (fmt, (thumbnail["width"], thumbnail["height"]))


def test_a_completed_photo_has_its_thumbhash_in_every_answer_that_lists_it(
    client: FlaskClient, settings: Settings, session_factory: SessionFactory, broker: Broker
) -> None:
    response = client.post("/photos?process=1", json={"data": b64(images.jpeg(1600, 1000))})
    photo = response.get_json()["uuid"]
    assert response.get_json()["thumbhash"] is None  # pending: nothing made yet
    task = client.post("/tasks", json={"data": b64(images.jpeg(480, 480))}).get_json()["id"]
    assert "thumbhash" not in client.get(f"/tasks/{task}").get_json()
    assert set(process_queued(settings, session_factory, broker)) == {Done(Settled.completed)}

    shown = client.get(f"/photos/{photo}").get_json()
    thumbhash = base64.b64decode(shown["thumbhash"], validate=True)
    assert 15 <= len(thumbhash) <= 30
    listed = {p["uuid"]: p for p in client.get("/photos").get_json()["photos"]}
    assert listed[photo]["thumbhash"] == shown["thumbhash"]
    rows = {str(p.uuid): p for p in photos_in(session_factory)}
    assert rows[photo].thumbhash == thumbhash
    # From the fit-320 it was made with: the same aspect ratio.
    [thumbnail] = shown["thumbnails"]
    ratio = fast_thumbhash.thumb_hash_to_approximate_aspect_ratio(thumbhash)
    assert abs(ratio - thumbnail["width"] / thumbnail["height"]) < 0.15

    done = client.get(f"/tasks/{task}").get_json()
    assert done["status"] == "DONE"
    assert 15 <= len(base64.b64decode(done["thumbhash"], validate=True)) <= 30
