"""Colours end to end: photos tagged with colour profiles go through the real
service (gunicorn and a consumer) by their URL, by upload and by the task
API, and every rendition served from /thumbs shows the original's colours
(the largest per-channel mean absolute difference against a colour-managed
reading of the original, at most 3); a broken profile completes the photo and
the consumer's log says so, naming the photo."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
import requests
from PIL import Image, ImageOps

from photos import pipeline
from photos.db import SessionFactory
from tests.e2e.conftest import RunningService
from tests.support import colours, icc, images
from tests.support.photo_host import PhotoHost, serve_bytes
from tests.support.wait import wait_for

pytestmark = pytest.mark.slow

GOAL = 3.0
TAGGED = {
    "adobe-rgb.jpg": colours.jpeg(colours.scene(), icc.ADOBE_RGB),
    "adobe-rgb.png": colours.png(colours.scene(), icc.ADOBE_RGB),
    "grey.jpg": colours.jpeg(colours.scene().convert("L"), icc.GREY),
    "cmyk.jpg": colours.jpeg(colours.scene().convert("CMYK"), colours.CMYK),
}


def finished(service: RunningService, photo: str) -> dict[str, Any]:
    """The photo's record once it is completed or failed, else {}."""
    record: dict[str, Any] = requests.get(service.url(f"/photos/{photo}"), timeout=5).json()
    return record if record["status"] in ("completed", "failed") else {}


def wait_until_finished(service: RunningService, photo: str) -> dict[str, Any]:
    return wait_for(lambda: finished(service, photo), 60, what=f"photo {photo} to finish")


def served_difference(service: RunningService, original: bytes, thumbnail: dict[str, Any]) -> float:
    served = requests.get(service.url(str(thumbnail["url"])), timeout=5)
    assert served.status_code == 200
    expected = colours.managed_reading(original)
    if str(thumbnail["rendition"]).startswith("square-"):
        size = int(thumbnail["width"])
        expected = images.decode(
            images.encode(ImageOps.fit(expected, (size, size), Image.Resampling.LANCZOS), "JPEG", quality=85)
        )
    return colours.mean_difference(colours.browser_reading(served.content), expected)


def test_tagged_photos_by_url_and_by_upload_keep_their_colours(
    running_service: RunningService, photo_host: PhotoHost, session_factory: SessionFactory
) -> None:
    urls = {name: photo_host.add(name, serve_bytes(data)) for name, data in TAGGED.items()}
    by_url = dict(zip(TAGGED, pipeline.add_photos(session_factory, list(urls.values())), strict=True))
    queued = requests.post(
        running_service.url("/photos/process"), json=[str(u) for u in by_url.values()], timeout=10
    )
    assert queued.status_code == 202, queued.text
    uploaded = {}
    for name, data in TAGGED.items():
        response = requests.post(
            running_service.url("/photos?process=1"), files={"file": (name, data)}, timeout=10
        )
        assert response.status_code == 201, response.text
        uploaded[name] = response.json()["uuid"]

    for path, photos in (("url", by_url), ("upload", uploaded)):
        for name, photo in photos.items():
            record = wait_until_finished(running_service, str(photo))
            assert record["status"] == "completed", (path, name, record)
            [thumbnail] = record["thumbnails"]
            assert 15 <= len(base64.b64decode(record["thumbhash"], validate=True)) <= 30
            difference = served_difference(running_service, TAGGED[name], thumbnail)
            assert difference <= GOAL, f"{name} by {path}: {difference:.2f}"


def test_a_tagged_task_keeps_its_colours_in_both_squares(running_service: RunningService) -> None:
    square = colours.jpeg(colours.scene(480, 480), icc.ADOBE_RGB)
    created = requests.post(
        running_service.url("/tasks"), json={"data": base64.b64encode(square).decode()}, timeout=10
    )
    assert created.status_code == 201, created.text
    task = created.json()["id"]
    wait_for(
        lambda: requests.get(running_service.url(f"/tasks/{task}"), timeout=5).json()["status"] == "DONE",
        60,
        what="the task to be done",
    )
    record = requests.get(running_service.url(f"/photos/{task}"), timeout=5).json()
    assert sorted(t["rendition"] for t in record["thumbnails"]) == ["square-32", "square-64"]
    for thumbnail in record["thumbnails"]:
        assert served_difference(running_service, square, thumbnail) <= GOAL, thumbnail["rendition"]


def test_a_broken_profile_completes_the_photo_and_the_log_names_it(
    running_service: RunningService, photo_host: PhotoHost, session_factory: SessionFactory
) -> None:
    data = colours.jpeg(colours.scene(), b"this is no colour profile" * 10)
    [photo] = pipeline.add_photos(session_factory, [photo_host.add("broken.jpg", serve_bytes(data))])
    requests.post(running_service.url("/photos/process"), json=[str(photo)], timeout=10).raise_for_status()
    record = wait_until_finished(running_service, str(photo))
    assert record["status"] == "completed", record
    [thumbnail] = record["thumbnails"]
    served = requests.get(running_service.url(str(thumbnail["url"])), timeout=5).content
    untagged = colours.jpeg(colours.scene(), None)
    assert colours.mean_difference(images.decode(served), colours.managed_reading(untagged)) <= GOAL

    def caveat() -> dict[str, Any]:
        for line in running_service.consumers[0].log().splitlines():
            entry: dict[str, Any] = json.loads(line) if line.startswith("{") else {}
            if entry.get("message") == "rendition made with a caveat" and entry.get("photo") == str(photo):
                return entry
        return {}

    entry = wait_for(caveat, 10, what="the consumer to log the unused profile")
    assert str(entry["reason"]).startswith("colour profile not used, taken as sRGB")
    assert uuid.UUID(str(entry["photo"])) == photo
