"""A consumer's Prometheus metrics, served on its own ``METRICS_PORT``.

Each consumer process has its own registry and its own port, so Prometheus
scrapes every consumer and adds them up (``sum(rate(...))``); a consumer that
is gone is a target that is down.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterator
from contextlib import contextmanager
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class Processed(enum.StrEnum):
    """What became of a photo message, as counted."""

    completed = "completed"
    failed = "failed"
    # Put on the delay queue to be tried again later.
    retried = "retried"


class Stage(enum.StrEnum):
    download = "download"
    render = "render"
    store = "store"
    commit = "commit"


# Seconds: a thumbnail renders in milliseconds, a slow photo host takes many.
STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class ProcessingMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.processed = Counter(
            "photo_processor_processed",
            "Photo messages handled, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        # Every series present (at 0) from the start, so rate() sees the first
        # photo; the children are looked up once, not per photo.
        self._processed = {outcome: self.processed.labels(outcome.value) for outcome in Processed}
        self.stage_seconds = Histogram(
            "photo_processor_stage_duration_seconds",
            "Time spent in each stage of processing a photo",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=self.registry,
        )
        self._stages = {stage: self.stage_seconds.labels(stage.value) for stage in Stage}
        self.downloaded_bytes = Counter(
            "photo_processor_downloaded_bytes",
            "Bytes of photos downloaded from their URLs",
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "photo_processor_in_flight", "Photos this consumer is processing now", registry=self.registry
        )

    @contextmanager
    def stage(self, stage: Stage) -> Iterator[None]:
        """Times the block as ``stage``, whether it returns or raises."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self._stages[stage].observe(time.perf_counter() - start)

    def count(self, outcome: Processed) -> None:
        self._processed[outcome].inc()

    def serve(self, port: int, addr: str = "0.0.0.0") -> MetricsServer:
        """``GET /metrics`` on ``port`` from a daemon thread, until closed."""
        server, thread = start_http_server(port, addr=addr, registry=self.registry)
        return MetricsServer(server, thread)


class MetricsServer:
    def __init__(self, server: WSGIServer, thread: Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
