"""The page at ``/`` in Debian's Chromium, against the real service: a person
sees the pending photos, presses the button, and watches them end completed
(with their thumbnails) or failed (with the reason)."""

from __future__ import annotations

import os
import shutil
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

from photos import keys, pipeline
from photos.db import SessionFactory, unit_of_work
from photos.models import Thumbnail
from tests.e2e.conftest import RunningService
from tests.support import images
from tests.support.photo_host import PhotoHost, serve_bytes
from web import auth

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Debian's names first (.ci/run installs chromium and chromium-driver).
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
CHROMEDRIVER_NAMES = ("chromedriver",)
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


def on_path(names: tuple[str, ...]) -> str:
    """The first of ``names`` found on PATH; the test fails naming them otherwise."""
    for name in names:
        found = shutil.which(name)
        if found is not None:
            return found
    raise AssertionError(f"none of {', '.join(names)} is on PATH")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = on_path(CHROMIUM_NAMES)
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
    service = Service(
        executable_path=on_path(CHROMEDRIVER_NAMES), log_output=str(tmp_path / "chromedriver.log")
    )
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
        assert card["img"]["src"] == f"/thumbs/{row.key}"
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


# --- the operator's panels ---------------------------------------------------------

READ_OPERATOR = """
const figure = (q) => document.querySelector(`#backlog [data-queue="${q}"]`).innerText;
const chart = document.getElementById("throughput");
return {
  work: figure("work"), retry: figure("retry"), dead: figure("dead"),
  consumers: document.getElementById("consumers").innerText,
  completed: Number(chart.dataset.completed), failed: Number(chart.dataset.failed),
  bars: chart.querySelectorAll("rect").length,
  total: document.getElementById("throughput-total").innerText,
  failures: [...document.querySelectorAll("#failures li")].map((li) => ({
    reason: li.dataset.reason, text: li.innerText})),
  retryAll: document.getElementById("retry-all").hidden ? null : document.getElementById("retry-all").innerText,
  message: document.getElementById("message").innerText,
};
"""


def operator(driver: WebDriver) -> dict[str, Any]:
    return cast(dict[str, Any], driver.execute_script(READ_OPERATOR))


def severe_console_errors(driver: webdriver.Chrome, *expected: str) -> list[dict[str, Any]]:
    console = driver.get_log("browser")  # type: ignore[no-untyped-call]  # unannotated in selenium
    return [e for e in console if e["level"] == "SEVERE" and not any(x in e["message"] for x in expected)]


def statuses_of(driver: WebDriver) -> dict[str, str]:
    return {c["uuid"]: c["status"] for c in cards(driver)}


def test_an_operator_sees_the_backlog_retries_failures_and_adds_photos_from_the_page(
    running_service: RunningService,
    session_factory: SessionFactory,
    photo_host: PhotoHost,
    browser: webdriver.Chrome,
    screenshot_dir: Path,
    tmp_path: Path,
) -> None:
    good = photo_host.add("good.jpg", serve_bytes(images.jpeg(800, 600)))
    # Two photos the host does not have yet, and one that is not an image.
    late = [photo_host.url("late-1.jpg"), photo_host.url("late-2.jpg")]
    junk = photo_host.add("junk.jpg", serve_bytes(b"this is not a picture"))
    ids = [str(i) for i in pipeline.add_photos(session_factory, [good, *late, junk])]
    queued = requests.post(running_service.url("/photos/process"), json=ids, timeout=30)
    assert queued.status_code == 202

    browser.get(running_service.url("/"))
    assert (
        "anyone who can reach this page can use the service"
        in browser.find_element(By.ID, "open-banner").text
    )
    docs_link = browser.find_element(By.LINK_TEXT, "API documentation").get_attribute("href")
    assert docs_link == running_service.url("/docs")
    not_found = "the photo host answered HTTP 404"
    shown = wait_until(
        browser,
        "the failures grouped by reason, the most frequent first",
        lambda d: (o := operator(d))["failures"] and len(o["failures"]) == 2 and o["failed"] == 3 and o,
    )
    assert shown["failures"][0]["reason"] == not_found
    assert "2 photos, last" in shown["failures"][0]["text"]
    assert shown["failures"][1]["reason"].startswith("not an image")
    assert shown["retryAll"] == "Retry all failed (3)"
    assert shown["consumers"] == "1"
    assert (shown["work"], shown["retry"], shown["dead"]) == ("0", "0", "0")
    assert shown["completed"] == 1 and shown["bars"] >= 1
    assert shown["total"] == "1 photo completed, 3 failed"
    browser.save_screenshot(str(screenshot_dir / "3-failures.png"))

    # The host has the late photos now: retrying their group completes them.
    for url in late:
        photo_host.add(url.rsplit("/", 1)[1], serve_bytes(images.jpeg(640, 480)))
    browser.find_element(By.CSS_SELECTOR, f'#failures li[data-reason="{not_found}"] button').click()
    wait_until(
        browser,
        "the 404 group to be retried and completed",
        lambda d: (
            (o := operator(d))["completed"] == 3
            and [f["reason"] for f in o["failures"]] != [not_found]
            and len(o["failures"]) == 1
            and o
        ),
    )
    assert operator(browser)["failures"][0]["reason"].startswith("not an image")
    assert operator(browser)["message"] == f"Queued 2 photos that failed with “{not_found}” again."
    assert {statuses_of(browser)[i] for i in ids[1:3]} == {"completed"}

    # "Retry all failed" queues the last one again; it is still not an image.
    browser.find_element(By.ID, "retry-all").click()
    wait_until(
        browser,
        "retry all to be answered",
        lambda d: operator(d)["message"] == "Queued 1 photo that failed again.",
    )
    wait_until(
        browser,
        "the junk to fail again",
        lambda d: (
            statuses_of(d).get(ids[3]) == "failed" and operator(d)["retryAll"] == "Retry all failed (1)"
        ),
    )

    # Photos added by URL, and queued at once.
    extra = [
        photo_host.add(f"extra-{n}.png", serve_bytes(images.png(300 + n, 200), "image/png")) for n in range(2)
    ]
    browser.find_element(By.ID, "urls-input").send_keys("\n".join(extra))
    browser.find_element(By.CSS_SELECTOR, "#add-urls button[type=submit]").click()
    wait_until(
        browser,
        "the URLs to be added",
        lambda d: operator(d)["message"] == "Added 2 photos, 2 queued for processing.",
    )
    assert browser.find_element(By.ID, "urls-input").get_attribute("value") == ""

    # A photo uploaded from the disk, and queued.
    upload = tmp_path / "from-the-disk.jpg"
    upload.write_bytes(images.jpeg(1000, 750))
    browser.find_element(By.ID, "file-input").send_keys(str(upload))
    browser.find_element(By.CSS_SELECTOR, "#upload button[type=submit]").click()
    wait_until(
        browser,
        "the upload",
        lambda d: operator(d)["message"] == "Uploaded from-the-disk.jpg, queued for processing.",
    )

    def all_done(driver: WebDriver) -> dict[str, Any] | bool:
        current = cards(driver)
        done = len(current) == 7 and sum(c["status"] == "completed" for c in current) == 6
        loaded = all(c["img"]["complete"] for c in current if c["img"])
        o = operator(driver)
        return o if done and loaded and o["completed"] == 6 else False

    final = wait_until(browser, "the added and uploaded photos to be completed", all_done)
    # The chart counts each photo once, by its status now and when it last changed.
    assert final["total"] == "6 photos completed, 1 failed"
    added = [c for c in cards(browser) if c["uuid"] not in ids]
    assert len(added) == 3 and {c["status"] for c in added} == {"completed"}
    browser.save_screenshot(str(screenshot_dir / "4-operator.png"))
    assert severe_console_errors(browser) == []


