"""GET /healthz (the process lives) and GET /readyz (its backends answer),
against real, refusing and hanging Postgres and RabbitMQ."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from photos.config import Settings
from tests.support.hanging_server import hanging_server
from tests.support.services import closed_port, unreachable_amqp_uri
from web import create_app

# The contract: both answer within a second whatever a backend does.
ANSWER_WITHIN = 1.0


MakeClient = Callable[..., FlaskClient]


@pytest.fixture
def make_app(settings: Settings) -> Iterator[MakeClient]:
    """Clients of apps built on the test's settings with some changed."""
    apps: list[Flask] = []

    def make(**changes: object) -> FlaskClient:
        app = create_app(settings.with_(**changes))
        apps.append(app)
        return app.test_client()

    yield make
    for app in apps:
        app.extensions["photos"].close()


def timed_get(client: FlaskClient, path: str) -> tuple[int, dict[str, Any], float]:
    start = time.monotonic()
    response = client.get(path)
    return response.status_code, response.get_json(), time.monotonic() - start


def test_alive_and_ready_when_everything_answers(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok", "storage": "ok", "imaging": "ok"},
    }


def test_not_ready_naming_the_database_that_refuses(make_app: MakeClient) -> None:
    client = make_app(pg_uri=f"postgresql://postgres@127.0.0.1:{closed_port()}/photos")
    status, body, _ = timed_get(client, "/readyz")
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["down"] == ["database"]
    checks = body["checks"]
    assert checks["broker"] == "ok"
    assert "Connection refused" in checks["database"]
    assert client.get("/healthz").status_code == 200


def test_not_ready_naming_the_broker_that_refuses(make_app: MakeClient) -> None:
    client = make_app(amqp_uri=unreachable_amqp_uri())
    status, body, _ = timed_get(client, "/readyz")
    assert status == 503
    assert body["down"] == ["broker"]
    assert body["error"] == "not ready: broker down"
    checks = body["checks"]
    assert checks["database"] == "ok"
    assert "RabbitMQ does not answer" in checks["broker"]


@pytest.mark.parametrize("hanging", [["database"], ["broker"], ["database", "broker"]])
def test_answers_within_a_second_while_a_backend_hangs(make_app: MakeClient, hanging: list[str]) -> None:
    with hanging_server() as port:
        changes: dict[str, str] = {}
        if "database" in hanging:
            changes["pg_uri"] = f"postgresql://postgres@127.0.0.1:{port}/photos"
        if "broker" in hanging:
            changes["amqp_uri"] = f"amqp://guest:guest@127.0.0.1:{port}/%2F"
        client = make_app(**changes)
        for _ in range(3):
            status, body, took = timed_get(client, "/readyz")
            assert status == 503
            assert body["down"] == hanging
            checks = body["checks"]
            for name in hanging:
                assert checks[name].startswith("no answer within")
            assert took < ANSWER_WITHIN
            status, body, took = timed_get(client, "/healthz")
            assert (status, body) == (200, {"status": "ok"})
            assert took < ANSWER_WITHIN
        # The hung checks were waited for again, not started once per request.
        running = [t for t in threading.enumerate() if t.name == "readiness-check"]
        assert len(running) <= len(hanging)
