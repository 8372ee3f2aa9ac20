"""Several hosts sharing nothing but Postgres, RabbitMQ and a bucket: three
``python -m consumer`` processes, each with its own empty THUMBS_DIR (as on
three machines), the S3 backend on moto's server, URL photos, uploads and
tasks; one consumer is SIGKILLed mid-run. The invariant must hold over the
bucket, and no local directory may have been written to."""

from __future__ import annotations

import base64
import io
import uuid
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from photos import pipeline
from photos.config import Settings
from photos.db import SessionFactory, unit_of_work
from photos.models import Photo, PhotoStatus
from photos.queue import Publisher, Topology
from tests.support import images
from tests.support.invariants import assert_settled, check_rows_and_files
from tests.support.photo_host import PhotoHost, serve_bytes
from tests.support.services import Broker, Process, consumer
from tests.support.wait import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("storage_kind", ["s3"], indirect=True)]

URL_PHOTOS = 60
UPLOADS = 8
TASKS = 6


def completed(factory: SessionFactory, photos: list[uuid.UUID]) -> int:
    with unit_of_work(factory) as session:
        return int(
            session.scalar(
                select(func.count()).where(Photo.uuid.in_(photos), Photo.status == PhotoStatus.completed)
            )
            or 0
        )


def test_three_hosts_one_killed_share_only_the_bucket(
    settings: Settings,
    session_factory: SessionFactory,
    broker: Broker,
    photo_host: PhotoHost,
    client: FlaskClient,
    tmp_path: Path,
) -> None:
    hosts = [tmp_path / f"host-{i}" / "thumbs" for i in range(3)]
    consumers: list[Process] = []
    for i, thumbs in enumerate(hosts):
        thumbs.mkdir(parents=True)
        consumers.append(consumer(settings.with_(thumbs_dir=thumbs), tmp_path / f"consumer-{i}.log").start())

    urls = [photo_host.add(f"{i}.jpg", serve_bytes(images.jpeg(900 + 7 * i, 700))) for i in range(URL_PHOTOS)]
    photos = pipeline.add_photos(session_factory, urls)
    publisher = Publisher(settings.amqp_uri, Topology(settings.queue_name))
    try:
        assert pipeline.queue_photos(session_factory, publisher, photos).queued == photos
    finally:
        publisher.close()
    for i in range(UPLOADS):
        data = images.png(500 + i, 400)
        response = client.post("/photos?process=1", data={"file": (io.BytesIO(data), "up.png")})
        assert response.status_code == 201, response.get_json()
        photos.append(uuid.UUID(response.get_json()["uuid"]))
    tasks: list[str] = []
    for i in range(TASKS):
        encoded = base64.b64encode(images.jpeg(200 + i, 200 + i)).decode()
        response = client.post("/tasks", json={"data": encoded})
        assert response.status_code == 201, response.get_json()
        tasks.append(response.get_json()["id"])
        photos.append(uuid.UUID(tasks[-1]))

    # Mid-run: a third of the work done, the rest spread over three consumers.
    wait_for(lambda: completed(session_factory, photos) >= len(photos) // 3, timeout=120, what="a third done")
    killed = consumers[0]
    killed.kill()
    assert completed(session_factory, photos) < len(photos), "the kill came after the run"

    outcomes = assert_settled(session_factory, broker, settings, photos, consumers=consumers[1:], timeout=180)
    assert {o.status for o in outcomes.values()} == {PhotoStatus.completed}, {
        str(p): o for p, o in outcomes.items() if o.status != PhotoStatus.completed
    }
    check_rows_and_files(session_factory, settings, photos, thumbs_dirs=hosts)
    for task in tasks:
        assert client.get(f"/tasks/{task}").get_json()["status"] == "DONE"
        small = client.get(f"/tasks/{task}/image?size=32").get_json()
        assert images.decode(base64.b64decode(small["data"])).size == (32, 32)
    # Every consumer took part, the killed one included.
    for process in consumers:
        assert '"photo claimed"' in process.log(), process.log()[-2000:]
