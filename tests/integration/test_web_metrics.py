"""GET /metrics of the web app (in process; gunicorn's workers in
tests/e2e/test_prometheus.py)."""

from __future__ import annotations

import uuid

from flask.testing import FlaskClient

from photos import pipeline
from photos.config import Settings
from photos.db import SessionFactory
from tests.support.metrics import samples, value
from tests.support.services import Broker, unreachable_amqp_uri
from web import create_app


def scrape(client: FlaskClient) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=")
    return response.get_data(as_text=True)


def test_photos_by_status_and_queues_are_read_at_scrape_time(
    client: FlaskClient, session_factory: SessionFactory, settings: Settings, broker: Broker
) -> None:
    before = scrape(client)
    assert value(before, "photo_processor_photos", status="pending") == 0
    ids = pipeline.add_photos(session_factory, [f"http://127.0.0.1/{i}.jpg" for i in range(3)])
    client.post("/photos/process", json=[str(ids[0])])

    text = scrape(client)
    assert value(text, "photo_processor_photos", status="pending") == 3
    assert value(text, "photo_processor_photos", status="completed") == 0
    queue = settings.queue_name
    assert value(text, "photo_processor_queue_messages", queue=queue) == 1
    assert value(text, "photo_processor_queue_messages", queue=f"{queue}.delay") == 0
    assert value(text, "photo_processor_queue_messages", queue=f"{queue}.dead") == 0
    assert value(text, "photo_processor_queue_consumers", queue=queue) == 0
    with broker.channel() as channel:
        channel.basic_consume(queue, lambda *args: None)
        assert value(scrape(client), "photo_processor_queue_consumers", queue=queue) == 1
    assert value(text, "photo_processor_scrape_backend_up", backend="database") == 1
    assert value(text, "photo_processor_scrape_backend_up", backend="broker") == 1


def test_requests_are_counted_by_route_template_never_by_path(client: FlaskClient) -> None:
    for _ in range(3):
        client.get(f"/photos/{uuid.uuid4()}")
    client.get("/photos/pending")
    client.get("/no/such/path")
    client.post("/photos/pending")

    text = scrape(client)
    count = "photo_processor_http_requests_total"
    assert value(text, count, method="GET", endpoint="/photos/<uuid:photo_uuid>", status="404") == 3
    assert value(text, count, method="GET", endpoint="/photos/pending", status="200") == 1
    assert value(text, count, method="GET", endpoint="<unmatched>", status="404") == 1
    assert value(text, count, method="POST", endpoint="<unmatched>", status="405") == 1
    # No series names a raw path.
    assert not [key for key in samples(text) if any("no/such" in v for _, v in key[1])]
    duration = "photo_processor_http_request_duration_seconds"
    assert value(text, f"{duration}_count", method="GET", endpoint="/photos/<uuid:photo_uuid>") == 3
    assert value(text, f"{duration}_bucket", method="GET", endpoint="/photos/pending", le="+Inf") == 1
    took = value(text, f"{duration}_sum", method="GET", endpoint="/photos/pending")
    assert took is not None and took > 0


def test_a_backend_down_leaves_its_series_out_and_says_so(
    settings: Settings, session_factory: SessionFactory, broker: Broker
) -> None:
    app = create_app(settings.with_(amqp_uri=unreachable_amqp_uri()))
    try:
        text = scrape(app.test_client())
    finally:
        app.extensions["photos"].close()
    assert value(text, "photo_processor_scrape_backend_up", backend="broker") == 0
    assert value(text, "photo_processor_scrape_backend_up", backend="database") == 1
    assert value(text, "photo_processor_photos", status="pending") == 0
    assert "photo_processor_queue_messages{" not in text
