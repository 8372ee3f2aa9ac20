"""The service end to end, as a user runs it: real processes, real Postgres and
RabbitMQ, photos downloaded from a local HTTP server."""

from __future__ import annotations

import signal
import sys
import threading
import uuid
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from photos import pipeline
from photos.config import Settings
from photos.db import SessionFactory, unit_of_work
from photos.messages import PhotoMessage
from photos.models import Photo, PhotoStatus, Thumbnail
from photos.queue import Publisher
from tests.e2e.conftest import RunningService, free_port
from tests.support import images
from tests.support.photo_host import PhotoHost, gated, serve_bytes
from tests.support.services import Broker, Process, service_env
from tests.support.wait import wait_for

pytestmark = pytest.mark.slow


def statuses(factory: SessionFactory, ids: list[uuid.UUID]) -> dict[uuid.UUID, PhotoStatus]:
    with unit_of_work(factory) as session:
        rows = session.execute(select(Photo.uuid, Photo.status).where(Photo.uuid.in_(ids)))
        return {row.uuid: row.status for row in rows}


def all_done(factory: SessionFactory, ids: list[uuid.UUID]) -> bool:
    current = statuses(factory, ids)
    return all(s in (PhotoStatus.completed, PhotoStatus.failed) for s in current.values())


def thumbnails(factory: SessionFactory, photo: uuid.UUID) -> list[Thumbnail]:
    with unit_of_work(factory) as session:
        return list(session.scalars(select(Thumbnail).where(Thumbnail.photo_uuid == photo)))


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def check_thumbnail(settings: Settings, row: Thumbnail, displayed: tuple[int, int]) -> None:
    """The file exists at the row's relative path, its real size is the row's,
    it fits 320x320, keeps the displayed aspect ratio within a pixel, and the
    red mark of the original's displayed top-left corner is at its top-left."""
    assert not row.key.startswith("/") and ".." not in row.key
    thumb = images.decode((settings.thumbs_dir / row.key).read_bytes())
    assert (thumb.width, thumb.height) == (row.width, row.height)
    assert max(thumb.width, thumb.height) == 320 >= min(thumb.width, thumb.height)
    w, h = displayed
    expected_height = thumb.width * h / w
    assert abs(thumb.height - expected_height) <= 1, (thumb.size, displayed)
    rgb = thumb.convert("RGB")
    assert images.is_red(rgb.getpixel((3, 3)))  # type: ignore[arg-type]
    assert not images.is_red(rgb.getpixel((thumb.width - 3, thumb.height - 3)))  # type: ignore[arg-type]


def test_make_run_processes_every_photo_end_to_end(
    settings: Settings, session_factory: SessionFactory, broker: Broker, photo_host: PhotoHost, tmp_path: Path
) -> None:
    """`make run`'s supervisor (gunicorn + one consumer) on the test's database:
    POST the UUIDs, then every status, file, size, orientation and URL checks
    out, the failed download has its reason, and SIGINT stops both processes."""
    shapes = {
        "landscape.jpg": (images.jpeg(1600, 1000), (1600, 1000)),
        "portrait.jpg": (images.jpeg(900, 1400), (900, 1400)),
        "rotated.jpg": (images.jpeg(1200, 1600, orientation=6), (1200, 1600)),
        "mirrored.jpg": (images.jpeg(1000, 700, orientation=8), (1000, 700)),
        "diagram.png": (images.png(800, 600, mode="RGBA"), (800, 600)),
    }
    urls = {name: photo_host.add(name, serve_bytes(data)) for name, (data, _) in shapes.items()}
    missing_url = photo_host.url("gone.jpg")
    ids = pipeline.add_photos(session_factory, [*urls.values(), missing_url])
    by_url = dict(zip([*urls.values(), missing_url], ids, strict=True))

    port = free_port()
    run = Process(
        [sys.executable, "scripts/run.py"],
        service_env(settings.with_(port=port), PORT=str(port)),
        tmp_path / "make-run.log",
    ).start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(base + "/readyz"), 30, what="the web app to start")
        pending = requests.get(base + "/photos/pending", timeout=5).json()
        assert sorted(p["uuid"] for p in pending) == sorted(str(u) for u in ids)

        response = requests.post(
            base + "/photos/process", json={"uuids": [p["uuid"] for p in pending]}, timeout=10
        )
        assert response.status_code == 202, response.text
        assert sorted(response.json()["queued"]) == sorted(str(u) for u in ids)

        wait_for(lambda: all_done(session_factory, ids), 60, what="every photo to finish")
        final = statuses(session_factory, ids)
        for name, (_, displayed) in shapes.items():
            photo = by_url[urls[name]]
            assert final[photo] == PhotoStatus.completed, name
            [row] = thumbnails(session_factory, photo)
            assert row.rendition == "fit-320"
            check_thumbnail(settings, row, displayed)
            served = requests.get(f"{base}/thumbs/{row.key}", timeout=5)
            assert served.status_code == 200
            assert served.headers["Content-Type"] == "image/jpeg"
            assert served.content == (settings.thumbs_dir / row.key).read_bytes()

        failed = by_url[missing_url]
        assert final[failed] == PhotoStatus.failed
        record = requests.get(f"{base}/photos/{failed}", timeout=5).json()
        assert record["failure_reason"] == "the photo host answered HTTP 404"
        assert record["thumbnails"] == []
        assert len(files_under(settings.thumbs_dir)) == len(shapes)
        wait_for(lambda: broker.total_depth() == 0, 10, what="queues to drain")
    finally:
        if run.alive():
            run.popen.send_signal(signal.SIGINT)  # type: ignore[union-attr]
    assert run.popen is not None
    assert run.popen.wait(45) == 0
    log = run.log()
    assert "consumer stopped" in log
    assert "Shutting down: Master" in log
    assert not _answers(base + "/healthz")


