"""The Publisher against a real RabbitMQ: every message confirmed and in the
queue, or BrokerUnavailable."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from photos.config import Settings
from photos.messages import BrokerUnavailable, PhotoMessage
from photos.queue import Publisher, Topology
from tests.support.proxy import TcpProxy
from tests.support.services import Broker, unreachable_amqp_uri
from tests.support.wait import wait_for


@pytest.fixture
def proxy(settings: Settings) -> Iterator[TcpProxy]:
    proxy = TcpProxy.in_front_of(settings.amqp_uri, 5672)
    yield proxy
    proxy.stop()


def _messages(n: int) -> list[PhotoMessage]:
    return [PhotoMessage(uuid.uuid4()) for _ in range(n)]


def _drain(broker: Broker, queue: str, expected: int) -> list[PhotoMessage]:
    received = []
    with broker.channel() as channel:
        channel.basic_qos(prefetch_count=1000)
        for method, _, body in channel.consume(queue, auto_ack=True, inactivity_timeout=5):
            if method is None:
                break
            received.append(PhotoMessage.decode(body))
            if len(received) == expected:
                break
        channel.cancel()
    return received


def test_ten_thousand_messages_are_all_confirmed_and_in_the_queue(settings: Settings, broker: Broker) -> None:
    publisher = Publisher(settings.amqp_uri, broker.topology)
    messages = _messages(10_000)
    try:
        publisher.publish(messages)
    finally:
        publisher.close()
    # Confirmed means enqueued: the count is exact the moment publish returns.
    assert broker.depth() == 10_000
    assert set(_drain(broker, broker.topology.queue, 10_000)) == set(messages)


def test_a_publisher_is_reused_across_calls(settings: Settings, broker: Broker) -> None:
    publisher = Publisher(settings.amqp_uri, broker.topology)
    try:
        for _ in range(3):
            publisher.publish(_messages(5))
    finally:
        publisher.close()
    assert broker.depth() == 15


def test_delayed_messages_wait_on_the_delay_queue_then_arrive(settings: Settings, broker: Broker) -> None:
    publisher = Publisher(settings.amqp_uri, broker.topology)
    try:
        publisher.publish(_messages(3), delay_ms=200)
    finally:
        publisher.close()
    wait_for(lambda: broker.depth() == 3, timeout=10, what="delayed messages reaching the work queue")
    assert broker.depth(broker.topology.delay_queue) == 0


def test_a_closed_port_raises_broker_unavailable(settings: Settings) -> None:
    publisher = Publisher(unreachable_amqp_uri(), Topology(settings.queue_name), timeout=3.0)
    with pytest.raises(BrokerUnavailable):
        publisher.publish(_messages(1))


def test_a_connection_cut_while_idle_is_replaced_without_an_error(
    settings: Settings, broker: Broker, proxy: TcpProxy
) -> None:
    publisher = Publisher(proxy.uri(settings.amqp_uri), broker.topology, timeout=5.0)
    try:
        publisher.publish(_messages(10))
        assert proxy.cut() > 0
        publisher.publish(_messages(10))
    finally:
        publisher.close()
    assert broker.depth() == 20


def test_a_broker_that_stays_away_raises_broker_unavailable(
    settings: Settings, broker: Broker, proxy: TcpProxy
) -> None:
    publisher = Publisher(proxy.uri(settings.amqp_uri), broker.topology, timeout=3.0)
    publisher.publish(_messages(1))
    proxy.stop()
    with pytest.raises(BrokerUnavailable):
        publisher.publish(_messages(1))
    publisher.close()


def test_a_deleted_queue_is_declared_again(settings: Settings, broker: Broker) -> None:
    publisher = Publisher(settings.amqp_uri, broker.topology)
    try:
        publisher.publish(_messages(1))
        with broker.channel() as channel:
            channel.queue_delete(broker.topology.queue)
        # Unroutable on the old channel, so the publisher starts afresh and
        # declares the topology again.
        publisher.publish(_messages(2))
    finally:
        publisher.close()
    assert broker.depth() == 2
