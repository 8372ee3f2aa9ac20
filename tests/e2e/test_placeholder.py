"""The page draws each photo's ThumbHash, blurred, while its thumbnail is on
the way, and offers the WebP and AVIF renditions through <picture>: Debian's
Chromium against the real service, the thumbnails held back by a proxy in
between until the test lets them through."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import pytest
import requests
from PIL import Image, ImageStat
from selenium import webdriver
from selenium.webdriver.remote.webdriver import WebDriver

from photos import pipeline
from photos.db import SessionFactory
from tests.e2e.conftest import RunningService
from tests.e2e.test_browser import browser, screenshot_dir, wait_until  # noqa: F401 (fixtures)
from tests.support import colours, images
from tests.support.http_server import serve, shut_down
from tests.support.photo_host import PhotoHost, serve_bytes

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HELD_FOR = 60.0
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}

# Each card's frame, its placeholder and its image, read in one go.
READ_FRAMES = """
return [...document.querySelectorAll("#photos li.card")].map((card) => {
  const frame = card.querySelector(".frame");
  const img = card.querySelector("img");
  return {
    uuid: card.dataset.uuid,
    placeholder: frame ? frame.dataset.placeholder || null : null,
    background: frame ? getComputedStyle(frame).backgroundImage : null,
    frameWidth: frame ? frame.clientWidth : 0,
    frameHeight: frame ? frame.clientHeight : 0,
    sources: [...card.querySelectorAll("picture source")].map((s) => s.type),
    img: img && {complete: img.complete, naturalWidth: img.naturalWidth, currentSrc: img.currentSrc},
  };
});
"""
# The placeholder as the browser decoded it: the average colour of its pixels.
PLACEHOLDER_AVERAGE = """
const done = arguments[arguments.length - 1];
const url = arguments[0].slice(5, -2);  // url("...")
const image = new Image();
image.onload = () => {
  const canvas = document.createElement("canvas");
  canvas.width = image.width; canvas.height = image.height;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  const pixels = context.getImageData(0, 0, image.width, image.height).data;
  const sum = [0, 0, 0];
  for (let i = 0; i < pixels.length; i += 4) for (let c = 0; c < 3; c++) sum[c] += pixels[i + c];
  done(sum.map((s) => s / (pixels.length / 4)));
};
image.onerror = () => done(null);
image.src = url;
"""


class HeldThumbs:
    """An HTTP proxy to the service that holds every /thumbs/ request until
    :meth:`release` (a slow network, for the thumbnails only)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.gate = threading.Event()
        self.held = 0
        self._lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> HeldThumbs:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/thumbs/"):
                    with proxy._lock:
                        proxy.held += 1
                    proxy.gate.wait(HELD_FOR)
                self._forward()

            def do_POST(self) -> None:
                self._forward()

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                answer = requests.request(
                    self.command,
                    proxy.upstream + self.path,
                    data=self.rfile.read(length) if length else None,
                    headers={
                        k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP | {"host"}
                    },
                    timeout=30,
                )
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in _HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = serve("127.0.0.1", Handler)
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def release(self) -> None:
        self.gate.set()

    def stop(self) -> None:
        self.gate.set()
        shut_down(self.server)


@pytest.fixture
def held_thumbs(running_service: RunningService) -> Iterator[HeldThumbs]:
    proxy = HeldThumbs(running_service.base_url).start()
    yield proxy
    proxy.stop()


def frames(driver: WebDriver) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], driver.execute_script(READ_FRAMES))


