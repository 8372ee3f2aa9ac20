"""The cost of metrics: a scrape of the web app's ``/metrics`` with 100,000
photos in the table, and what a consumer's metrics add to each photo.

The scrape is timed over real HTTP against gunicorn as ``make run`` starts it
(two workers sharing their request metrics through the multiprocess
directory), after requests to a few routes so that the request series exist.
Beside it, the same scrape's two reads on their own (the ``GROUP BY status``
and the queue declarations) show where its time goes. Wall time, median.

The per-photo cost is what the consumer does for metrics around one photo (four
stage timings, one outcome count, the in-flight gauge up and down, the bytes
counter), timed in a loop.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import requests
from sqlalchemy import text

from bench.report import Report
from bench.timing import median_ms, wall_seconds
from photos import db, operations, schema
from photos.config import Settings
from photos.metrics import Processed, ProcessingMetrics, Stage
from photos.queue import QueueInspector, Topology
from tests.support.services import (
    AMQP_URI,
    Broker,
    Process,
    answers_ok,
    closed_port,
    service_env,
    temporary_database,
    unique_queue,
)
from tests.support.wait import wait_for
from web.wsgi import gunicorn_command

PHOTOS = 100_000
SCRAPES = 30


def run(report: Report, rounds: int) -> None:
    report.section(f"Metrics: GET /metrics with {PHOTOS:,} photos, and per photo")
    with temporary_database() as uri, tempfile.TemporaryDirectory() as work:
        schema.upgrade(uri)
        engine = db.make_engine(uri)
        with engine.begin() as connection:
            # A quarter in each status.
            connection.execute(
                text(
                    "INSERT INTO photos (url, status) "
                    "SELECT 'https://photos.example/' || g || '.jpg', "
                    "(ARRAY['pending','completed','processing','failed'])[1 + g % 4]::photo_status "
                    "FROM generate_series(1, :n) AS g"
                ),
                {"n": PHOTOS},
            )
        with engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE photos"))
        factory = db.make_session_factory(engine)
        port = closed_port()
        settings = Settings(
            pg_uri=uri, amqp_uri=AMQP_URI, thumbs_dir=Path(work), queue_name=unique_queue(), port=port
        )
        topology = Topology(settings.queue_name)
        broker = Broker(AMQP_URI, topology)
        broker.declare()
        web = Process(
            gunicorn_command(f"127.0.0.1:{port}"),
            service_env(settings, PORT=str(port)),
            Path(work) / "web.log",
        ).start()
        base = f"http://127.0.0.1:{port}"
        inspector = QueueInspector(AMQP_URI)
        try:
            wait_for(lambda: answers_ok(base + "/readyz"), 60, what="gunicorn to answer")
            session = requests.Session()
            for path in ("/photos/pending?limit=10", "/photos/failures", "/healthz", "/stats", "/nothing"):
                for _ in range(5):
                    session.get(base + path, timeout=10)
            first = session.get(base + "/metrics", timeout=10)
            assert first.status_code == 200, first.text
            assert f'photo_processor_photos{{status="pending"}} {PHOTOS // 4}.0' in first.text
            repeat = max(SCRAPES, rounds * 2)
            scrape = median_ms(
                wall_seconds(lambda: session.get(base + "/metrics", timeout=10).raise_for_status(), repeat)
            )
            count = median_ms(wall_seconds(lambda: operations.status_counts(factory), repeat))
            queues = list(topology.watched_queues.values())
            depths = median_ms(wall_seconds(lambda: inspector.states(queues), repeat))
        finally:
            inspector.close()
            web.terminate()
            broker.delete()
            engine.dispose()
    report.figure("GET /metrics over HTTP (gunicorn, 2 workers), median", scrape, "ms")
    report.figure(f"  of which: photos by status ({PHOTOS:,} rows), median", count, "ms")
    report.figure("  of which: depths of the 3 watched queues, median", depths, "ms")
    report.goal(f"GET /metrics latency at {PHOTOS:,} photos", scrape, "≤", 100.0, kind="", unit="ms")
    _per_photo(report)


def _per_photo(report: Report) -> None:
    metrics = ProcessingMetrics()

    def one_photo() -> None:
        with metrics.in_flight.track_inprogress():
            for stage in Stage:
                with metrics.stage(stage):
                    pass
            metrics.downloaded_bytes.inc(100_000)
        metrics.count(Processed.completed)

    loops = 20_000
    start = time.perf_counter()
    for _ in range(loops):
        one_photo()
    per_photo_us = (time.perf_counter() - start) / loops * 1e6
    report.figure("consumer metrics per photo (4 stages, outcome, in-flight, bytes)", per_photo_us, "µs", 1)
    # A thumbnail of the smallest photo of the corpus takes milliseconds: 0.1 ms
    # is under a few per cent of it, below what the end-to-end runs can tell apart.
    report.goal("consumer metrics cost per photo", per_photo_us / 1000, "≤", 0.1, kind="", unit="ms")
