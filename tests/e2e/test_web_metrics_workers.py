"""gunicorn's workers give one answer at /metrics: each counts its own
requests in the shared multiprocess directory, any of them adds up all."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import RunningService
from tests.support.metrics import value
from tests.support.wait import wait_for

REQUESTS = 40


def workers_of(master: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == master:
            children.append(int(stat.parent.name))
    return children


def has_counted(pid: int) -> bool:
    """The worker has its own counter file mapped: it answered requests."""
    return f"/counter_{pid}.db" in Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.slow
def test_every_worker_answers_for_all(running_service: RunningService) -> None:
    service = running_service
    wait_for(lambda: len(workers_of(service.web.pid)) == 2, 30, what="gunicorn's 2 workers")
    workers = workers_of(service.web.pid)
    # A new connection each: gunicorn's workers take turns accepting them.
    for _ in range(REQUESTS):
        assert requests.get(service.url("/photos/pending"), timeout=10).status_code == 200
    assert all(has_counted(pid) for pid in workers), "a worker answered none of the requests"

    seen = set()
    for _ in range(10):
        text = requests.get(service.url("/metrics"), timeout=10).text
        seen.add(
            value(
                text,
                "photo_processor_http_requests_total",
                method="GET",
                endpoint="/photos/pending",
                status="200",
            )
        )
    assert seen == {REQUESTS}