def test_the_page_draws_the_thumbhash_until_the_thumbnail_arrives(
    running_service: RunningService,
    session_factory: SessionFactory,
    photo_host: PhotoHost,
    held_thumbs: HeldThumbs,
    browser: webdriver.Chrome,  # noqa: F811
    screenshot_dir: Path,  # noqa: F811
) -> None:
    light = Image.linear_gradient("L").resize((1200, 800))
    scenes = {
        "patches.jpg": colours.scene(1600, 1200),
        "portrait.jpg": images.photo(900, 1400, seed=3),
        "sunset.jpg": Image.merge(
            "RGB",
            [
                light.point(lambda v: 255 - v // 3),
                light.point(lambda v: v // 2),
                Image.new("L", light.size, 90),
            ],
        ),
    }
    by_url = pipeline.add_photos(
        session_factory,
        [
            photo_host.add(name, serve_bytes(images.encode(im, "JPEG", quality=92)))
            for name, im in scenes.items()
        ],
    )
    # One more by upload, with its WebP and AVIF too.
    uploaded = requests.post(
        running_service.url("/photos"),
        json={
            "data": base64.b64encode(images.encode(colours.scene(1200, 900), "JPEG")).decode(),
            "renditions": ["fit-320", "fit-320-webp", "fit-320-avif"],
        },
        timeout=10,
    ).json()["uuid"]
    every = [*map(str, by_url), uploaded]

    browser.get(held_thumbs.url + "/")
    wait_until(browser, "four pending cards", lambda d: len(frames(d)) == 4)
    requests.post(running_service.url("/photos/process"), json=every, timeout=10).raise_for_status()

    def placeholders_drawn(driver: WebDriver) -> list[dict[str, Any]] | bool:
        current = frames(driver)
        drawn = [f for f in current if f["placeholder"] == "thumbhash"]
        return current if len(drawn) == 4 and held_thumbs.held >= 4 else False

    shown = {
        f["uuid"]: f for f in wait_until(browser, "every card to draw its placeholder", placeholders_drawn)
    }
    browser.save_screenshot(str(screenshot_dir / "placeholders.png"))
    for photo, frame in shown.items():
        assert frame["background"].startswith('url("data:image/png;base64,'), frame["background"][:60]
        assert not frame["img"]["complete"] or frame["img"]["naturalWidth"] == 0  # still held back
        record = requests.get(running_service.url(f"/photos/{photo}"), timeout=5).json()
        [fit] = [t for t in record["thumbnails"] if t["rendition"] == "fit-320"]
        # The frame already has the thumbnail's proportions.
        assert abs(frame["frameWidth"] / frame["frameHeight"] - fit["width"] / fit["height"]) < 0.03
        # The browser decoded the ThumbHash to the thumbnail's colours.
        average = browser.execute_async_script(PLACEHOLDER_AVERAGE, frame["background"])
        thumb = images.decode(requests.get(running_service.url(fit["url"]), timeout=5).content)
        expected = ImageStat.Stat(thumb.convert("RGB")).mean
        assert all(abs(a - b) <= 12 for a, b in zip(average, expected, strict=True)), (average, expected)
    assert shown[uploaded]["sources"] == ["image/avif", "image/webp"]
    assert all(shown[p]["sources"] == [] for p in map(str, by_url))

    held_thumbs.release()

    def loaded(driver: WebDriver) -> list[dict[str, Any]] | bool:
        current = frames(driver)
        done = all(
            f["img"]["complete"] and f["img"]["naturalWidth"] > 0 and not f["placeholder"] for f in current
        )
        return current if len(current) == 4 and done else False

    final = {f["uuid"]: f for f in wait_until(browser, "every thumbnail to replace its placeholder", loaded)}
    browser.save_screenshot(str(screenshot_dir / "loaded.png"))
    # Chromium reads AVIF: the upload shows its AVIF, the others their JPEG.
    assert final[uploaded]["img"]["currentSrc"].endswith("/fit-320-avif.avif")
    assert all(final[p]["img"]["currentSrc"].endswith("/fit-320.jpg") for p in map(str, by_url))
    assert all(f["background"] == "none" for f in final.values())
    console = browser.get_log("browser")  # type: ignore[no-untyped-call]  # unannotated in selenium
    assert [e for e in console if e["level"] == "SEVERE"] == []
