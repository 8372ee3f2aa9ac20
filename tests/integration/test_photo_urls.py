"""POST /photos/urls: photos added by URL from the page (and any client),
against real Postgres."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from photos.db import SessionFactory, unit_of_work
from photos.models import Photo, PhotoStatus


def photos_in(factory: SessionFactory) -> list[Photo]:
    with unit_of_work(factory) as session:
        return list(session.scalars(select(Photo).order_by(Photo.created_at)))


def test_each_url_becomes_a_pending_photo_in_order(
    client: FlaskClient, session_factory: SessionFactory
) -> None:
    urls = ["http://photos.example/b.jpg", "https://photos.example/a.png", "http://photos.example/b.jpg"]
    response = client.post("/photos/urls", json={"urls": urls})
    assert response.status_code == 201
    uuids = response.get_json()["uuids"]
    assert len(uuids) == 3 and len(set(uuids)) == 3
    by_uuid = {str(p.uuid): p for p in photos_in(session_factory)}
    assert [by_uuid[u].url for u in uuids] == urls
    assert {p.status for p in by_uuid.values()} == {PhotoStatus.pending}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (["http://photos.example/a.jpg"], 'expected {"urls": ["http://...", ...]}'),
        ({"urls": "http://photos.example/a.jpg"}, 'expected {"urls": ["http://...", ...]}'),
        ({"urls": [], "process": True}, 'expected {"urls": ["http://...", ...]}'),
        ({"urls": []}, "no URLs given"),
        ({"urls": ["http://photos.example/a.jpg"] * 1001}, "at most 1000 URLs per request, got 1001"),
    ],
)
def test_a_body_of_another_shape_is_a_400_and_adds_nothing(
    client: FlaskClient, session_factory: SessionFactory, body: object, error: str
) -> None:
    response = client.post("/photos/urls", json=body)
    assert response.status_code == 400
    assert response.get_json() == {"error": error}
    assert photos_in(session_factory) == []


def test_urls_that_are_not_http_urls_are_named_and_none_is_added(
    client: FlaskClient, session_factory: SessionFactory
) -> None:
    response = client.post(
        "/photos/urls", json={"urls": ["http://photos.example/a.jpg", "ftp://x/b.jpg", "a\x00b", 3]}
    )
    assert response.status_code == 400
    body = response.get_json()
    assert body["invalid"] == ["ftp://x/b.jpg", "a\x00b", 3]
    assert body["error"].startswith("not http(s) URLs with a host")
    assert photos_in(session_factory) == []


def test_a_body_that_is_not_json_is_refused(client: FlaskClient, session_factory: SessionFactory) -> None:
    assert client.post("/photos/urls", data="http://x/a.jpg", content_type="text/plain").status_code == 415
    assert client.post("/photos/urls", data="{", content_type="application/json").status_code == 400
    assert photos_in(session_factory) == []
