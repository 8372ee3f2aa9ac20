"""The service as ``make run`` runs it: gunicorn serving the web app and a
consumer, real subprocesses on the test's own database, queues and thumbs
directory."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from photos import db
from photos.config import Settings
from tests.support.services import Broker, Process, consumer, service_env
from tests.support.wait import wait_for
from web.wsgi import gunicorn_command

STARTUP_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningService:
    """gunicorn on ``base_url`` plus consumers, all on ``settings``."""

    settings: Settings
    broker: Broker
    log_dir: Path
    web: Process
    consumers: list[Process] = field(default_factory=list)
    # Where each consumer serves its /metrics (its METRICS_PORT).
    consumer_metrics: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"

    def url(self, path: str) -> str:
        return self.base_url + "/" + path.lstrip("/")

    def add_consumer(self) -> Process:
        """Start one more consumer and wait until it has subscribed: it logs
        "consuming" once RabbitMQ confirmed its subscriptions. (Counting the
        queue's consumers instead raced with a consumer just killed, which
        RabbitMQ may still count for a moment.)"""
        metrics_port = free_port()
        process = consumer(
            self.settings,
            self.log_dir / f"consumer-{len(self.consumer_metrics)}.log",
            METRICS_PORT=str(metrics_port),
        ).start()
        self.consumers.append(process)
        self.consumer_metrics.append(f"http://127.0.0.1:{metrics_port}/metrics")
        wait_for(
            lambda: self._check_alive() and '"message": "consuming"' in process.log(),
            STARTUP_TIMEOUT,
            what=f"consumer {process.pid} to subscribe to {self.settings.queue_name}",
        )
        return process

    def healthy(self) -> bool:
        try:
            return requests.get(self.url("/readyz"), timeout=5).status_code == 200
        except requests.RequestException:
            # Refused before gunicorn binds; a read timeout while its workers
            # still boot (the master accepts connections before they can answer).
            return False

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.log_path.name}\n{p.log()}" for p in (self.web, *self.consumers) if p.log_path.exists()
        )

    def stop(self) -> None:
        """SIGTERM to every process, as Ctrl-C on ``make run`` does; SIGKILL
        for one that does not stop within the grace period."""
        for process in (*self.consumers, self.web):
            if process.popen is None:
                continue
            try:
                process.terminate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()

    def _check_alive(self) -> bool:
        for process in (self.web, *self.consumers):
            if not process.alive():
                raise AssertionError(f"{process.args} exited early:\n{self.logs()}")
        return True


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test's report carries the logs of the service it ran."""
    report = yield
    service = getattr(item, "funcargs", {}).get("running_service")
    if report.failed and isinstance(service, RunningService):
        report.sections.append(("service logs", service.logs()))
    return report


@pytest.fixture
def running_service(
    settings: Settings, session_factory: db.SessionFactory, broker: Broker, tmp_path: Path
) -> Iterator[RunningService]:
    """gunicorn and one ``python -m consumer``, ready: /readyz answers 200 and
    RabbitMQ counts the consumer. Stopped with SIGTERM afterwards."""
    port = free_port()
    settings = settings.with_(port=port)
    log_dir = tmp_path / "service-logs"
    log_dir.mkdir()
    web = Process(
        gunicorn_command(f"127.0.0.1:{port}"),
        service_env(settings, PORT=str(port)),
        log_dir / "web.log",
    )
    service = RunningService(settings, broker, log_dir, web)
    try:
        web.start()
        wait_for(
            lambda: service._check_alive() and service.healthy(),
            STARTUP_TIMEOUT,
            what=f"gunicorn to answer /readyz on port {port}",
        )
        service.add_consumer()
        yield service
    finally:
        service.stop()
