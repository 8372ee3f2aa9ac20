"""``make run`` gives its consumers consecutive metrics ports from METRICS_PORT."""

from __future__ import annotations

import signal
import socket
import sys
from pathlib import Path

import pytest
import requests

from photos.config import Settings
from photos.db import SessionFactory
from tests.e2e.conftest import free_port
from tests.support.metrics import value
from tests.support.services import Broker, Process, service_env
from tests.support.wait import wait_for


def consecutive_free_ports(count: int) -> int:
    """The first of ``count`` consecutive ports nothing listens on (now)."""
    for _ in range(50):
        first = free_port()
        sockets = []
        try:
            for port in range(first, first + count):
                s = socket.socket()
                sockets.append(s)
                s.bind(("0.0.0.0", port))
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
        return first
    raise AssertionError("no consecutive free ports")


def serves_metrics(port: int) -> bool:
    try:
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except requests.RequestException:
        return False
    return value(text, "photo_processor_in_flight") == 0


@pytest.mark.slow
def test_each_consumer_of_make_run_serves_metrics_on_its_own_port(
    settings: Settings, session_factory: SessionFactory, broker: Broker, tmp_path: Path
) -> None:
    first = consecutive_free_ports(2)
    port = free_port()
    run = Process(
        [sys.executable, "scripts/run.py"],
        service_env(settings.with_(port=port), PORT=str(port), CONSUMERS="2", METRICS_PORT=str(first)),
        tmp_path / "make-run.log",
    ).start()
    try:
        wait_for(
            lambda: run.alive() and serves_metrics(first) and serves_metrics(first + 1),
            60,
            what=f"consumers' metrics on {first} and {first + 1}",
        )
    finally:
        if run.alive():
            run.popen.send_signal(signal.SIGINT)  # type: ignore[union-attr]
    assert run.popen is not None
    assert run.popen.wait(45) == 0, run.log()
