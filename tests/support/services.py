"""Real services for tests: a database of their own, queues of their own, and
the service's processes run as a user runs them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pika
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from photos.config import Settings
from photos.db import sqlalchemy_url
from photos.queue import Topology

ROOT = Path(__file__).resolve().parents[2]
ADMIN_PG_URI = os.environ.get("TEST_PG_ADMIN_URI", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_URI = os.environ.get("TEST_AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/%2F")


def close_connections(name: str) -> int:
    """rabbitmqctl close_connection for the connections a consumer named
    ``name`` (``<name> pid <pid>``, see consumer.loop); returns how many."""
    listed = subprocess.run(
        ["rabbitmqctl", "list_connections", "pid", "client_properties", "-q", "--no-table-headers"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    mine = [line.split("\t", 1)[0] for line in listed.splitlines() if f'"{name} pid ' in line]
    for pid in mine:
        subprocess.run(["rabbitmqctl", "close_connection", pid, "test"], capture_output=True, check=True)
    return len(mine)


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on: connections to it are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def answers_ok(url: str) -> bool:
    """Whether ``url`` answers 200 now (for polling a starting server)."""
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def unreachable_amqp_uri() -> str:
    """A broker address that refuses connections, for the broker-down paths."""
    return f"amqp://guest:guest@127.0.0.1:{closed_port()}/%2F"


@contextmanager
def temporary_database() -> Iterator[str]:
    """A new, empty database; dropped afterwards."""
    name = f"photos_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(sqlalchemy_url(ADMIN_PG_URI), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    uri = make_url(sqlalchemy_url(ADMIN_PG_URI)).set(database=name).render_as_string(hide_password=False)
    try:
        yield uri
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def unique_queue() -> str:
    return f"photo-processor-test-{uuid.uuid4().hex[:10]}"


@dataclass
class Broker:
    """Looks at and cleans up the test's own queues."""

    amqp_uri: str
    topology: Topology

    @contextmanager
    def channel(self) -> Iterator[pika.adapters.blocking_connection.BlockingChannel]:
        connection = pika.BlockingConnection(pika.URLParameters(self.amqp_uri))
        try:
            yield connection.channel()
        finally:
            if connection.is_open:
                connection.close()

    def depth(self, queue: str | None = None) -> int:
        with self.channel() as channel:
            result = channel.queue_declare(queue or self.topology.queue, passive=True)
            return int(result.method.message_count)

    def consumers(self, queue: str | None = None) -> int:
        with self.channel() as channel:
            result = channel.queue_declare(queue or self.topology.queue, passive=True)
            return int(result.method.consumer_count)

    def total_depth(self) -> int:
        """Messages ready in the work, delay and dead queues (not the unacked)."""
        t = self.topology
        return sum(self.depth(q) for q in (t.queue, t.delay_queue, t.dead_queue))

    def declare(self) -> None:
        with self.channel() as channel:
            self.topology.declare(channel)

    def delete(self) -> None:
        with self.channel() as channel:
            t = self.topology
            for queue in (t.queue, t.delay_queue, t.dead_queue, t.query_queue):
                channel.queue_delete(queue)
            channel.exchange_delete(self.topology.dead_exchange)


def service_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment the real processes read their settings from."""
    env = dict(os.environ)
    # A metrics port is given to a process explicitly (one port, one process).
    env.pop("METRICS_PORT", None)
    env.update(
        PYTHONPATH=str(ROOT),
        PG_CONNECTION_URI=settings.pg_uri,
        AMQP_URI=settings.amqp_uri,
        THUMBS_DIR=str(settings.thumbs_dir),
        PORT=str(settings.port),
        QUEUE_NAME=settings.queue_name,
        ALLOWED_FETCH_HOSTS=",".join(sorted(settings.allowed_fetch_hosts)),
        LEASE_SECONDS=str(settings.lease_seconds),
        RETRY_BASE_DELAY=str(settings.retry_base_delay),
        MAX_ATTEMPTS=str(settings.max_attempts),
        FETCH_TOTAL_TIMEOUT=str(settings.fetch_total_timeout),
        FETCH_MAX_BYTES=str(settings.fetch_max_bytes),
    )
    for name in (
        "STORAGE_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ):
        env.pop(name, None)
    if settings.storage is not None:
        s3 = settings.s3
        env["STORAGE_URL"] = f"s3://{settings.storage.bucket}/{settings.storage.prefix}"
        for name, value in (
            ("AWS_ENDPOINT_URL_S3", s3.endpoint_url),
            ("AWS_DEFAULT_REGION", s3.region),
            ("AWS_ACCESS_KEY_ID", s3.access_key_id),
            ("AWS_SECRET_ACCESS_KEY", s3.secret_access_key),
        ):
            if value is not None:
                env[name] = value
    env.update(extra)
    return env


@dataclass
class Process:
    """A service process started by a test; its output goes to a log file."""

    args: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> Process:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(self.args, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        assert self.popen is not None
        self.popen.kill()
        self.popen.wait()

    def terminate(self, timeout: float = 30.0) -> int:
        assert self.popen is not None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def consumer(settings: Settings, log_path: Path, **extra: str) -> Process:
    return Process([sys.executable, "-m", "consumer"], service_env(settings, **extra), log_path)
