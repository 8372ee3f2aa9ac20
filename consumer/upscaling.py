"""The upscaling processor (``python entrypoint.py``): upscale requests handled
on the one consume loop (:mod:`consumer.loop`, which owns the connection, the
threads, settlement, reconnects and the drain on stop).

One message is in hand at a time (prefetch 1), carried out on a worker thread.
An empty queue means waiting, never exiting. After a lost connection the loop
does not consume again while the previous message is still being worked on, so
a redelivery is not carried out twice at the same time.

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

import pika
import requests
from pika.exceptions import NackError, UnroutableError
from pika.spec import BasicProperties

from consumer.loop import ConsumeLoop, Delivery, Settlement, Subscription
from consumer.upscaling_http import HttpImageService, HttpUpscaler
from photos.config import UpscalingSettings
from photos.queue import UpscaleTopology
from photos.retry import Interrupted, RetryPolicy
from photos.upscaling import Delivered, Rejected, UpscaleProcessor

log = logging.getLogger("upscaler")


class UpscalingWorker:
    def __init__(
        self, settings: UpscalingSettings, processor: UpscaleProcessor, *, grace: float = 10.0
    ) -> None:
        self.settings = settings
        self.processor = processor
        self.topology = UpscaleTopology(settings.queue_name)
        self.loop = ConsumeLoop(
            name=f"upscaler {self.topology.queue}",
            amqp_uri=settings.amqp_uri,
            declare=self.topology.declare,
            subscriptions=[Subscription(self.topology.queue, self._handle_upscale, lane="upscale")],
            log=log,
            prefetch=1,
            grace=grace,
            finish_before_reconnecting=True,
        )

    @property
    def abandoned(self) -> bool:
        """True once a stop left a call unfinished; its thread is not waited for."""
        return self.loop.abandoned

    def run(self) -> None:
        """Consume until stopped (see :mod:`consumer.loop`)."""
        self.loop.run()
        log.info("upscaler stopped")

    def stop(self) -> None:
        self.loop.stop()

    def install_signal_handlers(self) -> None:
        self.loop.install_signal_handlers()

    def _handle_upscale(self, delivery: Delivery) -> Settlement:
        try:
            outcome = self.processor.handle(delivery.body, self.loop.wait)
        except Interrupted:
            log.info("stopped while waiting to retry; the message returns to the queue")
            return delivery.requeue
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
            return delivery.ack
        log.warning(
            "message dead-lettered",
            extra={
                "outcome": "dead-lettered",
                "step": outcome.step,
                "reason": outcome.reason,
                "attempts": outcome.attempts,
            },
        )
        return lambda: self._dead_letter(delivery, outcome)

    def _dead_letter(self, delivery: Delivery, outcome: Rejected) -> None:
        props = delivery.properties
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
            delivery.channel.basic_publish(
                self.topology.dead_exchange, self.topology.queue, delivery.body, dead, mandatory=True
            )
        except (UnroutableError, NackError) as exc:
            # Not taken by the dead-letter queue: keep the message rather than
            # lose it (RabbitMQ's delivery limit ends a loop).
            log.error("could not dead-letter a message; it returns to the queue", extra={"error": repr(exc)})
            delivery.requeue()
            return
        delivery.ack()


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
