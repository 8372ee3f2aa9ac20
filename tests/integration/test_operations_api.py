"""GET /photos/failures, POST /photos/retry and GET /stats against real
Postgres and RabbitMQ."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, text, update

from photos import operations, pipeline
from photos.config import Settings
from photos.db import SessionFactory, unit_of_work
from photos.models import Photo, PhotoStatus
from tests.support.services import Broker, unreachable_amqp_uri
from tests.support.uploads import drain
from web import create_app


def add_failed(
    factory: SessionFactory, n: int, reason: str | None, *, minutes_ago: float = 0
) -> list[uuid.UUID]:
    ids = pipeline.add_photos(factory, [f"http://127.0.0.1/{i}.jpg" for i in range(n)])
    with unit_of_work(factory) as session:
        session.execute(
            update(Photo)
            .where(Photo.uuid.in_(ids))
            .values(
                status=PhotoStatus.failed,
                failure_reason=reason,
                attempts=1,
                updated_at=func.now() - func.make_interval(0, 0, 0, 0, 0, 0, minutes_ago * 60),
            )
        )
    return ids


def statuses(factory: SessionFactory, ids: list[uuid.UUID]) -> dict[uuid.UUID, PhotoStatus]:
    with unit_of_work(factory) as session:
        rows = session.execute(select(Photo.uuid, Photo.status).where(Photo.uuid.in_(ids)))
        return {photo: status for photo, status in rows}


def queued_photos(broker: Broker) -> set[uuid.UUID]:
    return {message.photo_uuid for message in drain(broker)}


def test_failures_are_grouped_by_reason_most_frequent_first(
    client: FlaskClient, session_factory: SessionFactory
) -> None:
    add_failed(session_factory, 1, "the photo host answered HTTP 404", minutes_ago=1)
    add_failed(session_factory, 3, "not an image", minutes_ago=5)
    add_failed(session_factory, 1, None)
    add_failed(session_factory, 1, "the photo host answered HTTP 404", minutes_ago=30)
    pipeline.add_photos(session_factory, ["http://127.0.0.1/pending.jpg"])

    response = client.get("/photos/failures")

    assert response.status_code == 200
    groups = response.get_json()
    assert [(g["reason"], g["count"]) for g in groups] == [
        ("not an image", 3),
        ("the photo host answered HTTP 404", 2),
        ("no reason recorded", 1),
    ]
    last = {g["reason"]: datetime.fromisoformat(g["last_at"]) for g in groups}
    # The latest failure of each group.
    assert last["the photo host answered HTTP 404"] > last["not an image"]
    assert last["no reason recorded"] > last["the photo host answered HTTP 404"]


def test_failures_is_an_empty_list_when_nothing_failed(client: FlaskClient) -> None:
    assert client.get("/photos/failures").get_json() == []


def test_retry_everything_queues_every_failed_photo(
    client: FlaskClient, session_factory: SessionFactory, broker: Broker
) -> None:
    failed = add_failed(session_factory, 3, "not an image") + add_failed(session_factory, 2, "timeout")
    done = pipeline.add_photos(session_factory, ["http://127.0.0.1/done.jpg"])
    with unit_of_work(session_factory) as session:
        session.execute(update(Photo).where(Photo.uuid.in_(done)).values(status=PhotoStatus.completed))

    response = client.post("/photos/retry", json={})

    assert response.status_code == 202
    assert response.get_json() == {"queued": 5}
    assert set(statuses(session_factory, failed).values()) == {PhotoStatus.pending}
    assert statuses(session_factory, done) == {done[0]: PhotoStatus.completed}
    assert queued_photos(broker) == set(failed)
    assert client.get("/photos/failures").get_json() == []


def test_retry_one_reason_queues_only_those(
    client: FlaskClient, session_factory: SessionFactory, broker: Broker
) -> None:
    timeouts = add_failed(session_factory, 2, "the download timed out")
    others = add_failed(session_factory, 3, "not an image")
    unknown = add_failed(session_factory, 1, None)

    response = client.post("/photos/retry", json={"reason": "the download timed out"})
    assert (response.status_code, response.get_json()) == (202, {"queued": 2})
    assert queued_photos(broker) == set(timeouts)
    assert set(statuses(session_factory, others).values()) == {PhotoStatus.failed}

    # The group listed for photos without a reason can be retried too.
    response = client.post("/photos/retry", json={"reason": "no reason recorded"})
    assert (response.status_code, response.get_json()) == (202, {"queued": 1})
    assert queued_photos(broker) == set(unknown)


def test_retry_with_nothing_to_queue_answers_200(
    client: FlaskClient, session_factory: SessionFactory
) -> None:
    add_failed(session_factory, 1, "not an image")
    response = client.post("/photos/retry", json={"reason": "a reason nobody has"})
    assert (response.status_code, response.get_json()) == (200, {"queued": 0})


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'"everything"',
        b"null",
        b'{"reason": 3}',
        b'{"reason": ""}',
        b'{"reason": null}',
        b'{"reason": "x\\u0000"}',
        b'{"reasons": ["x"]}',
        b'{"reason": "x", "limit": 1}',
        b"{not json",
        b"",
    ],
)
def test_retry_refuses_any_other_body(
    client: FlaskClient, session_factory: SessionFactory, broker: Broker, body: bytes
) -> None:
    failed = add_failed(session_factory, 1, "x")
    response = client.post("/photos/retry", data=body, content_type="application/json")
    assert response.status_code == 400
    assert "expected {}" in response.get_json()["error"]
    assert statuses(session_factory, failed) == {failed[0]: PhotoStatus.failed}
    assert broker.depth() == 0


def test_retry_refuses_a_body_that_is_not_json(client: FlaskClient) -> None:
    response = client.post("/photos/retry", data="{}", content_type="text/plain")
    assert response.status_code == 400
    assert "error" in response.get_json()


def test_retry_while_the_broker_is_down_answers_503_and_changes_nothing(
    settings: Settings, session_factory: SessionFactory, broker: Broker
) -> None:
    failed = add_failed(session_factory, 3, "not an image")
    app = create_app(settings.with_(amqp_uri=unreachable_amqp_uri()))
    try:
        response = app.test_client().post("/photos/retry", json={})
    finally:
        app.extensions["photos"].close()
    assert response.status_code == 503
    assert "broker" in response.get_json()["error"]
    assert set(statuses(session_factory, failed).values()) == {PhotoStatus.failed}


def test_stats_counts_queues_consumers_and_throughput(
    client: FlaskClient, session_factory: SessionFactory, broker: Broker, settings: Settings
) -> None:
    add_failed(session_factory, 2, "not an image")
    pending = pipeline.add_photos(session_factory, [f"http://127.0.0.1/{i}.jpg" for i in range(4)])
    completed = pending[:3]
    with unit_of_work(session_factory) as session:
        session.execute(
            update(Photo)
            .where(Photo.uuid.in_(completed))
            .values(status=PhotoStatus.completed, updated_at=func.now(), completed_at=func.now())
        )
    client.post("/photos/process", json=[str(pending[3])])

    body = client.get("/stats").get_json()

    assert body["counts"] == {"pending": 1, "completed": 3, "processing": 0, "failed": 2}
    queue = settings.queue_name
    assert body["queues"] == [
        {"role": "work", "queue": queue, "messages": 1, "consumers": 0},
        {"role": "retry", "queue": f"{queue}.delay", "messages": 0, "consumers": 0},
        {"role": "dead", "queue": f"{queue}.dead", "messages": 0, "consumers": 0},
    ]
    assert body["consumers"] == 0
    assert body["broker_error"] is None
    minutes = body["throughput"]
    assert len(minutes) == 60
    starts = [datetime.fromisoformat(m["minute"]) for m in minutes]
    assert starts == sorted(starts)
    assert (starts[-1] - starts[0]).total_seconds() == 59 * 60
    assert sum(m["completed"] for m in minutes) == 3
    assert sum(m["failed"] for m in minutes) == 2


def test_stats_counts_consumers_of_the_work_queue(client: FlaskClient, broker: Broker) -> None:
    with broker.channel() as channel:
        channel.basic_consume(broker.topology.queue, lambda *args: None)
        body = client.get("/stats").get_json()
    assert body["consumers"] == 1
    assert body["queues"][0]["consumers"] == 1


def test_stats_without_the_broker_still_counts(
    settings: Settings, session_factory: SessionFactory, app: Flask
) -> None:
    add_failed(session_factory, 1, "x")
    down = create_app(settings.with_(amqp_uri=unreachable_amqp_uri()))
    try:
        body = down.test_client().get("/stats").get_json()
    finally:
        down.extensions["photos"].close()
    assert body["counts"]["failed"] == 1
    assert body["queues"] is None
    assert body["consumers"] is None
    assert "RabbitMQ does not answer" in body["broker_error"]


def test_retry_queues_more_failed_photos_than_one_batch(
    client: FlaskClient, session_factory: SessionFactory, broker: Broker
) -> None:
    many = operations.QUEUE_BATCH + 1
    with unit_of_work(session_factory) as session:
        session.execute(
            text(
                "INSERT INTO photos (url, status, failure_reason) "
                "SELECT 'http://127.0.0.1/' || g || '.jpg', 'failed', 'timeout' FROM generate_series(1, :n) g"
            ),
            {"n": many},
        )
    response = client.post("/photos/retry", json={"reason": "timeout"})
    assert (response.status_code, response.get_json()) == (202, {"queued": many})
    assert broker.depth() == many
    assert client.get("/photos/failures").get_json() == []
