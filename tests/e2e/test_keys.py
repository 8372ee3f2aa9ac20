"""API keys on the real service (gunicorn, its two workers, and a consumer):
open, and saying so, with no key; closed to everything but the health checks
and the page as soon as a key exists, in every worker, at the next request."""

from __future__ import annotations

import pytest
import requests

from photos import keys
from photos.db import SessionFactory
from tests.e2e.conftest import RunningService
from tests.support.wait import wait_for

pytestmark = pytest.mark.slow

PROTECTED = [
    "/photos",
    "/stats",
    "/photos/failures",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/thumbs/ab/x.jpg",
]


def status(service: RunningService, path: str, **headers: str) -> int:
    return requests.get(service.url(path), headers=headers, timeout=10).status_code


def test_the_service_is_open_says_so_and_closes_with_the_first_key(
    running_service: RunningService, session_factory: SessionFactory
) -> None:
    wait_for(
        lambda: (
            "no API key is in force: anyone who can reach the service can use it" in running_service.web.log()
        ),
        10,
        what="the start-up warning",
    )
    assert {p: status(running_service, p) for p in PROTECTED if p != "/thumbs/ab/x.jpg"} == {
        p: 200 for p in PROTECTED if p != "/thumbs/ab/x.jpg"
    }
    page = requests.get(running_service.url("/"), timeout=10).text
    assert "anyone who can reach this page can use the service" in page

    key = keys.create_key(session_factory, "e2e")
    # Several requests: gunicorn's workers each answer some, none from a stale view.
    for _ in range(6):
        for path in PROTECTED:
            answer = requests.get(running_service.url(path), timeout=10)
            assert answer.status_code == 401, path
            assert answer.headers["WWW-Authenticate"].startswith("Bearer")
            assert answer.json()["error"].startswith("an API key is required")
        assert status(running_service, "/healthz") == 200
        assert status(running_service, "/readyz") == 200
        assert status(running_service, "/") == 200
        assert status(running_service, "/metrics", Authorization=f"Bearer {key}") == 200
        assert status(running_service, "/stats", **{"X-API-Key": key}) == 200
    scrape = requests.get(running_service.url("/metrics"), headers={"X-API-Key": key}, timeout=10).text
    assert 'photo_processor_http_requests_total{endpoint="/stats",method="GET",status="401"}' in scrape

    keys.revoke_key(session_factory, "e2e")
    assert status(running_service, "/stats") == 200  # no key in force: open again
