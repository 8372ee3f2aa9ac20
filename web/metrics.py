"""``GET /metrics``: the web app's Prometheus metrics.

- Request counts and durations, by method and route template (never the raw
  path, so the number of series stays bounded). Under gunicorn every worker
  writes them to files in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's
  multiprocess mode, set up by ``gunicorn_conf.py``) and every worker's
  ``/metrics`` adds up all of them, so any worker gives the same answer.
- Photos by status and the watched queues' ready messages and consumers, read
  from Postgres and RabbitMQ when scraped (one ``GROUP BY`` and one passive
  declaration per queue). A backend that does not answer leaves its series
  out and sets ``photo_processor_scrape_backend_up{backend}`` to 0.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from photos import operations
from photos.messages import BrokerUnavailable
from web.resources import Resources

log = logging.getLogger("web")

# Route template of a request that matched no route (a 404, a 405).
UNMATCHED = "<unmatched>"


class BacklogCollector(Collector):
    """The series read from Postgres and RabbitMQ at each scrape."""

    def __init__(self, resources: Resources) -> None:
        self._resources = resources

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "photo_processor_scrape_backend_up",
            "1 when the backend answered this scrape, 0 when its series are missing from it",
            labels=["backend"],
        )
        try:
            counts = operations.status_counts(self._resources.session_factory)
        except SQLAlchemyError as exc:
            log.warning("metrics: the database does not answer", extra={"error": str(exc).splitlines()[0]})
            up.add_metric(["database"], 0)
        else:
            up.add_metric(["database"], 1)
            photos = GaugeMetricFamily("photo_processor_photos", "Photos by status", labels=["status"])
            for status, count in counts.items():
                photos.add_metric([status.value], count)
            yield photos
        watched = list(self._resources.topology.watched_queues.values())
        try:
            states = self._resources.queue_inspector.states(watched)
        except BrokerUnavailable as exc:
            log.warning("metrics: the broker does not answer", extra={"error": str(exc)})
            up.add_metric(["broker"], 0)
        else:
            up.add_metric(["broker"], 1)
            messages = GaugeMetricFamily(
                "photo_processor_queue_messages",
                "Messages ready in the work, retry and dead-letter queues",
                labels=["queue"],
            )
            consumers = GaugeMetricFamily(
                "photo_processor_queue_consumers", "Consumers of each watched queue", labels=["queue"]
            )
            for state in states:
                messages.add_metric([state.name], state.messages)
                consumers.add_metric([state.name], state.consumers)
            yield messages
            yield consumers
        yield up


class WebMetrics:
    """The app's registry and request metrics; ``multiprocess_dir`` set when
    several processes serve the app (gunicorn), None in a single process."""

    def __init__(self, resources: Resources, multiprocess_dir: Path | None) -> None:
        self.registry = CollectorRegistry()
        # In multiprocess mode the request metrics live in the directory's
        # files, which MultiProcessCollector adds up; they are in no registry.
        own = None if multiprocess_dir else self.registry
        self.requests = Counter(
            "photo_processor_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "endpoint", "status"],
            registry=own,
        )
        self.duration = Histogram(
            "photo_processor_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template",
            ["method", "endpoint"],
            registry=own,
        )
        if multiprocess_dir:
            MultiProcessCollector(self.registry, path=str(multiprocess_dir))  # type: ignore[no-untyped-call]
        self.registry.register(BacklogCollector(resources))

    def scrape(self) -> bytes:
        return generate_latest(self.registry)

    def observe(self, method: str, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(method, endpoint, str(status)).inc()
        self.duration.labels(method, endpoint).observe(seconds)


def init_app(app: Flask, resources: Resources, multiprocess_dir: Path | None) -> None:
    metrics = WebMetrics(resources, multiprocess_dir)
    app.extensions["metrics"] = metrics

    @app.before_request
    def start_timer() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    def count_request(response: Response) -> Response:
        started = g.pop("request_started", None)
        if started is not None:
            endpoint = request.url_rule.rule if request.url_rule is not None else UNMATCHED
            metrics.observe(request.method, endpoint, response.status_code, time.perf_counter() - started)
        return response

    @app.get("/metrics")
    def scrape() -> Response:
        """The web app's metrics, the same from every gunicorn worker.
        ---
        get:
          tags: [operations]
          summary: Prometheus metrics
          responses:
            200:
              description: Prometheus text format.
              content:
                text/plain:
                  schema: {type: string}
        """
        return Response(metrics.scrape(), content_type=CONTENT_TYPE_LATEST)
