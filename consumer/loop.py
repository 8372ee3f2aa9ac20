"""What the photo consumer and the upscaling processor share: a named broker
connection that keeps heartbeats and fails fast, a loop that reconnects with
backoff until told to stop, and SIGTERM or Ctrl-C as that stop."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType

import pika
from pika.exceptions import AMQPError

MAX_BACKOFF = 15.0


class ConsumeLoop:
    """Base of the two workers: ``_reconnecting(consume)`` runs ``consume``
    (which connects with ``_connect`` and returns when stopped) again after
    every lost connection, waiting 0.5 s doubling to ``MAX_BACKOFF``."""

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self._stop = threading.Event()
        self._connection: pika.BlockingConnection | None = None

    def install_signal_handlers(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            self._log.info("stop requested", extra={"signal": signal.Signals(signum).name})
            self._stop.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def stop(self) -> None:
        self._stop.set()

    def _connect(self, amqp_uri: str, name: str) -> pika.BlockingConnection:
        params = pika.URLParameters(amqp_uri)
        params.heartbeat = 30
        params.connection_attempts = 1
        params.socket_timeout = 5
        # Names the connection in the management console and rabbitmqctl.
        params.client_properties = {"connection_name": f"{name} pid {os.getpid()}"}
        self._connection = pika.BlockingConnection(params)
        return self._connection

    def _reconnecting(self, consume: Callable[[], None]) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                consume()
                backoff = 0.5
            except AMQPError as exc:
                self._log.warning("broker connection lost", extra={"error": repr(exc), "retry_in": backoff})
                self._stop.wait(backoff)
                backoff = min(MAX_BACKOFF, backoff * 2)
            finally:
                self._close()

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and connection.is_open:
            with contextlib.suppress(AMQPError):
                connection.close()
