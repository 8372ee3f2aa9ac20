"""The upscaling processor's consume loop (``python entrypoint.py``).

The main thread owns the pika connection and only does broker I/O; the one
message in hand (prefetch 1) is carried out on a worker thread, and its ack or
dead letter is handed back with ``add_callback_threadsafe``. An empty queue
means waiting, never exiting. The loop reconnects with backoff when RabbitMQ
goes away, and never takes a message while the previous one is still being
worked on, so a redelivery is not carried out twice at the same time.

Dead letters are the original message, published to the dead-letter exchange
with headers ``x-upscale-reason``, ``x-upscale-step`` and ``x-upscale-attempts``
(confirmed before the original is acked). A message whose consumers keep dying
is dead-lettered by RabbitMQ itself after ``DELIVERY_LIMIT`` deliveries.

SIGTERM stops taking messages, interrupts a wait between retries (the message
returns to the queue), gives a call in progress up to ``grace`` seconds, then
closes; whatever is unfinished is redelivered.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pika
import requests
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPError, NackError, UnroutableError
from pika.spec import Basic, BasicProperties

from consumer.loop import ConsumeLoop
from consumer.upscaling_http import HttpImageService, HttpUpscaler
from photos.config import UpscalingSettings
from photos.queue import UpscaleTopology
from photos.retry import Interrupted, RetryPolicy
from photos.upscaling import Delivered, Rejected, UpscaleProcessor

log = logging.getLogger("upscaler")


class UpscalingWorker(ConsumeLoop):
    def __init__(
        self, settings: UpscalingSettings, processor: UpscaleProcessor, *, grace: float = 10.0
    ) -> None:
        super().__init__(log)
        self.settings = settings
        self.processor = processor
        self.topology = UpscaleTopology(settings.queue_name)
        self.grace = grace
        self._working: threading.Thread | None = None

    def run(self) -> None:
        """Consume until stopped, reconnecting with backoff when the broker goes away."""
        self._reconnecting(self._consume)
        log.info("upscaler stopped")

    def _consume(self) -> None:
        self._finish_work_in_hand()
        connection = self._connect(self.settings.amqp_uri, f"upscaler {self.topology.queue}")
        channel = connection.channel()
        channel.confirm_delivery()
        self.topology.declare(channel)
        channel.basic_qos(prefetch_count=1)
        tag = channel.basic_consume(self.topology.queue, self._on_message)
        log.info("consuming", extra={"queue": self.topology.queue})
        while not self._stop.is_set():
            connection.process_data_events(time_limit=0.25)
        channel.basic_cancel(tag)
        deadline = time.monotonic() + self.grace
        while self._busy() and time.monotonic() < deadline:
            connection.process_data_events(time_limit=0.1)
        if self._busy():
            log.warning("stopping with a message in hand; it returns to the queue")

    def _finish_work_in_hand(self) -> None:
        """After a lost connection: the message in hand was requeued and may
        come back at once; wait until its first run is over (its calls are
        bounded by their timeouts; a stop cuts the retry waits short)."""
        working = self._working
        if working is not None and working.is_alive():
            log.info("waiting for the message in hand before consuming again")
            working.join()

    def _busy(self) -> bool:
        return self._working is not None and self._working.is_alive()

    def _on_message(
        self, channel: BlockingChannel, method: Basic.Deliver, props: BasicProperties, body: bytes
    ) -> None:
        connection = self._connection
        assert connection is not None and method.delivery_tag is not None
        tag = method.delivery_tag

        def work() -> None:
            settle = self._carry_out(channel, tag, props, body)
            try:
                connection.add_callback_threadsafe(lambda: self._settle(settle))
            except AMQPError:
                log.warning("connection gone before the outcome was settled; the message will come back")

        # A daemon thread: a call still in progress when the grace period ends
        # must not keep the process alive (its message is redelivered).
        self._working = threading.Thread(target=work, name="upscale", daemon=True)
        self._working.start()

    def _carry_out(
        self, channel: BlockingChannel, tag: int, props: BasicProperties, body: bytes
    ) -> Callable[[], None]:
        try:
            outcome = self.processor.handle(body, self._stop.wait)
        except Interrupted:
            log.info("stopped while waiting to retry; the message returns to the queue")
            return lambda: channel.basic_nack(tag, requeue=True)
        except Exception:
            log.exception("bug while upscaling; the message returns to the queue")
            return lambda: channel.basic_nack(tag, requeue=True)
        if isinstance(outcome, Delivered):
            log.info(
                "image upscaled and delivered",
                extra={
                    "outcome": "delivered",
                    "width": outcome.width,
                    "height": outcome.height,
                    "size_bytes": outcome.size_bytes,
                    "attempts": outcome.attempts,
                },
            )
            return lambda: channel.basic_ack(tag)
        log.warning(
            "message dead-lettered",
            extra={
                "outcome": "dead-lettered",
                "step": outcome.step,
                "reason": outcome.reason,
                "attempts": outcome.attempts,
            },
        )
        return lambda: self._dead_letter(channel, tag, props, body, outcome)

    def _dead_letter(
        self, channel: BlockingChannel, tag: int, props: BasicProperties, body: bytes, outcome: Rejected
    ) -> None:
        headers = dict(props.headers or {})
        headers.update(
            {
                "x-upscale-reason": outcome.reason,
                "x-upscale-step": outcome.step,
                "x-upscale-attempts": outcome.attempts,
            }
        )
        dead = BasicProperties(
            content_type=props.content_type,
            delivery_mode=pika.DeliveryMode.Persistent,
            message_id=props.message_id,
            headers=headers,
        )
        try:
            channel.basic_publish(
                self.topology.dead_exchange, self.topology.queue, body, dead, mandatory=True
            )
        except (UnroutableError, NackError) as exc:
            # Not taken by the dead-letter queue: keep the message rather than
            # lose it (RabbitMQ's delivery limit ends a loop).
            log.error("could not dead-letter a message; it returns to the queue", extra={"error": repr(exc)})
            channel.basic_nack(tag, requeue=True)
            return
        channel.basic_ack(tag)

    def _settle(self, settle: Callable[[], None]) -> None:
        try:
            settle()
        except AMQPError as exc:
            log.warning("could not settle a message", extra={"error": repr(exc)})


def build_upscaling_worker(settings: UpscalingSettings) -> UpscalingWorker:
    """Wire the real adapters together: the one place that does."""
    session = requests.Session()
    session.headers["User-Agent"] = "photo-processor-upscaler/1.0"
    processor = UpscaleProcessor(
        upscaler=HttpUpscaler(
            url=settings.upscaler_url,
            token=settings.upscaler_token,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.upscaler_timeout,
            max_pixels=settings.max_image_pixels,
            session=session,
        ),
        image_service=HttpImageService(
            url=settings.image_service_url,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.image_service_timeout,
            session=session,
        ),
        policy=RetryPolicy(
            max_attempts=settings.max_attempts,
            base_delay=settings.retry_base_delay,
            max_delay=settings.retry_max_delay,
        ),
        max_pixels=settings.max_image_pixels,
    )
    return UpscalingWorker(settings, processor)
