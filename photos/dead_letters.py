"""The upscaler's dead letters, for an operator: list them with their reasons,
replay them onto the work queue, or purge them.

Nothing is lost on the way: a listed message is returned to the dead-letter
queue (``basic.nack`` with requeue, which counts no delivery against a limit);
a replayed one is acked on the dead-letter queue only once RabbitMQ has
confirmed its copy on the work queue. Replay and list take at most the
messages present when they start, so a message dead-lettered again meanwhile
is not taken twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPError, NackError, UnroutableError

from photos.messages import BrokerUnavailable
from photos.queue import UpscaleTopology, close_quietly

# Headers RabbitMQ keeps about dead-lettering; a replayed message starts afresh.
_BROKER_HEADERS = ("x-death", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason")


@dataclass(frozen=True)
class DeadLetter:
    body: bytes
    headers: dict[str, Any]

    @property
    def reason(self) -> str:
        """The upscaler's reason, else RabbitMQ's (a delivery limit reached)."""
        reason = self.headers.get("x-upscale-reason")
        if reason:
            return str(_text(reason))
        deaths = self.headers.get("x-death") or []
        if deaths and isinstance(deaths[0], dict) and deaths[0].get("reason"):
            return f"rabbitmq: {_text(deaths[0]['reason'])}"
        return "no reason recorded"

    @property
    def step(self) -> str | None:
        step = self.headers.get("x-upscale-step")
        return str(_text(step)) if step is not None else None

    @property
    def attempts(self) -> int | None:
        attempts = self.headers.get("x-upscale-attempts")
        return int(attempts) if attempts is not None else None


def _text(value: object) -> object:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


class DeadLetters:
    def __init__(self, amqp_uri: str, topology: UpscaleTopology) -> None:
        self._amqp_uri = amqp_uri
        self.topology = topology

    def list(self, limit: int = 100) -> list[DeadLetter]:
        """Up to ``limit`` dead letters, oldest first; all stay on the queue."""
        found: list[DeadLetter] = []
        with self._channel() as channel:
            last_tag = None
            for _ in range(min(limit, self._count(channel))):
                method, props, body = channel.basic_get(self.topology.dead_queue, auto_ack=False)
                if method is None:
                    break
                last_tag = method.delivery_tag
                found.append(DeadLetter(body, dict(props.headers or {})))
            if last_tag is not None:
                channel.basic_nack(last_tag, multiple=True, requeue=True)
        return found

    def replay(self, limit: int | None = None) -> int:
        """Move up to ``limit`` dead letters (all by default) back onto the work
        queue, each confirmed there before it leaves the dead-letter queue;
        how many moved."""
        moved = 0
        with self._channel() as channel:
            count = self._count(channel)
            for _ in range(count if limit is None else min(limit, count)):
                method, props, body = channel.basic_get(self.topology.dead_queue, auto_ack=False)
                if method is None:
                    break
                headers = {k: v for k, v in (props.headers or {}).items() if k not in _BROKER_HEADERS}
                copy = pika.BasicProperties(
                    content_type=props.content_type,
                    delivery_mode=pika.DeliveryMode.Persistent,
                    message_id=props.message_id,
                    headers=headers,
                )
                try:
                    channel.basic_publish("", self.topology.queue, body, copy, mandatory=True)
                except (NackError, UnroutableError) as exc:
                    channel.basic_nack(method.delivery_tag, requeue=True)
                    raise BrokerUnavailable(
                        f"RabbitMQ did not take a replayed message on {self.topology.queue}: "
                        f"{type(exc).__name__}; {moved} were replayed, the rest stay dead-lettered"
                    ) from None
                channel.basic_ack(method.delivery_tag)
                moved += 1
        return moved

    def purge(self) -> int:
        """Delete every dead letter; how many there were."""
        with self._channel() as channel:
            return int(channel.queue_purge(self.topology.dead_queue).method.message_count)

    def count(self) -> int:
        with self._channel() as channel:
            return self._count(channel)

    def _count(self, channel: BlockingChannel) -> int:
        return int(channel.queue_declare(self.topology.dead_queue, passive=True).method.message_count)

    @contextlib.contextmanager
    def _channel(self) -> Iterator[BlockingChannel]:
        params = pika.URLParameters(self._amqp_uri)
        params.connection_attempts = 1
        params.socket_timeout = 5
        params.client_properties = {"connection_name": "dead letters (cli)"}
        try:
            connection = pika.BlockingConnection(params)
        except AMQPError as exc:
            raise BrokerUnavailable(f"RabbitMQ does not answer: {type(exc).__name__}") from None
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            self.topology.declare(channel)
            yield channel
        except AMQPError as exc:
            raise BrokerUnavailable(f"RabbitMQ failed: {type(exc).__name__}: {exc}") from None
        finally:
            close_quietly(connection)
