"""GET /photos/pending and POST /photos/process against real Postgres and RabbitMQ."""

from __future__ import annotations

import json
import uuid

import pytest
from flask.testing import FlaskClient

from photos import pipeline
from photos.db import SessionFactory, unit_of_work
from photos.models import Photo, PhotoStatus
from tests.support.services import Broker
from tests.support.uploads import drain


def add(factory: SessionFactory, n: int, status: PhotoStatus = PhotoStatus.pending) -> list[uuid.UUID]:
    ids = pipeline.add_photos(factory, [f"http://127.0.0.1/{i}.jpg" for i in range(n)])
    if status != PhotoStatus.pending:
        with unit_of_work(factory) as session:
            for photo in session.query(Photo).filter(Photo.uuid.in_(ids)):
                photo.status = status
    return ids


def test_pending_lists_only_pending_photos_as_records(
    client: FlaskClient, session_factory: SessionFactory
) -> None:
    pending = add(session_factory, 3)
    add(session_factory, 2, PhotoStatus.completed)
    response = client.get("/photos/pending")
    assert response.status_code == 200
    records = response.get_json()
    assert sorted(r["uuid"] for r in records) == sorted(str(u) for u in pending)
    assert set(records[0]) >= {"uuid", "url", "status", "created_at"}
    assert {r["status"] for r in records} == {"pending"}


def test_pending_pages_with_a_link_to_the_next(client: FlaskClient, session_factory: SessionFactory) -> None:
    ids = add(session_factory, 5)
    first = client.get("/photos/pending?limit=3")
    assert len(first.get_json()) == 3
    next_url = first.headers["Link"].split(";")[0].strip("<>")
    second = client.get(next_url)
    everything = client.get("/photos/pending").get_json()
    assert first.get_json() + second.get_json() == everything
    assert sorted(r["uuid"] for r in everything) == sorted(str(u) for u in ids)


@pytest.mark.parametrize("query", ["limit=0", "limit=abc", "limit=10001", "after=yesterday"])
def test_pending_rejects_bad_paging(client: FlaskClient, query: str) -> None:
    response = client.get(f"/photos/pending?{query}")
    assert response.status_code == 400
    assert "error" in response.get_json()


@pytest.mark.parametrize("wrap", [lambda ids: ids, lambda ids: {"uuids": ids}])
def test_process_queues_one_persistent_message_per_photo(
    client: FlaskClient, session_factory: SessionFactory, broker: Broker, wrap: object
) -> None:
    ids = add(session_factory, 3)
    body = wrap([str(u) for u in ids] + [str(ids[0])])  # type: ignore[operator]
    response = client.post("/photos/process", json=body)
    assert response.status_code == 202
    assert response.get_json() == {"queued": [str(u) for u in ids], "not_found": [], "not_eligible": []}
    assert sorted(m.photo_uuid for m in drain(broker)) == sorted(ids)


def test_process_reports_unknown_and_ineligible_photos(
    client: FlaskClient, session_factory: SessionFactory, broker: Broker
) -> None:
    [pending] = add(session_factory, 1)
    [done] = add(session_factory, 1, PhotoStatus.completed)
    [busy] = add(session_factory, 1, PhotoStatus.processing)
    [failed] = add(session_factory, 1, PhotoStatus.failed)
    unknown = uuid.uuid4()
    response = client.post("/photos/process", json=[str(u) for u in (pending, done, busy, failed, unknown)])
    assert response.status_code == 202
    assert response.get_json() == {
        "queued": [str(pending), str(failed)],
        "not_found": [str(unknown)],
        "not_eligible": [
            {"uuid": str(done), "status": "completed"},
            {"uuid": str(busy), "status": "processing"},
        ],
    }
    assert sorted(m.photo_uuid for m in drain(broker)) == sorted([pending, failed])


def test_process_with_nothing_eligible_answers_200_and_publishes_nothing(
    client: FlaskClient, broker: Broker
) -> None:
    response = client.post("/photos/process", json=[str(uuid.uuid4())])
    assert response.status_code == 200
    assert drain(broker) == []


def test_malformed_uuids_are_named_and_nothing_is_queued(
    client: FlaskClient, session_factory: SessionFactory, broker: Broker
) -> None:
    [good] = add(session_factory, 1)
    response = client.post("/photos/process", json=[str(good), "not-a-uuid", 42, None])
    assert response.status_code == 400
    assert response.get_json() == {"error": "malformed UUIDs", "invalid": ["not-a-uuid", 42, None]}
    assert drain(broker) == []
    with unit_of_work(session_factory) as session:
        assert session.get(Photo, good).status == PhotoStatus.pending  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "error"),
    [
        ("[]", "application/json", 400, "no UUIDs given"),
        ("{not json", "application/json", 400, "the body is not valid JSON"),
        ('"a-string"', "application/json", 400, "expected a JSON array"),
        ('{"ids": []}', "application/json", 400, "expected a JSON array"),
        ('{"uuids": "x"}', "application/json", 400, "expected a JSON array"),
        ("[]", "text/plain", 415, "Content-Type: application/json"),
        (json.dumps([str(uuid.uuid4()) for _ in range(10_001)]), "application/json", 400, "at most 10000"),
    ],
)
def test_process_rejects_bad_bodies_with_a_json_error(
    client: FlaskClient, body: str, content_type: str, status: int, error: str
) -> None:
    response = client.post("/photos/process", data=body, content_type=content_type)
    assert response.status_code == status
    assert error in response.get_json()["error"]


def test_wrong_method_and_unknown_path_answer_json(client: FlaskClient) -> None:
    assert client.get("/photos/process").status_code == 405
    assert client.get("/photos/process").get_json()["error"]
    assert client.post("/photos/pending").status_code == 405
    assert client.get("/nowhere").status_code == 404
    assert client.get("/nowhere").get_json()["error"]


def test_too_large_a_body_is_413(client: FlaskClient) -> None:
    limit = client.application.config["MAX_CONTENT_LENGTH"]
    response = client.post(
        "/photos/process", data=b"[" + b" " * limit + b"]", content_type="application/json"
    )
    assert response.status_code == 413
    assert response.get_json()["error"]
