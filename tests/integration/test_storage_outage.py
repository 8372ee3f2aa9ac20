"""Our own storage outage (the bucket is missing, the credentials are refused)
is never a photo's fault: photos wait for it, with their attempts intact,
and complete once it is over; the web app answers 503 naming storage and
keeps nothing it could not store. On moto's S3 server."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from consumer.worker import build_processor
from photos import pipeline
from photos.config import Settings
from photos.db import SessionFactory, unit_of_work
from photos.messages import PhotoMessage
from photos.models import Photo, PhotoStatus
from photos.pipeline import Done, RetryLater, Settled
from photos.queue import Publisher, Topology
from photos.storage import StorageUnavailable, open_storage
from tests.support import images
from tests.support.invariants import assert_settled, check_rows_and_files
from tests.support.photo_host import PhotoHost, serve_bytes
from tests.support.s3 import MotoS3
from tests.support.services import Broker, consumer
from tests.support.storage import local_files
from tests.support.wait import wait_for

pytestmark = pytest.mark.parametrize("storage_kind", ["s3"], indirect=True)

JPEG = images.jpeg(640, 480)


@pytest.fixture
def no_bucket(settings: Settings, moto_s3: MotoS3) -> Iterator[Settings]:
    """The test's bucket removed: what a typo in STORAGE_URL or a deleted
    bucket looks like. ``create`` brings it back."""
    assert settings.storage is not None
    moto_s3.client().delete_bucket(Bucket=settings.storage.bucket)
    yield settings


def create_bucket(settings: Settings, moto_s3: MotoS3) -> None:
    assert settings.storage is not None
    moto_s3.client().create_bucket(Bucket=settings.storage.bucket)


@pytest.fixture
def refused_credentials(settings: Settings, moto_s3: MotoS3) -> Iterator[None]:
    """moto checks keys from now on (after the test's bucket is made): ours are refused."""
    moto_s3.require_credentials(True)
    try:
        yield
    finally:
        moto_s3.require_credentials(False)


def row(factory: SessionFactory, photo_uuid: uuid.UUID) -> Photo:
    with unit_of_work(factory) as session:
        found = session.get(Photo, photo_uuid)
        assert found is not None
        return found


def test_a_missing_bucket_is_unavailable_storage_not_a_missing_object(no_bucket: Settings) -> None:
    storage = open_storage(no_bucket)
    for action in (
        storage.check,
        lambda: storage.read("ab/x/original.jpg"),
        lambda: storage.stat("ab/x/original.jpg"),
        lambda: storage.write("ab/x/original.jpg", b"x"),
        lambda: list(storage.list_keys()),
    ):
        with pytest.raises(StorageUnavailable, match="does not exist"):
            action()


@pytest.mark.usefixtures("refused_credentials")
def test_refused_credentials_are_unavailable_storage(settings: Settings) -> None:
    with pytest.raises(StorageUnavailable, match="refused the credentials"):
        open_storage(settings).check()


def test_a_photo_waits_out_a_missing_bucket_with_its_attempts_intact_and_then_completes(
    no_bucket: Settings, session_factory: SessionFactory, photo_host: PhotoHost, moto_s3: MotoS3
) -> None:
    settings = no_bucket
    [p] = pipeline.add_photos(session_factory, [photo_host.add("p.jpg", serve_bytes(JPEG))])
    processor = build_processor(settings, session_factory)
    for _ in range(settings.max_attempts + 2):
        outcome = processor.handle(PhotoMessage(p))
        assert isinstance(outcome, RetryLater)
        assert "does not exist" in outcome.reason
        photo = row(session_factory, p)
        assert (photo.status, photo.attempts) == (PhotoStatus.pending, 0)
        assert photo.failure_reason is not None and photo.failure_reason.startswith("storage unavailable")
    create_bucket(settings, moto_s3)
    assert processor.handle(PhotoMessage(p)) == Done(Settled.completed)
    settled = check_rows_and_files(session_factory, settings, [p])[p]
    assert (settled.status, settled.attempts) == (PhotoStatus.completed, 1)


@pytest.mark.usefixtures("refused_credentials")
def test_a_photo_is_not_failed_for_refused_credentials(
    settings: Settings, session_factory: SessionFactory, photo_host: PhotoHost
) -> None:
    [p] = pipeline.add_photos(session_factory, [photo_host.add("p.jpg", serve_bytes(JPEG))])
    processor = build_processor(settings, session_factory)
    for _ in range(settings.max_attempts + 1):
        outcome = processor.handle(PhotoMessage(p))
        assert isinstance(outcome, RetryLater)
        assert "refused the credentials" in outcome.reason
    photo = row(session_factory, p)
    assert (photo.status, photo.attempts) == (PhotoStatus.pending, 0)


def test_an_uploaded_original_unreadable_in_an_outage_is_retried_not_failed(
    settings: Settings, session_factory: SessionFactory, client: FlaskClient, moto_s3: MotoS3
) -> None:
    """Were a missing bucket read as a missing object, the upload would fail
    for good with "the uploaded original is missing from storage"."""
    response = client.post("/photos", data={"file": (io.BytesIO(images.jpeg(300, 200)), "p.jpg")})
    assert response.status_code == 201
    p = uuid.UUID(response.get_json()["uuid"])
    assert settings.storage is not None
    saved = moto_s3.objects(settings.storage)
    s3 = moto_s3.client()
    for key in saved:
        s3.delete_object(Bucket=settings.storage.bucket, Key=key)
    s3.delete_bucket(Bucket=settings.storage.bucket)
    processor = build_processor(settings, session_factory)
    outcome = processor.handle(PhotoMessage(p))
    assert isinstance(outcome, RetryLater)
    assert row(session_factory, p).status == PhotoStatus.pending
    create_bucket(settings, moto_s3)
    for key, data in saved.items():
        s3.put_object(Bucket=settings.storage.bucket, Key=key, Body=data)
    assert processor.handle(PhotoMessage(p)) == Done(Settled.completed)
    check_rows_and_files(session_factory, settings, [p])


def test_a_consumer_process_keeps_a_photo_through_the_outage(
    no_bucket: Settings,
    session_factory: SessionFactory,
    broker: Broker,
    photo_host: PhotoHost,
    moto_s3: MotoS3,
    tmp_path: Path,
) -> None:
    settings = no_bucket
    [p] = pipeline.add_photos(session_factory, [photo_host.add("p.jpg", serve_bytes(JPEG))])
    running = consumer(settings, tmp_path / "consumer.log").start()
    publisher = Publisher(settings.amqp_uri, Topology(settings.queue_name))
    try:
        assert pipeline.queue_photos(session_factory, publisher, [p]).queued == [p]
    finally:
        publisher.close()
    wait_for(
        lambda: (row(session_factory, p).failure_reason or "").startswith("storage unavailable"),
        what="the consumer to meet the outage",
    )
    wait_for(lambda: running.log().count('"storage unavailable"') >= 2, what="a second try")
    create_bucket(settings, moto_s3)
    outcome = assert_settled(session_factory, broker, settings, [p], consumers=[running])[p]
    assert (outcome.status, outcome.attempts) == (PhotoStatus.completed, 1)


def test_an_upload_into_a_missing_bucket_is_a_503_naming_storage_and_keeps_nothing(
    no_bucket: Settings, client: FlaskClient, session_factory: SessionFactory
) -> None:
    response = client.post("/photos", data={"file": (io.BytesIO(images.jpeg(30, 20)), "p.jpg")})
    assert response.status_code == 503
    assert response.get_json()["error"].startswith("storage is unavailable, try again:")
    with unit_of_work(session_factory) as session:
        assert session.scalars(select(Photo)).all() == []
    assert local_files(no_bucket.thumbs_dir) == []


def test_serving_from_a_missing_bucket_is_a_503(no_bucket: Settings, client: FlaskClient) -> None:
    for headers in ({}, {"If-None-Match": '"x"'}):
        response = client.get("/thumbs/ab/x/fit-320.0123456789abcdef.jpg", headers=headers)
        assert response.status_code == 503
        assert "storage is unavailable" in response.get_json()["error"]


def test_readyz_names_a_missing_bucket(no_bucket: Settings, client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["down"] == ["storage"]
    assert body["error"] == "not ready: storage down"
    assert no_bucket.storage is not None
    bucket = no_bucket.storage.bucket
    assert body["checks"]["storage"] == f"the bucket of s3://{bucket}/photos/ does not exist"
    assert body["checks"]["database"] == body["checks"]["broker"] == "ok"


@pytest.mark.usefixtures("refused_credentials")
def test_readyz_names_refused_credentials(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["down"] == ["storage"]
    assert "refused the credentials" in body["checks"]["storage"]


def test_readyz_is_ok_once_the_bucket_is_there(
    no_bucket: Settings, client: FlaskClient, moto_s3: MotoS3
) -> None:
    assert client.get("/readyz").status_code == 503
    create_bucket(no_bucket, moto_s3)
    response = client.get("/readyz")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["checks"]["storage"] == "ok"
