"""Request/reply over RabbitMQ for ``POST /query``: the wire format, and the
asking side (:class:`QueryClient`).

Request, published to the query queue (:attr:`Topology.query_queue`):
  body: the image bytes (``application/octet-stream``); ``reply_to`` is
  RabbitMQ's direct reply-to, ``correlation_id`` a fresh id, ``expiration`` the
  asker's remaining patience in milliseconds (RabbitMQ drops the request once
  nobody can use its answer). Transient: an asker does not outlive a broker
  restart either.

Reply, published by a consumer to the request's ``reply_to``, same
``correlation_id``; header ``outcome`` is ``answer`` or a failure kind
(:data:`FAILURES`), header ``consumer`` says who answered:
  answer: body the mirrored image, ``content_type`` its type, headers
  ``size_bytes``, ``width``, ``height``, ``extension``;
  failure: empty body, header ``reason`` in words a person understands.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPError
from pika.spec import Basic, BasicProperties

from photos.imaging import Encoded, ImageError, ImageTooLarge, NotAnImage
from photos.messages import BrokerUnavailable
from photos.query import Answer, ConsumerError, Refusal
from photos.queue import Topology, close_quietly

log = logging.getLogger(__name__)

DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
REQUEST_CONTENT_TYPE = "application/octet-stream"


class QueryTimeout(Exception):
    """No consumer answered within the timeout."""


class MalformedMessage(ValueError):
    """A request or reply that is not one of ours."""


@dataclass(frozen=True)
class QueryRequest:
    image: bytes
    reply_to: str
    correlation_id: str

    @classmethod
    def decode(cls, body: bytes, props: BasicProperties) -> QueryRequest:
        if not props.reply_to or not props.correlation_id:
            raise MalformedMessage("a query request needs reply_to and correlation_id")
        return cls(body, str(props.reply_to), str(props.correlation_id))

    def properties(self, expiration_ms: int) -> BasicProperties:
        return BasicProperties(
            content_type=REQUEST_CONTENT_TYPE,
            delivery_mode=pika.DeliveryMode.Transient,
            reply_to=self.reply_to,
            correlation_id=self.correlation_id,
            message_id=self.correlation_id,
            expiration=str(max(1, expiration_ms)),
        )


# A refusal's kind on the wire -> the error it is raised as on the asking side.
FAILURES: dict[str, type[Refusal]] = {
    "not_an_image": NotAnImage,
    "too_large": ImageTooLarge,
    "consumer_error": ConsumerError,
}


def failure_kind(refusal: Refusal) -> str:
    """The kind a refusal travels as: every image error other than the pixel
    limit says the image was not one we can use."""
    if isinstance(refusal, ImageTooLarge):
        return "too_large"
    if isinstance(refusal, ImageError):
        return "not_an_image"
    return "consumer_error"


def encode_reply(
    outcome: Answer | Refusal, correlation_id: str, consumer: str
) -> tuple[bytes, BasicProperties]:
    if not isinstance(outcome, Answer):
        kind = failure_kind(outcome)
        headers: dict[str, object] = {"outcome": kind, "reason": outcome.reason, "consumer": consumer}
        return b"", BasicProperties(correlation_id=correlation_id, headers=headers)
    image = outcome.mirrored
    headers = {
        "outcome": "answer",
        "consumer": outcome.consumer,
        "size_bytes": outcome.size_bytes,
        "width": image.width,
        "height": image.height,
        "extension": image.extension,
    }
    return image.data, BasicProperties(
        correlation_id=correlation_id, content_type=image.content_type, headers=headers
    )


def decode_reply(body: bytes, props: BasicProperties) -> Answer:
    """The answer in a reply; raises the refusal it carries (see
    :data:`FAILURES`), or :class:`MalformedMessage`."""
    headers = props.headers or {}
    outcome = _text(headers.get("outcome"))
    consumer = _text(headers.get("consumer"))
    if outcome in FAILURES:
        raise FAILURES[outcome](_text(headers.get("reason")) or "no reason given")
    if outcome != "answer":
        raise MalformedMessage(f"a reply with outcome {outcome!r}")
    try:
        mirrored = Encoded(
            data=body,
            width=int(headers["width"]),
            height=int(headers["height"]),
            content_type=str(props.content_type),
            extension=_text(headers["extension"]),
        )
        return Answer(int(headers["size_bytes"]), mirrored, consumer)
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedMessage(f"a reply without {exc}") from None


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return "" if value is None else str(value)


@dataclass
class QueryClient:
    """Sends a query and waits for its reply, at most ``timeout`` seconds.

    Replies whose correlation id is not the one awaited (late answers to a
    query that already timed out) are dropped. One client per thread: pika
    connections are not thread-safe. A connection that went stale is replaced
    once per query; a broker that cannot be reached raises
    :class:`BrokerUnavailable`.
    """

    amqp_uri: str
    topology: Topology
    timeout: float
    _connection: pika.BlockingConnection | None = field(default=None, init=False)
    _channel: BlockingChannel | None = field(default=None, init=False)
    _awaited: str | None = field(default=None, init=False)
    _reply: tuple[BasicProperties, bytes] | None = field(default=None, init=False)

    def ask(self, image: bytes) -> Answer:
        """The consumer's answer. Raises the refusal of the consumer (an
        ImageError or ConsumerError, see :data:`FAILURES`), :class:`QueryTimeout` or :class:`BrokerUnavailable`."""
        deadline = time.monotonic() + self.timeout
        try:
            return self._ask(image, deadline)
        except AMQPError:
            # Perhaps only a stale connection (broker restarted, heartbeats
            # missed while idle): one fresh one. Asking twice is harmless,
            # answering has no side effects.
            self.close()
        try:
            return self._ask(image, deadline)
        except AMQPError as exc:
            self.close()
            raise BrokerUnavailable(f"RabbitMQ is unavailable: {type(exc).__name__}") from None

    def _ask(self, image: bytes, deadline: float) -> Answer:
        channel = self._ensure_channel()
        connection = self._connection
        assert connection is not None
        request = QueryRequest(image, DIRECT_REPLY_TO, uuid.uuid4().hex)
        self._awaited, self._reply = request.correlation_id, None
        try:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            channel.basic_publish(
                "", self.topology.query_queue, image, request.properties(remaining_ms), mandatory=True
            )
            while self._reply is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise QueryTimeout(f"no consumer answered within {self.timeout:g} seconds")
                connection.process_data_events(time_limit=min(remaining, 1.0))
            props, body = self._reply
        finally:
            self._awaited = None
        return decode_reply(body, props)

    def _on_reply(
        self, channel: BlockingChannel, method: Basic.Deliver, props: BasicProperties, body: bytes
    ) -> None:
        if self._awaited is None or props.correlation_id != self._awaited:
            log.warning("ignoring a reply to another query", extra={"query": props.correlation_id})
            return
        self._reply = (props, body)

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
            # Direct reply-to: replies come straight to this channel, no queue
            # to declare or clean up. Must consume before publishing.
            channel.basic_consume(DIRECT_REPLY_TO, self._on_reply, auto_ack=True)
            self._channel = channel
        return self._channel

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        close_quietly(connection)
