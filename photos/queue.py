"""RabbitMQ: the whole topology, the wire format and confirmed publishing.

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
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPError

DELIVERY_LIMIT = 5
CONTENT_TYPE = "application/json"


class BrokerUnavailable(Exception):
    """RabbitMQ could not be reached, or did not confirm a message."""


@dataclass(frozen=True)
class PhotoMessage:
    """Process this photo (into the renditions its row names)."""

    photo_uuid: uuid.UUID

    def encode(self) -> bytes:
        return json.dumps({"photo_uuid": str(self.photo_uuid)}).encode()

    @classmethod
    def decode(cls, body: bytes) -> PhotoMessage:
        """Raises ValueError for anything that is not a message of ours."""
        try:
            data = json.loads(body)
            return cls(uuid.UUID(str(data["photo_uuid"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"malformed message: {exc}") from None


@dataclass(frozen=True)
class Topology:
    queue: str

    @property
    def delay_queue(self) -> str:
        return f"{self.queue}.delay"

    @property
    def dead_exchange(self) -> str:
        return f"{self.queue}.dlx"

    @property
    def dead_queue(self) -> str:
        return f"{self.queue}.dead"

    @property
    def query_queue(self) -> str:
        return f"{self.queue}.query"

    def declare(self, channel: BlockingChannel) -> None:
        """Idempotent; every process declares before it publishes or consumes."""
        channel.queue_declare(self.query_queue, durable=True)
        channel.exchange_declare(self.dead_exchange, exchange_type="direct", durable=True)
        channel.queue_declare(self.dead_queue, durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_bind(self.dead_queue, self.dead_exchange, routing_key=self.queue)
        channel.queue_declare(
            self.queue,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": DELIVERY_LIMIT,
                "x-dead-letter-exchange": self.dead_exchange,
                "x-dead-letter-routing-key": self.queue,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        )
        channel.queue_declare(
            self.delay_queue,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": self.queue,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        )


@dataclass(frozen=True)
class UpscaleTopology:
    """The upscaling processor's queues: ``Q``, a quorum queue of upscale
    requests whose messages go to ``Q.dead`` (through exchange ``Q.dlx``) when
    the processor gives up on them, with the reason in their headers, or when
    consumers died holding them ``DELIVERY_LIMIT`` times."""

    queue: str

    @property
    def dead_exchange(self) -> str:
        return f"{self.queue}.dlx"

    @property
    def dead_queue(self) -> str:
        return f"{self.queue}.dead"

    def declare(self, channel: BlockingChannel) -> None:
        """Idempotent; declared before publishing or consuming."""
        channel.exchange_declare(self.dead_exchange, exchange_type="direct", durable=True)
        channel.queue_declare(self.dead_queue, durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_bind(self.dead_queue, self.dead_exchange, routing_key=self.queue)
        channel.queue_declare(
            self.queue,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": DELIVERY_LIMIT,
                "x-dead-letter-exchange": self.dead_exchange,
                "x-dead-letter-routing-key": self.queue,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        )


def properties(*, delay_ms: int | None = None, headers: dict[str, Any] | None = None) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type=CONTENT_TYPE,
        delivery_mode=pika.DeliveryMode.Persistent,
        message_id=str(uuid.uuid4()),
        expiration=str(delay_ms) if delay_ms is not None else None,
        headers=headers or {},
    )


@dataclass
class Publisher:
    """Publishes persistent messages with publisher confirms.

    :meth:`publish` returns only when RabbitMQ has confirmed every message (it
    is then on disk in a quorum queue) and raises :class:`BrokerUnavailable`
    otherwise; a caller that got no exception may promise the work will be done.
    One publisher per thread: pika connections are not thread-safe.
    """

    amqp_uri: str
    topology: Topology
    _connection: pika.BlockingConnection | None = field(default=None, init=False)
    _channel: BlockingChannel | None = field(default=None, init=False)

    def publish(self, messages: Sequence[PhotoMessage], *, delay_ms: int | None = None) -> None:
        if not messages:
            return
        try:
            self._publish(messages, delay_ms)
        except AMQPError:
            # The connection may simply have gone stale (broker restarted, idle
            # heartbeat timeout): one fresh connection, then give up. A message
            # sent twice is harmless, consumers claim photos exactly once.
            self.close()
            try:
                self._publish(messages, delay_ms)
            except AMQPError as exc:
                self.close()
                raise BrokerUnavailable(f"RabbitMQ is unavailable: {type(exc).__name__}") from None

    def _publish(self, messages: Iterable[PhotoMessage], delay_ms: int | None) -> None:
        channel = self._ensure_channel()
        routing_key = self.topology.delay_queue if delay_ms is not None else self.topology.queue
        for message in messages:
            channel.basic_publish(
                "", routing_key, message.encode(), properties(delay_ms=delay_ms), mandatory=True
            )

    def _ensure_channel(self) -> BlockingChannel:
        if self._channel is None or self._channel.is_closed:
            self.close()
            params = pika.URLParameters(self.amqp_uri)
            params.connection_attempts = 1
            params.socket_timeout = 5
            params.blocked_connection_timeout = 10
            self._connection = pika.BlockingConnection(params)
            channel = self._connection.channel()
            channel.confirm_delivery()
            self.topology.declare(channel)
            self._channel = channel
        return self._channel

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            with contextlib.suppress(AMQPError):
                connection.close()