def test_a_message_delivered_twice_makes_one_row_and_one_file(
    running_service: RunningService, session_factory: SessionFactory, photo_host: PhotoHost
) -> None:
    settings = running_service.settings
    [photo] = pipeline.add_photos(
        session_factory, [photo_host.add("a.jpg", serve_bytes(images.jpeg(640, 480)))]
    )
    publisher = Publisher(settings.amqp_uri, running_service.broker.topology)
    try:
        publisher.publish([PhotoMessage(photo), PhotoMessage(photo)])
    finally:
        publisher.close()

    wait_for(lambda: statuses(session_factory, [photo])[photo] == PhotoStatus.completed, 30)
    wait_for(lambda: running_service.broker.total_depth() == 0, 30, what="both messages to be consumed")
    [row] = thumbnails(session_factory, photo)
    assert files_under(settings.thumbs_dir) == [settings.thumbs_dir / row.key]
    assert photo_host.requests.count("/a.jpg") == 1  # the second delivery found it claimed or done


def test_a_consumer_killed_while_holding_a_message_loses_nothing(
    running_service: RunningService, session_factory: SessionFactory, photo_host: PhotoHost
) -> None:
    """SIGKILL while the photo is being downloaded: RabbitMQ redelivers, the
    lease runs out, a new consumer completes the photo exactly once."""
    settings = running_service.settings
    gate = threading.Event()
    url = photo_host.add("slow.jpg", gated(gate, serve_bytes(images.jpeg(1200, 800))))
    [photo] = pipeline.add_photos(session_factory, [url])
    response = requests.post(running_service.url("/photos/process"), json=[str(photo)], timeout=10)
    assert response.status_code == 202

    wait_for(lambda: photo_host.requests.count("/slow.jpg") == 1, 30, what="the download to start")
    assert statuses(session_factory, [photo])[photo] == PhotoStatus.processing
    [victim] = running_service.consumers
    victim.kill()
    running_service.consumers.remove(victim)
    running_service.add_consumer()
    gate.set()

    wait_for(lambda: statuses(session_factory, [photo])[photo] == PhotoStatus.completed, 60)
    with unit_of_work(session_factory) as session:
        done = session.get(Photo, photo)
        assert done is not None and done.attempts == 2
    [row] = thumbnails(session_factory, photo)
    check_thumbnail(settings, row, (1200, 800))
    assert files_under(settings.thumbs_dir) == [settings.thumbs_dir / row.key]
    wait_for(lambda: running_service.broker.total_depth() == 0, 30, what="queues to drain")


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        # Refused before gunicorn binds; a read timeout while its workers
        # still boot (the master accepts connections before they can answer).
        return False
