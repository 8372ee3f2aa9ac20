"""The consume loop: one broker connection, work on other threads.

The main thread owns the pika connection and does nothing but broker I/O
(deliveries, heartbeats, acks), so a slow download or a huge photo never costs
the connection. Each message is handled on a worker thread; its ack, nack or
retry is handed back to the main thread with ``add_callback_threadsafe``.
At most ``prefetch`` messages are in flight (1 by default).

It reconnects when RabbitMQ goes away, waits out database outages while holding
the message, and on SIGTERM stops taking messages, lets the one in hand finish (up to
``STOP_GRACE_SECONDS``) and closes. A photo still unfinished then is given back
(pending again, so the redelivered message is taken over at once) and its
message returns to the queue; ``abandoned`` tells the caller not to wait for
that work.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPConnectionError, AMQPError
from pika.spec import Basic, BasicProperties

from consumer.loop import MAX_BACKOFF, ConsumeLoop
from consumer.query import reply_to_query
from photos import db, fetch
from photos.config import Settings
from photos.db import is_dropped, is_unavailable
from photos.messages import PhotoMessage
from photos.metrics import Processed, ProcessingMetrics
from photos.pipeline import Outcome, Processor, RetryLater, fail_dead_lettered
from photos.queue import DELIVERY_LIMIT, Topology, properties
from photos.storage import Storage

log = logging.getLogger("consumer")

# The Done outcomes counted in photo_processor_processed_total (the others,
# "lease lost", "already completed", ..., settle nothing new).
_COUNTED = frozenset(p.value for p in (Processed.completed, Processed.failed))

T = TypeVar("T")


@dataclass
class _Delivery:
    channel: BlockingChannel
    tag: int
    body: bytes
    properties: BasicProperties


class Worker(ConsumeLoop):
    def __init__(self, settings: Settings, processor: Processor, metrics: ProcessingMetrics) -> None:
        super().__init__(log)
        self.settings = settings
        self.processor = processor
        self.metrics = metrics
        self.topology = Topology(settings.queue_name)
        self.abandoned = False
        self._inflight = 0
        self._inflight_lock = threading.Lock()
        # Queries have their own threads: someone is waiting for each answer,
        # and it must not queue behind a slow photo download.
        self._query_pool = ThreadPoolExecutor(settings.prefetch, thread_name_prefix="query")
        self._leases = _LeaseKeeper(processor, settings.lease_seconds / 3)

    # --- lifecycle -----------------------------------------------------------

    def run(self) -> None:
        """Consume until stopped, reconnecting with backoff when the broker goes away."""
        removed = self.processor.storage.sweep_partials()
        if removed:
            log.info("removed partial files of dead writers", extra={"count": removed})
        pool = ThreadPoolExecutor(self.settings.prefetch, thread_name_prefix="photo")
        try:
            self._reconnecting(lambda: self._consume(pool))
        finally:
            # Work abandoned after the grace is not waited for: its photo was
            # given back and its message returned when the connection closed.
            pool.shutdown(wait=not self.abandoned, cancel_futures=True)
            self._query_pool.shutdown(wait=not self.abandoned, cancel_futures=True)
            self._leases.close()
        log.info("consumer stopped", extra={"abandoned": self.abandoned})

    def _consume(self, pool: ThreadPoolExecutor) -> None:
        connection = self._connect(self.settings.amqp_uri, f"consumer {self.topology.queue}")
        channel = connection.channel()
        channel.confirm_delivery()
        self.topology.declare(channel)
        channel.basic_qos(prefetch_count=self.settings.prefetch)
        work_tag = channel.basic_consume(
            self.topology.queue, lambda ch, m, p, b: self._dispatch(pool, ch, m, p, b, self._handle_photo)
        )
        dead_tag = channel.basic_consume(
            self.topology.dead_queue,
            lambda ch, m, p, b: self._dispatch(pool, ch, m, p, b, self._handle_dead),
        )
        query_tag = channel.basic_consume(
            self.topology.query_queue,
            lambda ch, m, p, b: self._dispatch(self._query_pool, ch, m, p, b, self._handle_query),
        )
        log.info("consuming", extra={"queue": self.topology.queue, "prefetch": self.settings.prefetch})
        while not self._stop.is_set():
            _pump(connection, 0.25)
        # Stop taking messages, finish what is in hand, then close.
        channel.basic_cancel(work_tag)
        channel.basic_cancel(dead_tag)
        channel.basic_cancel(query_tag)
        deadline = time.monotonic() + self.settings.stop_grace_seconds
        while self._busy() and time.monotonic() < deadline:
            _pump(connection, 0.1)
        if self._busy():
            self.abandoned = True
            for photo in self._leases.held():
                try:
                    given_back = self.processor.give_back(photo)
                except Exception as exc:  # its lease then runs out instead
                    log.warning(
                        "could not give the photo back", extra={"photo": str(photo), "error": repr(exc)}
                    )
                else:
                    log.info("photo given back", extra={"photo": str(photo), "given_back": given_back})
            log.warning("stopping with a message in hand; it returns to the queue")
        else:
            _pump(connection, 0)  # the last settlements handed over

    def _busy(self) -> bool:
        with self._inflight_lock:
            return self._inflight > 0

    # --- messages ------------------------------------------------------------

    def _dispatch(
        self,
        pool: ThreadPoolExecutor,
        channel: BlockingChannel,
        method: Basic.Deliver,
        props: BasicProperties,
        body: bytes,
        handler: Callable[[_Delivery], Callable[[], None]],
    ) -> None:
        connection = self._connection
        assert connection is not None and method.delivery_tag is not None
        delivery = _Delivery(channel, method.delivery_tag, body, props)
        with self._inflight_lock:
            self._inflight += 1

        def work() -> None:
            try:
                settle = handler(delivery)
            except Exception:
                log.exception("unexpected error handling a message; it returns to the queue")
                settle = lambda: _nack(delivery)  # noqa: E731
            try:
                connection.add_callback_threadsafe(lambda: self._settle(settle))
            except AMQPError:
                # The connection is gone; the broker has already put the message
                # back, and its next delivery finds the photo's state committed.
                pass
            finally:
                # Counted down here, not in the settle callback: a connection
                # lost after queueing the callback never runs it, and a count
                # waiting for it kept a stopping consumer for the whole grace.
                with self._inflight_lock:
                    self._inflight -= 1

        pool.submit(work)

    def _settle(self, settle: Callable[[], None]) -> None:
        try:
            settle()
        except AMQPError as exc:
            log.warning("could not settle a message", extra={"error": repr(exc)})

    def _handle_photo(self, delivery: _Delivery) -> Callable[[], None]:
        try:
            message = PhotoMessage.decode(delivery.body)
        except ValueError as exc:
            log.error(
                "dropping a message that is not ours", extra={"error": str(exc), "body": delivery.body[:200]}
            )
            return lambda: _ack(delivery)
        outcome = self._with_database(lambda: self._process(message))
        return self._settlement(delivery, message, outcome)

    def _settlement(
        self, delivery: _Delivery, message: PhotoMessage, outcome: Outcome | None
    ) -> Callable[[], None]:
        """How the message is settled once its outcome is committed: acked,
        acked after a copy went to the delay queue, or (told to stop while the
        database was away) returned to the queue."""
        photo = str(message.photo_uuid)
        if outcome is None:
            log.info("message returned", extra={"photo": photo, "outcome": "stopping"})
            return lambda: _nack(delivery)
        if isinstance(outcome, RetryLater):
            self.metrics.count(Processed.retried)
            delay_ms = max(1, int(outcome.delay * 1000))
            log.info("message delayed", extra={"photo": photo, "outcome": "retry", "delay_ms": delay_ms})
            return lambda: self._republish_later(delivery, delay_ms)
        log.info("message done", extra={"photo": photo, "outcome": outcome.outcome})
        if outcome.outcome in _COUNTED:
            self.metrics.count(Processed(outcome.outcome))
        return lambda: _ack(delivery)

    def _process(self, message: PhotoMessage) -> Outcome:
        with self._leases.holding(message.photo_uuid), self.metrics.in_flight.track_inprogress():
            try:
                return self.processor.handle(message)
            except Exception as exc:
                if is_unavailable(exc):
                    raise
                log.exception("bug while processing", extra={"photo": str(message.photo_uuid)})
                return self.processor.fail(message.photo_uuid, f"internal error: {type(exc).__name__}: {exc}")

    def _handle_dead(self, delivery: _Delivery) -> Callable[[], None]:
        try:
            message = PhotoMessage.decode(delivery.body)
        except ValueError:
            log.error("dropping an undecodable dead letter", extra={"body": delivery.body[:200]})
            return lambda: _ack(delivery)
        reason = (
            f"every consumer that took this photo stopped before finishing "
            f"(delivered {_deliveries(delivery.properties)} times); the photo may crash the image code"
        )
        processor = self.processor
        outcome = self._with_database(
            lambda: fail_dead_lettered(processor.factory, processor.storage, message.photo_uuid, reason)
        )
        return self._settlement(delivery, message, outcome)

    def _handle_query(self, delivery: _Delivery) -> Callable[[], None]:
        reply = reply_to_query(delivery.body, delivery.properties, max_pixels=self.settings.max_image_pixels)

        def settle() -> None:
            if reply is not None:
                delivery.channel.basic_publish("", reply.routing_key, reply.body, reply.properties)
            _ack(delivery)

        return settle

    def _republish_later(self, delivery: _Delivery, delay_ms: int) -> None:
        delivery.channel.basic_publish(
            "", self.topology.delay_queue, delivery.body, properties(delay_ms=delay_ms), mandatory=True
        )
        _ack(delivery)

    def _with_database(self, action: Callable[[], T]) -> T | None:
        """Run ``action``, waiting out a database outage; None if told to stop first."""
        backoff = 0.5
        while True:
            try:
                return _once_more_if_dropped(action)
            except Exception as exc:
                if not is_unavailable(exc):
                    raise
                if self._stop.is_set():
                    return None
                log.warning("database unavailable, waiting", extra={"retry_in": backoff})
                self._stop.wait(backoff)
                backoff = min(MAX_BACKOFF, backoff * 2)


class _LeaseKeeper:
    """Keeps the leases of the photos in hand alive: every ``interval`` seconds
    it renews each photo held, so a lease is renewed at most ``interval``
    seconds after its claim and then every ``interval`` seconds until the
    photo is let go. One thread for the consumer's life, started with the
    first photo; a thread per message cost 0.2 ms of CPU per photo."""

    def __init__(self, processor: Processor, interval: float) -> None:
        self._processor = processor
        self._interval = interval
        self._held: Counter[uuid.UUID] = Counter()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def holding(self, photo: uuid.UUID) -> Iterator[None]:
        with self._lock:
            self._held[photo] += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="leases", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._held[photo] -= 1
                if not self._held[photo]:
                    del self._held[photo]

    def held(self) -> list[uuid.UUID]:
        with self._lock:
            return list(self._held)

    def close(self) -> None:
        self._closed.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        while not self._closed.wait(self._interval):
            with self._lock:
                photos = list(self._held)
            for photo in photos:
                try:
                    _once_more_if_dropped(functools.partial(self._processor.renew_lease, photo))
                except Exception as exc:  # the next renewal or the outcome will tell
                    log.warning("lease renewal failed", extra={"photo": str(photo), "error": repr(exc)})


def _once_more_if_dropped(action: Callable[[], T]) -> T:
    """``action``, run again at once if it failed on a database connection that
    was dropped after the pool had checked it (its backend terminated
    mid-transaction): the pool has replaced it since, so no backoff is needed."""
    try:
        return action()
    except Exception as exc:
        if not is_dropped(exc):
            raise
    return action()


def _pump(connection: pika.BlockingConnection, seconds: float) -> None:
    """Broker I/O for up to ``seconds``; AMQPError once the connection is gone.
    pika reports a close it learns of inside a callback (an ack on a connection
    the broker just closed) to that callback, and the next process_data_events
    then fails with ValueError: checked here so that it is a reconnect, not a
    crash of the consumer."""
    if not connection.is_open:
        raise AMQPConnectionError("the connection to RabbitMQ was closed")
    connection.process_data_events(time_limit=seconds)


def _deliveries(props: BasicProperties) -> str:
    """How often a dead letter was delivered before it died. Its own
    x-delivery-count restarts in the dead-letter queue; what killed it is in
    x-death: past the delivery limit, the limit's deliveries plus the last."""
    deaths = (props.headers or {}).get("x-death") or []
    if any(isinstance(d, dict) and d.get("reason") == "delivery_limit" for d in deaths):
        return str(DELIVERY_LIMIT + 1)
    return "several"


