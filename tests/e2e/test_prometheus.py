"""A real Prometheus (Debian's ``prometheus``) scrapes the running service,
gunicorn with an API key and a consumer, while it processes photos; its HTTP
API shows the values move. ``promtool`` checks the shipped configuration and
rules, and runs the rules' unit tests."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from photos import keys, pipeline
from photos.db import SessionFactory
from tests.e2e.conftest import RunningService, free_port
from tests.support import images
from tests.support.metrics import value
from tests.support.photo_host import PhotoHost, serve_bytes
from tests.support.services import ROOT, Process
from tests.support.wait import wait_for

DEPLOY = ROOT / "deploy" / "prometheus"
JPEG = images.jpeg(800, 600)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], check=False, capture_output=True, text=True, timeout=60)


def test_the_shipped_configuration_and_rules_pass_promtool() -> None:
    config = promtool("check", "config", str(DEPLOY / "prometheus.yml"))
    assert config.returncode == 0, config.stdout + config.stderr
    rules = promtool("check", "rules", str(DEPLOY / "alerts.yml"))
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "4 rules found" in rules.stdout
    tested = promtool("test", "rules", str(DEPLOY / "alerts_test.yml"))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_promtool_refuses_a_broken_rule(tmp_path: Path) -> None:
    """The check above can fail: a rule with a syntax error is refused."""
    broken = tmp_path / "broken.yml"
    broken.write_text(
        (DEPLOY / "alerts.yml").read_text().replace("> 0.2", "> > 0.2"),
    )
    assert promtool("check", "rules", str(broken)).returncode != 0


@dataclass
class Prometheus:
    url: str
    process: Process
    # The API key it scrapes the web app with.
    key: str

    def query(self, expr: str) -> float | None:
        """The single value of an instant query, None when it has no sample."""
        answer = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=5).json()
        assert answer["status"] == "success", answer
        result = answer["data"]["result"]
        if not result:
            return None
        assert len(result) == 1, result
        return float(result[0]["value"][1])

    def has(self, expr: str, expected: float) -> bool:
        return self.query(expr) == expected


@pytest.fixture
def prometheus(
    running_service: RunningService, session_factory: SessionFactory, tmp_path: Path
) -> Iterator[Prometheus]:
    """Prometheus on a free port, scraping the web app (with a key of its own)
    and the consumer every half second, evaluating the shipped rules."""
    key = keys.create_key(session_factory, "prometheus")
    consumer_target = running_service.consumer_metrics[0].removeprefix("http://").removesuffix("/metrics")
    config = {
        "global": {"scrape_interval": "500ms", "evaluation_interval": "500ms"},
        "rule_files": [str(DEPLOY / "alerts.yml")],
        "scrape_configs": [
            {
                "job_name": "photo-processor-web",
                "metrics_path": "/metrics",
                "authorization": {"type": "Bearer", "credentials": key},
                "static_configs": [{"targets": [f"127.0.0.1:{running_service.settings.port}"]}],
            },
            {
                "job_name": "photo-processor-consumer",
                "static_configs": [{"targets": [consumer_target]}],
            },
        ],
    }
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(json.dumps(config, indent=2))  # JSON is YAML
    checked = promtool("check", "config", str(config_file))
    assert checked.returncode == 0, checked.stdout + checked.stderr

    port = free_port()
    process = Process(
        [
            "prometheus",
            f"--config.file={config_file}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        {"PATH": "/usr/bin:/bin"},
        tmp_path / "prometheus.log",
    ).start()
    server = Prometheus(f"http://127.0.0.1:{port}", process, key)
    try:
        wait_for(lambda: _ready(server), 60, what="Prometheus to be ready")
        yield server
    finally:
        process.terminate(timeout=30)


def _ready(server: Prometheus) -> bool:
    assert server.process.alive(), server.process.log()
    try:
        return requests.get(f"{server.url}/-/ready", timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.mark.slow
def test_prometheus_scrapes_the_service_and_sees_the_values_move(
    running_service: RunningService,
    prometheus: Prometheus,
    session_factory: SessionFactory,
    photo_host: PhotoHost,
) -> None:
    service = running_service
    # The key is in force: the web app's /metrics wants it, the consumer's is its own.
    assert requests.get(service.url("/metrics"), timeout=5).status_code == 401
    urls = [photo_host.add(f"{i}.jpg", serve_bytes(JPEG)) for i in range(4)] + [photo_host.url("gone.jpg")]
    photos = pipeline.add_photos(session_factory, urls)

    both_up = 'count(up{job=~"photo-processor-(web|consumer)"} == 1)'
    wait_for(lambda: prometheus.has(both_up, 2), 30, what="both targets up")
    wait_for(lambda: prometheus.has('photo_processor_photos{status="pending"}', 5), 30, what="5 pending seen")
    assert prometheus.query('photo_processor_photos{status="completed"}') == 0
    assert prometheus.query('sum(photo_processor_processed_total{outcome="completed"})') == 0
    assert prometheus.query("sum(photo_processor_queue_consumers)") == 2  # work and dead-letter queues

    response = requests.post(
        service.url("/photos/process"),
        json=[str(p) for p in photos],
        headers={"Authorization": f"Bearer {prometheus.key}"},
        timeout=10,
    )
    assert response.status_code == 202, response.text

    checks = {
        'photo_processor_photos{status="completed"}': 4,
        'photo_processor_photos{status="failed"}': 1,
        'photo_processor_photos{status="pending"}': 0,
        'sum(photo_processor_processed_total{outcome="completed"})': 4,
        'sum(photo_processor_processed_total{outcome="failed"})': 1,
        'sum(photo_processor_stage_duration_seconds_count{stage="download"})': 5,
        'sum(photo_processor_stage_duration_seconds_count{stage="commit"})': 4,
        "sum(photo_processor_downloaded_bytes_total)": 4 * len(JPEG),
        "sum(photo_processor_in_flight)": 0,
        'sum(photo_processor_http_requests_total{endpoint="/photos/process",method="POST",status="202"})': 1,
        'sum(photo_processor_http_request_duration_seconds_count{endpoint="/photos/process"})': 1,
    }
    wait_for(
        lambda: {expr: prometheus.query(expr) for expr in checks} == checks,
        60,
        what=f"Prometheus to see {checks}",
    )
    # Its own scrapes, with the key, are counted too.
    scrapes = prometheus.query('sum(photo_processor_http_requests_total{endpoint="/metrics",status="200"})')
    assert scrapes is not None and scrapes > 0

    # The shipped rules are loaded and evaluate without error.
    rules = requests.get(f"{prometheus.url}/api/v1/rules", timeout=5).json()["data"]["groups"]
    loaded = {r["name"]: r["health"] for g in rules for r in g["rules"]}
    assert set(loaded) == {
        "PhotoConsumersGone",
        "PhotoBacklogGrowing",
        "PhotoFailureRatioHigh",
        "PhotoBacklogStuck",
    }
    wait_for(lambda: _rules_health(prometheus) == {"ok"}, 10, what="every rule evaluated")

    # The consumer's own answer agrees with what Prometheus stored.
    text = requests.get(service.consumer_metrics[0], timeout=5).text
    assert value(text, "photo_processor_processed_total", outcome="completed") == 4


def _rules_health(prometheus: Prometheus) -> set[str]:
    groups = requests.get(f"{prometheus.url}/api/v1/rules", timeout=5).json()["data"]["groups"]
    return {r["health"] for g in groups for r in g["rules"]}
