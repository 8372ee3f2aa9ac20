"""``flask --app web photos|stats|dead-letters``, through Flask's CLI runner on
the test's app: real Postgres and RabbitMQ, and the real upscaling processor
making the dead letters."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pika
import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select, update

from consumer.upscaling import build_upscaling_worker
from photos import pipeline
from photos.config import Settings, UpscalingSettings
from photos.db import SessionFactory, unit_of_work
from photos.models import Photo, PhotoStatus
from photos.queue import UpscaleTopology
from tests.support.http_stub import closed_port_url
from tests.support.services import AMQP_URI, Broker, unreachable_amqp_uri
from tests.support.uploads import drain
from tests.support.wait import wait_for
from tests.support.worker_threads import WorkerThreads
from web import create_app


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


def statuses(factory: SessionFactory) -> dict[uuid.UUID, PhotoStatus]:
    with unit_of_work(factory) as session:
        return {p: s for p, s in session.execute(select(Photo.uuid, Photo.status))}


def fail(factory: SessionFactory, photos: list[uuid.UUID], reason: str) -> None:
    with unit_of_work(factory) as session:
        session.execute(
            update(Photo)
            .where(Photo.uuid.in_(photos))
            .values(status=PhotoStatus.failed, failure_reason=reason)
        )


# --- photos add ------------------------------------------------------------------


def test_add_prints_one_uuid_per_line(runner: FlaskCliRunner, session_factory: SessionFactory) -> None:
    urls = ["https://photos.example/a.jpg", "http://127.0.0.1:8000/b.png"]
    result = runner.invoke(args=["photos", "add", *urls])
    assert result.exit_code == 0, result.output
    printed = [uuid.UUID(line) for line in result.stdout.splitlines()]
    assert len(printed) == 2
    with unit_of_work(session_factory) as session:
        rows = {p: url for p, url in session.execute(select(Photo.uuid, Photo.url))}
    assert [rows[p] for p in printed] == urls
    assert set(statuses(session_factory).values()) == {PhotoStatus.pending}


@pytest.mark.parametrize("args", [[], ["ftp://photos.example/a.jpg"], ["https://ok.example/a.jpg", "nope"]])
def test_add_refuses_what_is_not_a_url_and_adds_nothing(
    runner: FlaskCliRunner, session_factory: SessionFactory, args: list[str]
) -> None:
    result = runner.invoke(args=["photos", "add", *args])
    assert result.exit_code == 2
    assert "Error" in result.output
    assert statuses(session_factory) == {}


# --- photos queue ----------------------------------------------------------------


def test_queue_takes_the_pending_photos_by_default(
    runner: FlaskCliRunner, session_factory: SessionFactory, broker: Broker
) -> None:
    pending = pipeline.add_photos(session_factory, [f"https://photos.example/{i}.jpg" for i in range(3)])
    failed = pipeline.add_photos(session_factory, ["https://photos.example/f.jpg"])
    fail(session_factory, failed, "not an image")
    result = runner.invoke(args=["photos", "queue"])
    assert (result.exit_code, result.stdout) == (0, "queued 3\n")
    assert {m.photo_uuid for m in drain(broker)} == set(pending)


def test_queue_failed_photos_of_one_reason(
    runner: FlaskCliRunner, session_factory: SessionFactory, broker: Broker
) -> None:
    timeouts = pipeline.add_photos(session_factory, ["https://a.example/1.jpg", "https://a.example/2.jpg"])
    others = pipeline.add_photos(session_factory, ["https://a.example/3.jpg"])
    fail(session_factory, timeouts, "the download timed out")
    fail(session_factory, others, "not an image")

    result = runner.invoke(
        args=["photos", "queue", "--status", "failed", "--reason", "the download timed out"]
    )
    assert (result.exit_code, result.stdout) == (0, "queued 2\n")
    assert {m.photo_uuid for m in drain(broker)} == set(timeouts)
    assert statuses(session_factory)[others[0]] == PhotoStatus.failed

    result = runner.invoke(args=["photos", "queue", "--status", "failed", "--reason", "no such reason"])
    assert (result.exit_code, result.stdout) == (0, "queued 0\n")
    result = runner.invoke(args=["photos", "queue", "--status", "failed"])
    assert (result.exit_code, result.stdout) == (0, "queued 1\n")


def test_queue_refuses_other_statuses(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["photos", "queue", "--status", "completed"])
    assert result.exit_code == 2
    assert "'completed' is not one of 'pending', 'failed'" in result.output


def test_queue_with_the_broker_down_exits_1_and_changes_nothing(
    settings: Settings, session_factory: SessionFactory, broker: Broker
) -> None:
    pending = pipeline.add_photos(session_factory, ["https://photos.example/a.jpg"])
    app = create_app(settings.with_(amqp_uri=unreachable_amqp_uri()))
    try:
        result = app.test_cli_runner().invoke(args=["photos", "queue"])
    finally:
        app.extensions["photos"].close()
    assert result.exit_code == 1
    assert "RabbitMQ is unavailable" in result.output
    assert statuses(session_factory) == {pending[0]: PhotoStatus.pending}
    assert broker.depth() == 0


# --- stats -----------------------------------------------------------------------


def test_stats_prints_counts_queues_and_consumers(
    runner: FlaskCliRunner, session_factory: SessionFactory, broker: Broker, settings: Settings
) -> None:
    photos = pipeline.add_photos(session_factory, [f"https://photos.example/{i}.jpg" for i in range(4)])
    fail(session_factory, photos[:1], "not an image")
    assert runner.invoke(args=["photos", "queue"]).stdout == "queued 3\n"
    with broker.channel() as channel:
        channel.basic_consume(settings.queue_name, lambda *args: None)
        result = runner.invoke(args=["stats"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "  pending              3" in lines
    assert "  failed               1" in lines
    assert "  completed            0" in lines
    queue = settings.queue_name
    work = next(line.split() for line in lines if line.split()[:2] == ["work", queue])
    assert work[3] == "1"  # consumers
    assert next(line.split() for line in lines if line.split()[:1] == ["dead"])[1] == f"{queue}.dead"
    assert lines[-1] == "consumers 1"


# --- the upscaler's dead letters ---------------------------------------------------


@pytest.fixture
def upscale_topology() -> Iterator[UpscaleTopology]:
    topology = UpscaleTopology(f"image-upscaling-test-{uuid.uuid4().hex[:10]}")
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URI))
    channel = connection.channel()
    topology.declare(channel)
    yield topology
    for queue in (topology.queue, topology.dead_queue):
        channel.queue_delete(queue)
    channel.exchange_delete(topology.dead_exchange)
    connection.close()


def depth(queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URI))
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.message_count)
    finally:
        connection.close()


def run_upscaler(topology: UpscaleTopology, bodies: list[bytes], dead: int) -> None:
    """The real upscaling processor, until ``dead`` letters wait on the dead
    queue and its work queue is empty, after ``bodies`` are published; it
    dead-letters at once a message it cannot carry out."""
    settings = UpscalingSettings(
        upscaler_url=closed_port_url(),
        upscaler_token="unused",
        image_service_url=closed_port_url(),
        amqp_uri=AMQP_URI,
        queue_name=topology.queue,
    )
    threads = WorkerThreads()
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URI))
    channel = connection.channel()
    try:
        threads.start(
            build_upscaling_worker(settings),
            ready=lambda: channel.queue_declare(topology.queue, passive=True).method.consumer_count == 1,
            what="the upscaler to consume",
        )
        for body in bodies:
            channel.basic_publish("", topology.queue, body, pika.BasicProperties(delivery_mode=2))
        wait_for(
            lambda: depth(topology.dead_queue) == dead and depth(topology.queue) == 0,
            20,
            what=f"{dead} dead letters",
        )
    finally:
        threads.stop_all()
        connection.close()


def test_dead_letters_are_listed_with_reasons_replayed_and_purged(
    runner: FlaskCliRunner, upscale_topology: UpscaleTopology
) -> None:
    not_json = b"\x00 not json"
    missing = json.dumps({"width": 10, "height": 10}).encode()
    run_upscaler(upscale_topology, [not_json, missing, not_json], dead=3)
    queue = ["--queue", upscale_topology.queue]

    listed = runner.invoke(args=["dead-letters", "list", *queue])
    assert listed.exit_code == 0, listed.output
    lines = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [line["reason"] for line in lines] == [
        "the message is not JSON",
        "missing field: image_data",
        "the message is not JSON",
    ]
    assert lines[1] == {
        "reason": "missing field: image_data",
        "step": "message",
        "attempts": 0,
        "bytes": len(missing),
        "width": 10,
        "height": 10,
    }
    assert "3 dead letters on" in listed.stderr
    # Listing takes nothing away, however often.
    assert runner.invoke(args=["dead-letters", "list", *queue, "--limit", "2"]).stdout.count("\n") == 2
    assert depth(upscale_topology.dead_queue) == 3

    replayed = runner.invoke(args=["dead-letters", "replay", *queue, "--limit", "2"])
    assert (replayed.exit_code, replayed.stdout) == (0, f"replayed 2 onto {upscale_topology.queue}\n")
    assert depth(upscale_topology.queue) == 2
    assert depth(upscale_topology.dead_queue) == 1

    refused = runner.invoke(args=["dead-letters", "purge", *queue], input="n\n")
    assert refused.exit_code == 1
    assert depth(upscale_topology.dead_queue) == 1
    purged = runner.invoke(args=["dead-letters", "purge", *queue, "--yes"])
    assert (purged.exit_code, purged.stdout) == (0, f"purged 1 from {upscale_topology.dead_queue}\n")
    assert depth(upscale_topology.dead_queue) == 0
    assert depth(upscale_topology.queue) == 2


def test_replayed_dead_letters_reach_the_upscaler_again(
    runner: FlaskCliRunner, upscale_topology: UpscaleTopology
) -> None:
    run_upscaler(upscale_topology, [b"\x00 not json"], dead=1)
    replayed = runner.invoke(args=["dead-letters", "replay", "--queue", upscale_topology.queue])
    assert replayed.stdout == f"replayed 1 onto {upscale_topology.queue}\n"
    assert (depth(upscale_topology.queue), depth(upscale_topology.dead_queue)) == (1, 0)
    # The upscaler takes it again (and, still not JSON, dead-letters it again).
    run_upscaler(upscale_topology, [], dead=1)
    listed = runner.invoke(args=["dead-letters", "list", "--queue", upscale_topology.queue])
    assert [json.loads(line)["reason"] for line in listed.stdout.splitlines()] == ["the message is not JSON"]
