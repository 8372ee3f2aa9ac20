"""Whatever goes wrong inside, a client gets a JSON error, never a HTML page."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from photos.config import Settings
from photos.db import SessionFactory
from tests.support import images
from tests.support.services import Broker
from web import create_app


@pytest.fixture
def client_on_broken_disk(
    settings: Settings, session_factory: SessionFactory, broker: Broker, tmp_path: Path
) -> Iterator[FlaskClient]:
    """The thumbs 'directory' is a regular file: every write fails with OSError."""
    not_a_directory = tmp_path / "thumbs-file"
    not_a_directory.write_bytes(b"")
    app = create_app(settings.with_(thumbs_dir=not_a_directory))
    yield app.test_client()
    app.extensions["photos"].close()


def test_an_unexpected_error_is_a_json_500(client_on_broken_disk: FlaskClient) -> None:
    response = client_on_broken_disk.post(
        "/photos",
        data={"file": (io.BytesIO(images.jpeg(64, 64)), "x.jpg")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 500
    assert response.is_json
    assert response.get_json() == {"error": "internal error"}
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("TRACE", "/healthz", {"GET", "HEAD", "OPTIONS"}), ("PUT", "/photos/process", {"POST", "OPTIONS"})],
)
def test_a_method_a_route_does_not_take_is_a_json_405_naming_those_it_does(
    client: FlaskClient, method: str, path: str, allowed: set[str]
) -> None:
    response = client.open(path, method=method)
    assert response.status_code == 405
    assert response.is_json
    assert response.get_json() == {"error": "The method is not allowed for the requested URL."}
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == allowed
