"""GET /healthz: what readiness checks poll."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from photos.config import Settings
from web import create_app


def test_healthy_when_the_database_answers(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


@pytest.fixture
def app_without_database(settings: Settings) -> Iterator[Flask]:
    # A port that was just free and is closed again: nothing listens there.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(settings.with_(pg_uri=f"postgresql://postgres@127.0.0.1:{port}/photos"))
    yield app
    app.extensions["photos"].close()


def test_unavailable_when_the_database_does_not_answer(app_without_database: Flask) -> None:
    response = app_without_database.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert "database" in body["error"]
