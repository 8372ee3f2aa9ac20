"""API latency on a big table: ``GET /photos/pending`` with 100,000 pending
photos and ``POST /photos/process`` with 10,000 UUIDs.

A database and queues of the benchmark's own (dropped afterwards); the Flask
app is called in process through its test client, so the figures are the
app's, Postgres' and RabbitMQ's time without an HTTP server in front. Wall
time, median of several requests (these goals are latencies, not ratios).
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from flask.testing import FlaskClient
from sqlalchemy import text

from bench.report import Report
from bench.timing import wall_seconds
from photos import db, schema
from photos.config import Settings
from photos.queue import Topology
from tests.support.services import AMQP_URI, Broker, temporary_database, unique_queue
from web import create_app

PHOTOS = 100_000
QUEUED = 10_000


def run(report: Report, rounds: int) -> None:
    report.section(f"API latency with {PHOTOS:,} photos in the table")
    with temporary_database() as uri, tempfile.TemporaryDirectory() as thumbs:
        schema.upgrade(uri)
        engine = db.make_engine(uri)
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO photos (url, created_at) "
                    "SELECT 'https://photos.example/' || g || '.jpg', "
                    "now() - make_interval(secs => :n - g) FROM generate_series(1, :n) AS g"
                ),
                {"n": PHOTOS},
            )
        with engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE photos"))
            uuids = [
                str(u)
                for u in connection.execute(
                    text("SELECT uuid FROM photos ORDER BY random() LIMIT :n"), {"n": QUEUED}
                ).scalars()
            ]
        engine.dispose()
        settings = Settings(pg_uri=uri, amqp_uri=AMQP_URI, thumbs_dir=Path(thumbs), queue_name=unique_queue())
        broker = Broker(AMQP_URI, Topology(settings.queue_name))
        app = create_app(settings)
        try:
            _measure(report, app.test_client(), broker, uuids, max(3, rounds // 3))
        finally:
            app.extensions["photos"].close()
            broker.delete()


def _measure(report: Report, client: FlaskClient, broker: Broker, uuids: list[str], repeat: int) -> None:
    def get(url: str) -> list[object]:
        response = client.get(url)
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        assert isinstance(body, list)
        return body

    first = client.get("/photos/pending")
    assert first.status_code == 200 and len(first.get_json()) == 1000
    # Follow the Link header half way through the table for a keyset page deep in it.
    url = "/photos/pending"
    for _ in range(PHOTOS // 1000 // 2):
        response = client.get(url)
        url = response.headers["Link"].split(">")[0].lstrip("<")
    middle = url

    first_page = wall_seconds(lambda: get("/photos/pending"), repeat)
    middle_page = wall_seconds(lambda: get(middle), repeat)
    report.figure("GET /photos/pending (first 1,000), median", statistics.median(first_page) * 1000, "ms")
    report.figure(
        "GET /photos/pending?after=… (page 50), median", statistics.median(middle_page) * 1000, "ms"
    )
    report.goal(
        "GET /photos/pending latency",
        max(statistics.median(first_page), statistics.median(middle_page)),
        "≤",
        1.0,
        kind="",
        unit="s",
    )

    def process() -> None:
        response = client.post("/photos/process", json=uuids)
        assert response.status_code == 202, response.get_data(as_text=True)
        assert len(response.get_json()["queued"]) == len(uuids)

    posted: list[float] = []
    for _ in range(repeat):
        posted += wall_seconds(process, 1)
        with broker.channel() as channel:
            channel.queue_purge(broker.topology.queue)
    report.figure(
        f"POST /photos/process with {len(uuids):,} UUIDs, median", statistics.median(posted) * 1000, "ms"
    )
    report.goal("POST /photos/process latency", statistics.median(posted), "≤", 1.0, kind="", unit="s")
