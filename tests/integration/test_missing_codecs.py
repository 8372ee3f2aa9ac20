"""A Pillow that lacks a codec (here WebP, taken away by
tests/support/pillow_without as a build without libwebp lacks it): a consumer
fails the photos that need it with a reason naming what is missing, never as
an internal error, and goes on with the others; the web app's /readyz says
what is missing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from photos import pipeline
from photos.config import Settings
from photos.db import SessionFactory
from photos.models import PhotoStatus
from photos.queue import Publisher, Topology
from tests.support import images
from tests.support.invariants import assert_settled
from tests.support.photo_host import PhotoHost, serve_bytes
from tests.support.services import ROOT, Broker, Process, service_env


def test_a_consumer_without_webp_fails_webp_photos_naming_libwebp_and_makes_the_others(
    settings: Settings, session_factory: SessionFactory, broker: Broker, photo_host: PhotoHost, tmp_path: Path
) -> None:
    webp = photo_host.add("p.webp", serve_bytes(images.encode(images.photo(640, 480), "WEBP"), "image/webp"))
    jpeg = photo_host.add("p.jpg", serve_bytes(images.jpeg(640, 480)))
    webp_photo, jpeg_photo = pipeline.add_photos(session_factory, [webp, jpeg])
    consumer = Process(
        [sys.executable, "-m", "tests.support.pillow_without", "webp", "consumer"],
        service_env(settings, PYTHONPATH=str(ROOT)),
        tmp_path / "consumer.log",
    ).start()
    try:
        publisher = Publisher(settings.amqp_uri, Topology(settings.queue_name))
        try:
            pipeline.queue_photos(session_factory, publisher, [webp_photo, jpeg_photo])
        finally:
            publisher.close()
        outcomes = assert_settled(
            session_factory, broker, settings, [webp_photo, jpeg_photo], consumers=[consumer]
        )
    finally:
        if consumer.alive():
            consumer.kill()
        print(consumer.log())
    assert outcomes[jpeg_photo].status == PhotoStatus.completed
    failed = outcomes[webp_photo]
    assert failed.status == PhotoStatus.failed
    assert failed.reason is not None
    assert failed.reason.startswith("cannot read WebP images: Pillow's libwebp module did not load")
    assert failed.attempts == 1
    warned = [json.loads(line) for line in consumer.log().splitlines() if "cannot handle" in line]
    assert [entry["missing"] for entry in warned] == [[failed.reason]]


READYZ = """
import json
from tests.support.pillow_without import take_away
take_away(["webp"])
from photos.config import Settings
from web import create_app
app = create_app(Settings.from_env())
response = app.test_client().get("/readyz")
print(json.dumps([response.status_code, response.get_json()]))
app.extensions["photos"].close()
"""


def test_readyz_names_the_missing_codec(settings: Settings) -> None:
    done = subprocess.run(
        [sys.executable, "-c", READYZ],
        cwd=ROOT,
        env=service_env(settings, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    status, body = json.loads(done.stdout.strip().splitlines()[-1])
    assert status == 503
    assert body["down"] == ["imaging"]
    assert body["checks"]["database"] == body["checks"]["broker"] == "ok"
    assert body["checks"]["imaging"].startswith(
        "cannot read WebP images: Pillow's libwebp module did not load"
    )
