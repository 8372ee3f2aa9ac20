"""RabbitMQ: the whole topology and confirmed publishing (the messages and
their wire format are in :mod:`photos.messages`).

No other module declares queues. For a work queue named ``Q``:

- ``Q``: a quorum queue (replicated, durable, with a delivery limit). A message
  returned to it more than ``DELIVERY_LIMIT`` times (its consumers keep dying)
  is dead-lettered instead of looping for ever.
- ``Q.delay``: where retries wait. Each message carries its own expiration; when
  it expires it is dead-lettered back to ``Q``.
- ``Q.dead`` (through exchange ``Q.dlx``): messages that exhausted the delivery
  limit; the consumer marks their photos ``failed``.
- ``Q.query``: synchronous queries (``POST /query``), a durable classic queue.
  Each request carries its reply-to, correlation id and an expiration equal to
  the asker's timeout, so a request nobody answered in time is dropped rather
  than answered to no one. Its wire format is in :mod:`photos.rpc`.

The upscaling processor has a topology of its own, :class:`UpscaleTopology`.

Dead-lettering is ``at-least-once`` so a message moving between queues is never
dropped on the way.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pika
import pika.frame
from pika.adapters.blocking_connection import BlockingChannel
from pika.channel import Channel
from pika.exceptions import AMQPError, ChannelClosedByBroker
from pika.spec import Basic

from photos.messages import BrokerUnavailable, PhotoMessage

DELIVERY_LIMIT = 5
CONTENT_TYPE = "application/json"


def close_quietly(connection: pika.BlockingConnection | None) -> None:
    """Close ``connection`` if it is open; a broker that has already gone is no error."""
    if connection is not None and connection.is_open:
        with contextlib.suppress(AMQPError):
            connection.close()


def _dead_lettering_quorum(exchange: str, routing_key: str) -> dict[str, Any]:
    """Arguments of a quorum queue that dead-letters to ``exchange`` with
    ``routing_key``, never dropping a message on the way, and refuses
    publishes (so the publisher sees a nack) when full."""
    return {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": exchange,
        "x-dead-letter-routing-key": routing_key,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


@dataclass(frozen=True)
class _DeadLetteredQueue:
    """A quorum work queue ``Q`` whose messages go to ``Q.dead`` (through
    exchange ``Q.dlx``) when rejected or delivered ``DELIVERY_LIMIT`` times."""

    queue: str

    @property
    def dead_exchange(self) -> str:
        return f"{self.queue}.dlx"

    @property
    def dead_queue(self) -> str:
        return f"{self.queue}.dead"

    def _declare_work_queue(self, channel: BlockingChannel) -> None:
        channel.exchange_declare(self.dead_exchange, exchange_type="direct", durable=True)
        channel.queue_declare(self.dead_queue, durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_bind(self.dead_queue, self.dead_exchange, routing_key=self.queue)
        channel.queue_declare(
            self.queue,
            durable=True,
            arguments={
                **_dead_lettering_quorum(self.dead_exchange, self.queue),
                "x-delivery-limit": DELIVERY_LIMIT,
            },
        )


@dataclass(frozen=True)
class Topology(_DeadLetteredQueue):
    @property
    def delay_queue(self) -> str:
        return f"{self.queue}.delay"

    @property
    def query_queue(self) -> str:
        return f"{self.queue}.query"

    @property
    def watched_queues(self) -> dict[str, str]:
        """What operators watch, by role: the work, retry and dead-letter queues."""
        return {"work": self.queue, "retry": self.delay_queue, "dead": self.dead_queue}

    def declare(self, channel: BlockingChannel) -> None:
        """Idempotent; every process declares before it publishes or consumes."""
        channel.queue_declare(self.query_queue, durable=True)
        self._declare_work_queue(channel)
        channel.queue_declare(
            self.delay_queue,
            durable=True,
            # The default exchange: an expired message goes straight back to the work queue.
            arguments=_dead_lettering_quorum("", self.queue),
        )


@dataclass(frozen=True)
class UpscaleTopology(_DeadLetteredQueue):
    """The upscaling processor's queues: ``Q``, a quorum queue of upscale
    requests whose messages go to ``Q.dead`` (through exchange ``Q.dlx``) when
    the processor gives up on them, with the reason in their headers, or when
    consumers died holding them ``DELIVERY_LIMIT`` times."""

    def declare(self, channel: BlockingChannel) -> None:
        """Idempotent; declared before publishing or consuming."""
        self._declare_work_queue(channel)


def ping(amqp_uri: str, timeout: float = 5.0) -> None:
    """Returns when RabbitMQ accepts a connection (and closes it); raises
    BrokerUnavailable otherwise, after at most about ``timeout`` seconds."""
    params = pika.URLParameters(amqp_uri)
    params.connection_attempts = 1
    params.socket_timeout = timeout
    params.stack_timeout = timeout
    params.client_properties = {"connection_name": "readiness check"}
    try:
        connection = pika.BlockingConnection(params)
    except AMQPError as exc:
        raise BrokerUnavailable(f"RabbitMQ does not answer: {_amqp_error(exc)}") from None
    close_quietly(connection)


@dataclass(frozen=True)
class QueueState:
    name: str
    messages: int  # ready, not counting those delivered and not yet acked
    consumers: int


class QueueInspector:
    """Ready messages and consumers of queues, read by passive declarations
    over one connection kept between calls; thread-safe. A queue that does not
    exist (yet) has no messages and no consumers.

    The connection has no heartbeats (nothing reads it between calls, and the
    broker would close it); TCP keepalive finds a dead peer, and a connection
    found broken on use is replaced once before BrokerUnavailable is raised.
    """

    def __init__(self, amqp_uri: str, timeout: float = 5.0) -> None:
        self._amqp_uri = amqp_uri
        self._timeout = timeout
        self._lock = threading.Lock()
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None

    def states(self, queues: Sequence[str]) -> list[QueueState]:
        with self._lock:
            try:
                return [self._state(q) for q in queues]
            except AMQPError:
                self._close()
            try:
                return [self._state(q) for q in queues]
            except AMQPError as exc:
                self._close()
                raise BrokerUnavailable(f"RabbitMQ does not answer: {_amqp_error(exc)}") from None

    def _state(self, queue: str) -> QueueState:
        try:
            declared = self._open_channel().queue_declare(queue, passive=True)
        except ChannelClosedByBroker as exc:
            self._channel = None
            if exc.reply_code == 404:  # NOT_FOUND
                return QueueState(queue, 0, 0)
            raise
        return QueueState(queue, int(declared.method.message_count), int(declared.method.consumer_count))

    def _open_channel(self) -> BlockingChannel:
        if self._connection is None or not self._connection.is_open:
            params = pika.URLParameters(self._amqp_uri)
            params.connection_attempts = 1
            params.socket_timeout = self._timeout
            params.stack_timeout = self._timeout
            params.blocked_connection_timeout = self._timeout
            params.heartbeat = 0
            params.tcp_options = {"TCP_KEEPIDLE": 60, "TCP_KEEPINTVL": 10, "TCP_KEEPCNT": 3}
            params.client_properties = {"connection_name": "queue inspector"}
            self._connection = pika.BlockingConnection(params)
            self._channel = None
        if self._channel is None or not self._channel.is_open:
            self._channel = self._connection.channel()
        return self._channel

    def _close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        close_quietly(connection)

    def close(self) -> None:
        with self._lock:
            self._close()


def _amqp_error(exc: AMQPError) -> str:
    # pika wraps the cause in connection-workflow errors that print as tuples.
    cause = exc
    while cause.args and isinstance(cause.args[-1], BaseException):
        cause = cause.args[-1]
    return f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__


# A publisher writes its messages to the socket this many at a time.
WRITE_EVERY = 1000


def properties(*, delay_ms: int | None = None, headers: dict[str, Any] | None = None) -> pika.BasicProperties:
    """Persistent JSON. No message id: the body names the photo, and one set of
    properties serves a whole batch."""
    return pika.BasicProperties(
        content_type=CONTENT_TYPE,
        delivery_mode=pika.DeliveryMode.Persistent,
        expiration=str(delay_ms) if delay_ms is not None else None,
        headers=headers or {},
    )


@dataclass
class Publisher:
    """Publishes persistent messages with publisher confirms.

    :meth:`publish` returns only when RabbitMQ has confirmed every message (it
    is then on disk in a quorum queue) and raises :class:`BrokerUnavailable`
    otherwise (refused, unroutable, not confirmed within ``timeout`` seconds,
    or no connection); a caller that got no exception may promise the work will
    be done. Confirms are pipelined: all messages go out, then the acks are
    awaited together, so a batch costs about one round trip, not one per message.
    One publisher per thread: pika connections are not thread-safe.
    """

    amqp_uri: str
    topology: Topology
    timeout: float = 10.0
    _link: _ConfirmLink | None = field(default=None, init=False)

    def publish(self, messages: Sequence[PhotoMessage], *, delay_ms: int | None = None) -> None:
        if not messages:
            return
        routing_key = self.topology.delay_queue if delay_ms is not None else self.topology.queue
        bodies = [message.encode() for message in messages]
        try:
            self._ensure_link().publish(routing_key, bodies, delay_ms, self.timeout)
        except _LinkFailed:
            # The connection may simply have gone stale (broker restarted, TCP
            # connection dropped while idle): one fresh connection, then give up.
            # A message sent twice is harmless, consumers claim photos exactly once.
            self.close()
            try:
                self._ensure_link().publish(routing_key, bodies, delay_ms, self.timeout)
            except _LinkFailed as exc:
                self.close()
                raise BrokerUnavailable(f"RabbitMQ is unavailable: {exc}") from None

    def _ensure_link(self) -> _ConfirmLink:
        if self._link is None:
            self._link = _ConfirmLink(self.amqp_uri, self.topology, self.timeout)
        return self._link

    def close(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            link.close()


class _LinkFailed(Exception):
    """The link cannot be used (any more); the message says why."""


class _ConfirmLink:
    """A pika SelectConnection with one channel in confirm mode, driven by the
    thread that calls it: its I/O loop runs only inside :meth:`publish` and
    :meth:`close`. Between calls nothing reads the socket, so heartbeats are
    off (the broker would close an idle connection) and TCP keepalive finds a
    dead peer instead; a link the broker closed meanwhile fails on its next use.

    Delivery tags count the channel's publishes from 1; RabbitMQ acks them in
    order, often many at once (``multiple``), so the unconfirmed tags are kept
    in ascending order and confirmed from the left.
    """

    def __init__(self, amqp_uri: str, topology: Topology, timeout: float) -> None:
        params = pika.URLParameters(amqp_uri)
        params.connection_attempts = 1
        params.socket_timeout = timeout
        params.stack_timeout = timeout
        params.heartbeat = 0
        params.tcp_options = {"TCP_KEEPIDLE": 60, "TCP_KEEPINTVL": 10, "TCP_KEEPCNT": 3}
        self._topology = topology
        self._failure: str | None = None
        self._channel: Channel | None = None
        self._ready = False
        self._published = 0
        self._unconfirmed: deque[int] = deque()
        self._acked_out_of_order: set[int] = set()
        self._refused = 0
        self._returned = 0
        self._connection = pika.SelectConnection(
            params,
            on_open_callback=self._on_connection_open,
            on_open_error_callback=self._on_connection_error,
            on_close_callback=self._on_connection_closed,
        )
        try:
            self._run_until(lambda: self._ready, timeout, "opening a connection")
        except _LinkFailed:
            self.close()
            raise

    def publish(
        self, routing_key: str, bodies: Sequence[bytes], delay_ms: int | None, timeout: float
    ) -> None:
        """Every body published and confirmed, or _LinkFailed."""
        channel = self._channel
        if channel is None or self._failure is not None:
            raise _LinkFailed(self._failure or "the channel is closed")
        self._refused = self._returned = 0
        # One set of properties for the whole batch: building them per message
        # was a large share of the publishing CPU of a big batch.
        props = properties(delay_ms=delay_ms)
        try:
            for start in range(0, len(bodies), WRITE_EVERY):
                for body in bodies[start : start + WRITE_EVERY]:
                    channel.basic_publish("", routing_key, body, props, mandatory=True)
                    self._published += 1
                    self._unconfirmed.append(self._published)
                # Write what is ready, so RabbitMQ stores it while the rest is framed.
                self._turn()
        except AMQPError as exc:
            raise _LinkFailed(f"publishing failed: {type(exc).__name__}") from None
        self._run_until(lambda: not self._unconfirmed, timeout, f"confirming {len(bodies)} messages")
        if self._returned:
            raise _LinkFailed(f"{self._returned} messages could not be routed to {routing_key}")
        if self._refused:
            raise _LinkFailed(f"RabbitMQ refused {self._refused} messages (is {routing_key} full?)")

    def close(self) -> None:
        connection = self._connection
        try:
            if connection.is_open:
                connection.close()
            if not connection.is_closed:
                self._run_until(lambda: connection.is_closed, 2.0, "closing the connection")
        except (_LinkFailed, AMQPError):
            pass
        finally:
            connection.ioloop.close()

    def _run_until(self, done: Callable[[], bool], timeout: float, doing: str) -> None:
        """Run the I/O loop until ``done()``; _LinkFailed on a failure or after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not done():
            if self._failure is not None:
                raise _LinkFailed(self._failure)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._failure = f"timed out after {timeout:g}s {doing}"
                raise _LinkFailed(self._failure)
            # Callbacks stop the loop when something the caller waits for happened.
            self._run_for(remaining)

    def _turn(self) -> None:
        """One turn of the I/O loop that does not wait: write what the socket
        takes, read the confirms that have arrived."""
        self._run_for(0)
        if self._failure is not None:
            raise _LinkFailed(self._failure)

    def _run_for(self, seconds: float) -> None:
        """Run the I/O loop for at most ``seconds``, or until a callback stops it."""
        ioloop = self._connection.ioloop
        timer = ioloop.call_later(seconds, ioloop.stop)
        try:
            ioloop.start()
        finally:
            ioloop.remove_timeout(timer)

    # --- callbacks, run by the I/O loop ---------------------------------------

    def _wake(self) -> None:
        self._connection.ioloop.stop()

    def _on_connection_open(self, connection: pika.SelectConnection) -> None:
        connection.channel(on_open_callback=self._on_channel_open)

    def _on_connection_error(self, connection: pika.SelectConnection, error: BaseException | str) -> None:
        self._failure = f"could not connect: {error if isinstance(error, str) else type(error).__name__}"
        self._wake()

    def _on_connection_closed(self, connection: pika.SelectConnection, reason: BaseException) -> None:
        self._failure = self._failure or f"the connection closed: {reason}"
        self._channel = None
        self._wake()

    def _on_channel_open(self, channel: Channel) -> None:
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(self._on_returned)
        # Asynchronous declarations are queued by pika and carried out in order;
        # one that fails closes the channel before the Confirm.SelectOk arrives.
        self._topology.declare(channel)
        channel.confirm_delivery(ack_nack_callback=self._on_confirm, callback=self._on_confirm_mode)
        self._channel = channel

    def _on_confirm_mode(self, frame: pika.frame.Method) -> None:
        self._ready = True
        self._wake()

    def _on_channel_closed(self, channel: Channel, reason: BaseException) -> None:
        self._failure = self._failure or f"the channel closed: {reason}"
        self._channel = None
        if self._connection.is_open:
            self._connection.close()
        self._wake()

    def _on_returned(
        self, channel: Channel, method: Basic.Return, props: pika.BasicProperties, body: bytes
    ) -> None:
        self._returned += 1

    def _on_confirm(self, frame: pika.frame.Method) -> None:
        method = frame.method
        tag: int = method.delivery_tag
        if isinstance(method, Basic.Nack):
            self._refused += sum(1 for t in self._unconfirmed if t <= tag) if method.multiple else 1
        unconfirmed = self._unconfirmed
        if method.multiple:
            while unconfirmed and unconfirmed[0] <= tag:
                unconfirmed.popleft()
        else:
            self._acked_out_of_order.add(tag)
        while unconfirmed and unconfirmed[0] in self._acked_out_of_order:
            self._acked_out_of_order.discard(unconfirmed.popleft())
        if not unconfirmed:
            self._wake()