def test_with_a_key_in_force_the_page_asks_for_it_and_signs_out(
    running_service: RunningService,
    session_factory: SessionFactory,
    browser: webdriver.Chrome,
    screenshot_dir: Path,
) -> None:
    key = keys.create_key(session_factory, "operator")
    pipeline.add_photos(session_factory, ["http://127.0.0.1:9/a.jpg"])

    browser.get(running_service.url("/"))
    form = browser.find_element(By.ID, "key-form")
    assert browser.find_elements(By.ID, "photos") == []  # no data without a key
    assert browser.find_elements(By.ID, "open-banner") == []
    form.find_element(By.ID, "key-input").send_keys("pp_not-the-key")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    error = wait_until(
        browser,
        "the wrong key to be refused",
        lambda d: d.find_element(By.ID, "key-error").is_displayed() and d.find_element(By.ID, "key-error"),
    )
    assert "the API key is not valid" in error.text
    browser.save_screenshot(str(screenshot_dir / "5-key-form.png"))

    key_input = browser.find_element(By.ID, "key-input")
    key_input.clear()
    key_input.send_keys(key)
    browser.find_element(By.CSS_SELECTOR, "#key-form button[type=submit]").click()
    wait_until(browser, "the page to show the photos", lambda d: len(cards(d)) == 1)
    assert browser.find_element(By.ID, "key-name").text == "operator"
    wait_until(browser, "the figures", lambda d: operator(d)["consumers"] == "1")
    [cookie] = browser.get_cookies()
    assert cookie["name"] == auth.COOKIE and cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert browser.execute_script("return document.cookie") == ""  # out of the scripts' reach
    browser.save_screenshot(str(screenshot_dir / "6-signed-in.png"))

    browser.find_element(By.ID, "sign-out").click()
    wait_until(browser, "the key form again", lambda d: d.find_elements(By.ID, "key-form"))
    assert browser.get_cookies() == []
    # Only the refused sign-in was an error (the browser logs its 401).
    assert severe_console_errors(browser, "/session - Failed to load resource") == []


def test_the_api_docs_render_without_a_cdn_or_a_csp_violation(
    running_service: RunningService, browser: webdriver.Chrome, screenshot_dir: Path
) -> None:
    browser.get(running_service.url("/docs"))
    blocks = wait_until(
        browser,
        "Swagger UI to list the operations",
        lambda d: (
            len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= 24
            and d.find_elements(By.CSS_SELECTOR, ".opblock")
        ),
    )
    summaries = {b.find_element(By.CSS_SELECTOR, ".opblock-summary-path").text for b in blocks}
    assert {"/photos/process", "/photos/retry", "/openapi.json"} <= {
        s.replace("\u200b", "") for s in summaries
    }
    browser.save_screenshot(str(screenshot_dir / "7-docs.png"))
    loaded = browser.execute_script("return performance.getEntriesByType('resource').map((e) => e.name)")
    assert loaded and all(url.startswith(running_service.base_url) for url in loaded), loaded
    assert severe_console_errors(browser) == []
