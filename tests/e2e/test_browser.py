"""The page at ``/`` in Debian's Chromium, against the real service: a person
sees the pending photos, presses the button, and watches them end completed
(with their thumbnails) or failed (with the reason)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from photos import pipeline
from photos.db import SessionFactory, unit_of_work
from photos.models import Thumbnail
from tests.e2e.conftest import RunningService
from tests.support import images
from tests.support.photo_host import PhotoHost, serve_bytes

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
DEADLINE = 60.0

# The cards as the page shows them, read in one go: the page re-renders while
# it polls, so element handles kept across calls would go stale.
READ_CARDS = """
return [...document.querySelectorAll("#photos li.card")].map((card) => {
  const img = card.querySelector("img");
  const reason = card.querySelector(".reason");
  return {
    uuid: card.dataset.uuid,
    status: card.querySelector("[data-status]").dataset.status,
    text: card.innerText,
    img: img && {src: img.getAttribute("src"), complete: img.complete, naturalWidth: img.naturalWidth,
                 naturalHeight: img.naturalHeight, shownWidth: img.clientWidth, shownHeight: img.clientHeight},
    reason: reason && reason.innerText,
  };
});
"""


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,900",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(DEADLINE)
    yield driver
    driver.quit()


@pytest.fixture
def screenshot_dir(tmp_path: Path) -> Path:
    directory = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path / "screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def cards(driver: WebDriver) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], driver.execute_script(READ_CARDS))


def wait_until(driver: WebDriver, what: str, condition: Any) -> Any:
    return WebDriverWait(driver, DEADLINE, poll_frequency=0.2).until(
        condition, f"timed out waiting for {what}"
    )


def test_a_person_processes_the_pending_photos_from_the_page(
    running_service: RunningService,
    session_factory: SessionFactory,
    photo_host: PhotoHost,
    browser: webdriver.Chrome,
    screenshot_dir: Path,
) -> None:
    good = {
        "landscape.jpg": images.jpeg(1600, 1000),
        "portrait.jpg": images.jpeg(900, 1400),
        "rotated.jpg": images.jpeg(1200, 1600, orientation=6),
        "diagram.png": images.png(800, 600, mode="RGBA"),
    }
    urls = [photo_host.add(name, serve_bytes(data)) for name, data in good.items()]
    missing = photo_host.url("gone.jpg")  # the photo host answers 404
    ids = pipeline.add_photos(session_factory, [*urls, missing])
    failed_id = str(ids[-1])

    browser.get(running_service.url("/"))
    shown = wait_until(browser, "the five photos to be listed", lambda d: len(cards(d)) == 5 and cards(d))
    assert sorted(c["uuid"] for c in shown) == sorted(str(i) for i in ids)
    assert {c["status"] for c in shown} == {"pending"}
    assert all(c["img"] is None for c in shown)
    browser.save_screenshot(str(screenshot_dir / "1-pending.png"))

    button = browser.find_element(By.XPATH, "//button[normalize-space()='Process pending photos']")
    assert button.is_enabled()
    button.click()

    def finished(driver: WebDriver) -> list[dict[str, Any]] | bool:
        current = cards(driver)
        done = all(c["status"] in ("completed", "failed") for c in current)
        loaded = all(c["img"]["complete"] for c in current if c["img"])
        return current if len(current) == 5 and done and loaded else False

    final = {c["uuid"]: c for c in wait_until(browser, "every card to be completed or failed", finished)}
    browser.save_screenshot(str(screenshot_dir / "2-processed.png"))

    assert final[failed_id]["status"] == "failed"
    assert final[failed_id]["img"] is None
    assert "404" in final[failed_id]["reason"]
    with unit_of_work(session_factory) as session:
        rows = {str(t.photo_uuid): t for t in session.scalars(select(Thumbnail))}
    completed = [c for u, c in final.items() if u != failed_id]
    assert {c["status"] for c in completed} == {"completed"}
    for card in completed:
        row = rows[card["uuid"]]
        # The browser really decoded the file the row names, at its real size.
        assert card["img"]["src"] == f"/thumbs/{row.url}"
        assert (card["img"]["naturalWidth"], card["img"]["naturalHeight"]) == (row.width, row.height)
        assert f"{row.width}×{row.height}" in card["text"]
        # ...and shows it undistorted: the box on the page keeps its proportions.
        shown_w, shown_h = card["img"]["shownWidth"], card["img"]["shownHeight"]
        assert shown_w > 0 and shown_h > 0
        assert abs(shown_w / shown_h - row.width / row.height) < 0.02, (
            shown_w,
            shown_h,
            row.width,
            row.height,
        )
        served = requests.get(running_service.url(card["img"]["src"]), timeout=10)
        assert served.headers["Content-Type"].startswith("image/")

    counts = browser.find_element(By.ID, "counts").text
    assert "completed: 4" in counts and "failed: 1" in counts
    assert browser.find_element(By.ID, "message").text == "Queued 5 photos for processing."
    wait_until(
        browser,
        "the button to be disabled with nothing pending",
        lambda d: not d.find_element(By.ID, "process").is_enabled(),
    )
    # No console errors: no failed request (favicon included), no script error.
    console = browser.get_log("browser")  # type: ignore[no-untyped-call]  # unannotated in selenium
    errors = [e for e in console if e["level"] == "SEVERE"]
    assert errors == [], errors
