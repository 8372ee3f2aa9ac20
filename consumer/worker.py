"""The photo consumer: photo messages, their dead letters and queries, handled on
the one consume loop (:mod:`consumer.loop`, which owns the connection, the
threads, settlement, reconnects and the drain on stop).

A photo message is processed by :class:`photos.pipeline.Processor` and settled
once its outcome is committed: acked, or acked after a copy went to the delay
queue. While the database is away the message is held and the outage waited
out. On a stop whose grace ran out, the photos still in hand are given back
(pending again, so the redelivered message is taken over at once).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TypeVar

from pika.spec import BasicProperties

from consumer.loop import ConsumeLoop, Delivery, Settlement, Subscription
from consumer.query import reply_to_query
from photos import db, fetch, pipeline
from photos.config import Settings
from photos.db import is_dropped, is_unavailable
from photos.locks import PhotoLocks, make_lock_engine
from photos.messages import PhotoMessage
from photos.metrics import Processed, ProcessingMetrics
from photos.pipeline import Outcome, Processor, RetryLater, Settled
from photos.queue import DELIVERY_LIMIT, Topology, properties
from photos.retry import Backoff
from photos.storage import open_storage

log = logging.getLogger("consumer")

# What photo_processor_processed_total counts of a Done outcome; the others
# (lease lost, already settled, unknown photo) change no photo.
_COUNTED = {Settled.completed: Processed.completed, Settled.failed: Processed.failed}

T = TypeVar("T")


class Worker:
    """The photo consumer: the handlers of its four kinds of message (photos,
    dead letters, queries) on one :class:`ConsumeLoop`."""

    def __init__(self, settings: Settings, processor: Processor, metrics: ProcessingMetrics) -> None:
        self.settings = settings
        self.processor = processor
        self.metrics = metrics
        self.topology = Topology(settings.queue_name)
        self._leases = _LeaseKeeper(processor, settings.lease_seconds / 3)
        self.loop = ConsumeLoop(
            name=f"consumer {self.topology.queue}",
            amqp_uri=settings.amqp_uri,
            declare=self.topology.declare,
            subscriptions=[
                Subscription(self.topology.queue, self._handle_photo, lane="photo"),
                Subscription(self.topology.dead_queue, self._handle_dead, lane="photo"),
                # Queries have their own threads: someone is waiting for each
                # answer, and it must not queue behind a slow photo download.
                Subscription(self.topology.query_queue, self._handle_query, lane="query"),
            ],
            log=log,
            prefetch=settings.prefetch,
            # One photo at a time (seed 002): more in parallel comes from more
            # consumers. The others in hand wait, so the next is ready at once.
            lane_threads={"photo": 1},
            grace=settings.stop_grace_seconds,
            on_abandon=self._give_back_held,
        )

    @property
    def abandoned(self) -> bool:
        """True once a stop left work unfinished; its threads are not waited for."""
        return self.loop.abandoned

    def run(self) -> None:
        """Consume until stopped (see :mod:`consumer.loop`)."""
        removed = self.processor.storage.sweep_partials()
        if removed:
            log.info("removed partial files of dead writers", extra={"count": removed})
        try:
            self.loop.run()
        finally:
            self._leases.close()
            self.processor.close()
        log.info("consumer stopped", extra={"abandoned": self.abandoned})

    def stop(self) -> None:
        self.loop.stop()

    def install_signal_handlers(self) -> None:
        self.loop.install_signal_handlers()

    def _give_back_held(self) -> None:
        """Stopping with photos in hand: each is made pending again at once, so
        that its redelivered message is taken over without waiting out the lease."""
        for photo in self._leases.held():
            try:
                given_back = self.processor.give_back(photo)
            except Exception as exc:  # its lease then runs out instead
                log.warning("could not give the photo back", extra={"photo": str(photo), "error": repr(exc)})
            else:
                log.info("photo given back", extra={"photo": str(photo), "given_back": given_back})

    # --- the handlers, on worker threads -----------------------------------------

    def _handle_photo(self, delivery: Delivery) -> Settlement:
        try:
            message = PhotoMessage.decode(delivery.body)
        except ValueError as exc:
            log.error(
                "dropping a message that is not ours", extra={"error": str(exc), "body": delivery.body[:200]}
            )
            return delivery.ack
        outcome = self._with_database(lambda: self._process(message, delivery.redelivered))
        return self._settlement(delivery, message, outcome)

    def _settlement(self, delivery: Delivery, message: PhotoMessage, outcome: Outcome | None) -> Settlement:
        """How the message is settled once its outcome is committed: acked,
        acked after a copy went to the delay queue, or (told to stop while the
        database was away) returned to the queue."""
        photo = str(message.photo_uuid)
        if outcome is None:
            log.info("message returned", extra={"photo": photo, "outcome": "stopping"})
            return delivery.requeue
        if isinstance(outcome, RetryLater):
            self.metrics.count(Processed.retried)
            delay_ms = max(1, int(outcome.delay * 1000))
            log.info("message delayed", extra={"photo": photo, "outcome": "retry", "delay_ms": delay_ms})
            return lambda: self._republish_later(delivery, delay_ms)
        log.info("message done", extra={"photo": photo, "outcome": outcome.outcome})
        counted = _COUNTED.get(outcome.outcome)
        if counted is not None:
            self.metrics.count(counted)
        return delivery.ack

    def _process(self, message: PhotoMessage, redelivered: bool) -> Outcome:
        with self._leases.holding(message.photo_uuid), self.metrics.in_flight.track_inprogress():
            try:
                return self.processor.handle(message, redelivered=redelivered)
            except Exception as exc:
                if is_unavailable(exc):
                    raise
                log.exception("bug while processing", extra={"photo": str(message.photo_uuid)})
                return self.processor.fail(message.photo_uuid, f"internal error: {type(exc).__name__}: {exc}")

    def _handle_dead(self, delivery: Delivery) -> Settlement:
        try:
            message = PhotoMessage.decode(delivery.body)
        except ValueError:
            log.error("dropping an undecodable dead letter", extra={"body": delivery.body[:200]})
            return delivery.ack
        reason = (
            f"every consumer that took this photo stopped before finishing "
            f"(delivered {_deliveries(delivery.properties)} times); the photo may crash the image code"
        )
        outcome = self._with_database(lambda: self.processor.fail_dead_letter(message.photo_uuid, reason))
        return self._settlement(delivery, message, outcome)

    def _handle_query(self, delivery: Delivery) -> Settlement:
        reply = reply_to_query(delivery.body, delivery.properties, max_pixels=self.settings.max_image_pixels)

        def settle() -> None:
            if reply is not None:
                delivery.channel.basic_publish("", reply.routing_key, reply.body, reply.properties)
            delivery.ack()

        return settle

    def _republish_later(self, delivery: Delivery, delay_ms: int) -> None:
        delivery.channel.basic_publish(
            "", self.topology.delay_queue, delivery.body, properties(delay_ms=delay_ms), mandatory=True
        )
        delivery.ack()

    def _with_database(self, action: Callable[[], T]) -> T | None:
        """Run ``action``, waiting out a database outage; None if told to stop first."""
        backoff = Backoff()
        while True:
            try:
                return _once_more_if_dropped(action)
            except Exception as exc:
                if not is_unavailable(exc):
                    raise
                if self.loop.stopping:
                    return None
                wait = backoff.next()
                log.warning("database unavailable, waiting", extra={"retry_in": wait})
                self.loop.wait(wait)


class _LeaseKeeper:
    """Keeps the leases of the photos in hand alive: every ``interval`` seconds
    it renews each photo held, so a lease is renewed at most ``interval``
    seconds after its claim and then every ``interval`` seconds until the
    photo is let go. One thread for the consumer's life, started with the
    first photo (a thread per message cost CPU on every photo)."""

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
            try:
                self._processor.keep_locks()
            except Exception as exc:  # tried again on the next round
                log.warning("could not take the photo locks again", extra={"error": repr(exc)})
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


def _deliveries(props: BasicProperties) -> str:
    """How often a dead letter was delivered before it died. Its own
    x-delivery-count restarts in the dead-letter queue; what killed it is in
    x-death: past the delivery limit, the limit's deliveries plus the last."""
    deaths = (props.headers or {}).get("x-death") or []
    if any(isinstance(d, dict) and d.get("reason") == "delivery_limit" for d in deaths):
        return str(DELIVERY_LIMIT + 1)
    return "several"


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
        storage=open_storage(settings),
        fetcher=lambda url: fetch.fetch(url, policy),
        locks=PhotoLocks(make_lock_engine(settings.pg_uri)),
        lease_seconds=settings.lease_seconds,
        max_pixels=settings.max_image_pixels,
        retry_policy=pipeline.photo_retry_policy(settings),
        metrics=metrics or ProcessingMetrics(),
    )