def _ack(delivery: _Delivery) -> None:
    delivery.channel.basic_ack(delivery.tag)


def _nack(delivery: _Delivery) -> None:
    delivery.channel.basic_nack(delivery.tag, requeue=True)


def build_worker(settings: Settings, metrics: ProcessingMetrics | None = None) -> Worker:
    """Wire the real adapters together: the one place that does."""
    metrics = metrics or ProcessingMetrics()
    engine = db.make_engine(settings.pg_uri, pool_size=settings.prefetch + 1)
    return Worker(settings, build_processor(settings, db.make_session_factory(engine), metrics), metrics)


def build_processor(
    settings: Settings, factory: db.SessionFactory, metrics: ProcessingMetrics | None = None
) -> Processor:
    """The processor of ``settings`` on ``factory``'s database (tests give
    their own factory)."""
    policy = fetch.FetchPolicy(
        allowed_hosts=settings.allowed_fetch_hosts,
        max_bytes=settings.fetch_max_bytes,
        connect_timeout=settings.fetch_connect_timeout,
        total_timeout=settings.fetch_total_timeout,
        max_redirects=settings.fetch_max_redirects,
    )
    return Processor(
        factory=factory,
        storage=Storage(settings.thumbs_dir),
        fetcher=lambda url: fetch.fetch(url, policy),
        lease_seconds=settings.lease_seconds,
        max_attempts=settings.max_attempts,
        max_pixels=settings.max_image_pixels,
        retry_base_delay=settings.retry_base_delay,
        metrics=metrics or ProcessingMetrics(),
    )
