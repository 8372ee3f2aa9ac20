"""The one consume loop of every consumer (the photo worker, the upscaler).

:class:`ConsumeLoop` owns everything about the broker; a worker supplies only
its handlers (:class:`Subscription`). What it guarantees:

- *The connection has one owner.* The thread that calls :meth:`ConsumeLoop.run`
  owns the pika connection and does nothing but broker I/O (deliveries,
  heartbeats, acks), so a slow download never costs the connection.
- *Work happens on worker threads.* Each delivery runs its subscription's
  handler on a thread of the subscription's lane (lanes do not wait on each
  other). The handler returns how to settle the message; the settlement runs on
  the connection's thread (``add_callback_threadsafe``). A handler that raises
  settles its message by returning it to the queue. At most ``prefetch``
  messages per subscription are in hand; a lane works on as many at a time as
  it has threads (``lane_threads``, else ``prefetch``), the others wait in
  hand, ready when a thread is free.
- *A lost connection is replaced.* When RabbitMQ goes away the loop reconnects
  with :class:`~photos.retry.Backoff` until it is told to stop; the messages
  in hand return to the queue by themselves. pika reports a close it learns of
  inside a callback (a settlement on a connection the broker has just closed)
  to that callback, and its next ``process_data_events`` then fails with
  ValueError: :func:`_pump` checks the connection first, so that is a
  reconnect, not a crash.
- *A stop drains.* SIGTERM (or :meth:`ConsumeLoop.stop`) cancels the
  subscriptions, returns the messages not started yet to the queue at once,
  lets the work in hand finish for up to ``grace`` seconds,
  settles it and closes. Work still running then is *abandoned*: ``on_abandon``
  runs, its messages return to the queue when the connection closes, and
  ``abandoned`` tells the process not to wait for its threads.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import FrameType

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPConnectionError, AMQPError
from pika.spec import Basic, BasicProperties

from photos.queue import close_quietly
from photos.retry import Backoff

# Seconds of broker I/O between two looks at the stop flag.
_TURN = 0.25


@dataclass(frozen=True)
class Delivery:
    """One message in hand. Settle it only on the connection's thread, that is
    inside the function a handler returns."""

    channel: BlockingChannel
    tag: int
    body: bytes
    properties: BasicProperties
    # RabbitMQ delivered it before, to a consumer whose channel closed without settling it.
    redelivered: bool = False

    def ack(self) -> None:
        self.channel.basic_ack(self.tag)

    def requeue(self) -> None:
        """Back to its queue, for another try (the delivery count goes up)."""
        self.channel.basic_nack(self.tag, requeue=True)


# Runs on the connection's thread: acks, nacks or publishes the outcome.
Settlement = Callable[[], None]
# Runs on a worker thread: does the work, returns how to settle the message.
Handler = Callable[[Delivery], Settlement]


@dataclass(frozen=True)
class Subscription:
    queue: str
    handler: Handler
    lane: str  # subscriptions of one lane share its threads


@dataclass
class ConsumeLoop:
    """Consumes ``subscriptions`` until stopped. ``declare`` declares the
    topology on each new channel; ``name`` names the connection in the
    management console (with the pid). ``finish_before_reconnecting``: after
    a lost connection, wait for the work in hand before consuming again, so
    that a redelivered message is never worked on twice at the same time."""

    name: str
    amqp_uri: str
    declare: Callable[[BlockingChannel], None]
    subscriptions: Sequence[Subscription]
    log: logging.Logger
    prefetch: int = 1
    lane_threads: Mapping[str, int] = field(default_factory=dict)
    grace: float = 30.0
    on_abandon: Callable[[], None] = lambda: None
    finish_before_reconnecting: bool = False
    abandoned: bool = field(default=False, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _connection: pika.BlockingConnection | None = field(default=None, init=False)
    _inflight: int = field(default=0, init=False)
    _idle: threading.Condition = field(default_factory=threading.Condition, init=False)
    _lanes: dict[str, ThreadPoolExecutor] = field(default_factory=dict, init=False)

    # --- lifecycle -----------------------------------------------------------

    def run(self) -> None:
        """Consume until stopped, reconnecting with backoff when the broker goes away."""
        for lane in dict.fromkeys(s.lane for s in self.subscriptions):
            threads = self.lane_threads.get(lane, self.prefetch)
            self._lanes[lane] = ThreadPoolExecutor(threads, thread_name_prefix=lane)
        backoff = Backoff()
        try:
            while not self._stop.is_set():
                try:
                    self._consume()
                    backoff.reset()
                except AMQPError as exc:
                    wait = backoff.next()
                    self.log.warning("broker connection lost", extra={"error": repr(exc), "retry_in": wait})
                    self._stop.wait(wait)
                finally:
                    self._close()
        finally:
            # Abandoned work is not waited for: its messages returned to the
            # queue when the connection closed.
            for pool in self._lanes.values():
                pool.shutdown(wait=not self.abandoned, cancel_futures=True)

    def stop(self) -> None:
        self._stop.set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True (at once) when the loop is told to stop."""
        return self._stop.wait(seconds)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def install_signal_handlers(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            self.log.info("stop requested", extra={"signal": signal.Signals(signum).name})
            self._stop.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    # --- one connection --------------------------------------------------------

    def _consume(self) -> None:
        if self.finish_before_reconnecting and self._busy():
            self.log.info("waiting for the message in hand before consuming again")
            self._wait_idle(None)
        connection = self._connect()
        channel = connection.channel()
        channel.confirm_delivery()
        self.declare(channel)
        channel.basic_qos(prefetch_count=self.prefetch)
        tags = [channel.basic_consume(s.queue, self._on_message(connection, s)) for s in self.subscriptions]
        self.log.info("consuming", extra={"queue": self.subscriptions[0].queue, "prefetch": self.prefetch})
        while not self._stop.is_set():
            _pump(connection, _TURN)
        self._drain(connection, channel, tags)

    def _drain(self, connection: pika.BlockingConnection, channel: BlockingChannel, tags: list[str]) -> None:
        """Stop taking messages, finish what is in hand, settle it."""
        for tag in tags:
            channel.basic_cancel(tag)
        deadline = time.monotonic() + self.grace
        while self._busy() and time.monotonic() < deadline:
            _pump(connection, 0.1)
        if self._busy():
            self.abandoned = True
            self.on_abandon()
            self.log.warning("stopping with a message in hand; it returns to the queue")
        else:
            _pump(connection, 0)  # the last settlements handed over

    def _connect(self) -> pika.BlockingConnection:
        params = pika.URLParameters(self.amqp_uri)
        params.heartbeat = 30
        params.connection_attempts = 1
        params.socket_timeout = 5
        # Names the connection in the management console and rabbitmqctl.
        params.client_properties = {"connection_name": f"{self.name} pid {os.getpid()}"}
        self._connection = pika.BlockingConnection(params)
        return self._connection

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        close_quietly(connection)

    # --- messages --------------------------------------------------------------

    def _on_message(
        self, connection: pika.BlockingConnection, subscription: Subscription
    ) -> Callable[[BlockingChannel, Basic.Deliver, BasicProperties, bytes], None]:
        def dispatch(
            channel: BlockingChannel, method: Basic.Deliver, props: BasicProperties, body: bytes
        ) -> None:
            assert method.delivery_tag is not None
            delivery = Delivery(channel, method.delivery_tag, body, props, bool(method.redelivered))
            with self._idle:
                self._inflight += 1
            self._lanes[subscription.lane].submit(self._work, connection, subscription.handler, delivery)

        return dispatch

    def _work(self, connection: pika.BlockingConnection, handler: Handler, delivery: Delivery) -> None:
        """On a worker thread: the handler, then its settlement handed to the connection's thread."""
        try:
            try:
                # A message that waited in hand for a thread and was not
                # started before the stop goes back for another consumer.
                settlement = delivery.requeue if self._stop.is_set() else handler(delivery)
            except Exception:
                self.log.exception("unexpected error handling a message; it returns to the queue")
                settlement = delivery.requeue
            try:
                connection.add_callback_threadsafe(lambda: self._settle(settlement))
            except AMQPError:
                # The connection is gone; the broker has already put the message
                # back, and its next delivery finds the outcome committed.
                self.log.warning("connection gone before the outcome was settled; the message will come back")
        finally:
            # Counted down here, not in the settlement: a connection lost
            # after queueing the callback never runs it, and a count waiting
            # for it would keep a stopping consumer for the whole grace.
            with self._idle:
                self._inflight -= 1
                self._idle.notify_all()

    def _settle(self, settlement: Settlement) -> None:
        try:
            settlement()
        except AMQPError as exc:
            self.log.warning("could not settle a message", extra={"error": repr(exc)})

    def _busy(self) -> bool:
        with self._idle:
            return self._inflight > 0

    def _wait_idle(self, timeout: float | None) -> None:
        with self._idle:
            self._idle.wait_for(lambda: self._inflight == 0, timeout)


def _pump(connection: pika.BlockingConnection, seconds: float) -> None:
    """Broker I/O for up to ``seconds``; AMQPError once the connection is gone,
    including when pika learned of the close inside a callback (see the module
    docstring)."""
    if not connection.is_open:
        raise AMQPConnectionError("the connection to RabbitMQ was closed")
    connection.process_data_events(time_limit=seconds)


def exit_leaving_abandoned_work() -> None:
    """End the process now, without joining the worker threads of abandoned
    work (the interpreter would wait for them): their messages have returned
    to the queue."""
    logging.shutdown()
    os._exit(0)
