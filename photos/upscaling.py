"""The upscaling processor's use case: one message in; the upscaled image posted
to the image service, or the reason the message is dead-lettered.

A message is the JSON object ``{"width": int, "height": int, "image_data":
"<base64 PNG>"}``. What is accepted, and what happens otherwise:

- ``width`` and ``height`` are whole numbers of at least 1 (not booleans, not
  ``2.0``, not strings), and ``width * height`` is at most ``max_pixels``.
- ``image_data`` is standard base64 (whitespace is ignored, padding is required)
  of a PNG (the signature and a readable header) of at most ``max_pixels``.
- The target may not be smaller than the image in either dimension: that is
  *not an upscale* and is dead-lettered rather than silently shrunk. Equal is
  allowed (one side may grow while the other stays).
- Any aspect ratio may be asked for: the upscaler is asked for exactly
  ``width`` x ``height`` and the image may be stretched; we neither crop nor pad.
- Other keys are ignored. A missing, malformed or out-of-range field, and
  anything that is not a JSON object, is dead-lettered at once.

Then, each step with the retry policy (:mod:`photos.retry`): the upscaler is
asked for the new size; its answer must be a PNG. The decoded bytes are posted
to the image service; only a 200 means done. The services are reached through
the HTTP adapters in :mod:`consumer.upscaling_http`, which raise
:class:`TransientError` for what may pass (timeouts, connection errors, HTTP
408, 429 and 5xx), retried, and :class:`PermanentError` for the rest, which
dead-letters the message with the reason, as does a step that used up its
attempts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from photos import imaging
from photos.errors import PermanentError, ProcessingError, TransientError
from photos.imaging import ImageError, ImageTooLarge
from photos.retry import GaveUp, RetryPolicy, Wait

log = logging.getLogger(__name__)
T = TypeVar("T")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_WHITESPACE = re.compile(rb"\s+")


class InvalidMessage(PermanentError):
    """The message is not an upscale request we can carry out."""


class NotAnUpscale(InvalidMessage):
    """The requested size is smaller than the image."""


# --- the message -------------------------------------------------------------


@dataclass(frozen=True)
class UpscaleRequest:
    width: int
    height: int
    image: bytes  # a PNG
    image_width: int
    image_height: int

    @classmethod
    def decode(cls, body: bytes, *, max_pixels: int) -> UpscaleRequest:
        """Raises :class:`InvalidMessage` (or :class:`NotAnUpscale`) naming what is wrong."""
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise InvalidMessage("the message is not JSON") from None
        if not isinstance(data, dict):
            raise InvalidMessage("the message is not a JSON object")
        missing = [k for k in ("width", "height", "image_data") if k not in data]
        if missing:
            raise InvalidMessage(f"missing field{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
        width, height = _dimension(data, "width"), _dimension(data, "height")
        try:
            imaging.check_pixels(width, height, max_pixels)
        except ImageTooLarge:
            raise InvalidMessage(f"{width}x{height} is more than the limit of {max_pixels} pixels") from None
        image = decode_png(data["image_data"], "image_data", max_pixels=max_pixels)
        probe = imaging.probe(image, max_pixels)
        if width < probe.width or height < probe.height:
            raise NotAnUpscale(
                f"not an upscale: {width}x{height} is smaller than the image's {probe.width}x{probe.height}"
            )
        return cls(width, height, image, probe.width, probe.height)

    @property
    def key(self) -> str:
        """Identifies the request by its content: the same image to the same size."""
        digest = hashlib.sha256(self.image)
        digest.update(f"{self.width}x{self.height}".encode())
        return digest.hexdigest()


def encode_request(png: bytes, width: int, height: int) -> bytes:
    """A message as producers send it."""
    return json.dumps(
        {"width": width, "height": height, "image_data": base64.b64encode(png).decode()}
    ).encode()


def _dimension(data: dict[str, object], name: str) -> int:
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidMessage(f"{name} must be a whole number, got {json.dumps(value)[:40]}")
    if value < 1:
        raise InvalidMessage(f"{name} must be at least 1, got {value}")
    return value


def decode_png(value: object, what: str, *, max_pixels: int) -> bytes:
    """The PNG in base64 text ``value``; raises :class:`InvalidMessage`."""
    if not isinstance(value, str):
        raise InvalidMessage(f"{what} must be a base64 string")
    try:
        data = base64.b64decode(_WHITESPACE.sub(b"", value.encode("ascii")), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise InvalidMessage(f"{what} is not valid base64") from None
    if not data.startswith(PNG_SIGNATURE):
        raise InvalidMessage(f"{what} is not a PNG")
    try:
        probe = imaging.probe(data, max_pixels)
    except ImageError as exc:
        raise InvalidMessage(f"{what} is not a readable PNG: {exc.reason}") from None
    if probe.format != "PNG":
        raise InvalidMessage(f"{what} is not a PNG")
    return data


# --- the outside services ------------------------------------------------------


class Upscaler(Protocol):
    def upscale(self, png: bytes, width: int, height: int) -> bytes:
        """The upscaled PNG; TransientError or PermanentError otherwise."""
        ...


class ImageService(Protocol):
    def post_image(self, png: bytes, key: str) -> None:
        """Returns once the service answered 200; TransientError or PermanentError otherwise."""
        ...


# --- one message ------------------------------------------------------------------


@dataclass(frozen=True)
class Delivered:
    """Upscaled and accepted by the image service: ack."""

    width: int
    height: int
    size_bytes: int
    attempts: int  # calls made, both services together


@dataclass(frozen=True)
class Rejected:
    """Give up on the message: dead-letter it with ``reason``."""

    reason: str
    step: str  # "message", "upscaler" or "image-service"
    attempts: int


Outcome = Delivered | Rejected


@dataclass
class UpscaleProcessor:
    """Carries out one message. Returns an :class:`Outcome`; raises
    :class:`photos.retry.Interrupted` when told to stop while waiting to retry
    (the message goes back to the queue), and nothing else but bugs."""

    upscaler: Upscaler
    image_service: ImageService
    policy: RetryPolicy
    max_pixels: int

    def handle(self, body: bytes, wait: Wait) -> Outcome:
        try:
            request = UpscaleRequest.decode(body, max_pixels=self.max_pixels)
        except InvalidMessage as exc:
            return Rejected(exc.reason, "message", 0)
        try:
            upscaled, upscale_calls = self._step(
                "upscaler",
                lambda: self.upscaler.upscale(request.image, request.width, request.height),
                wait,
                request,
            )
            _, post_calls = self._step(
                "image-service", lambda: self.image_service.post_image(upscaled, request.key), wait, request
            )
        except _StepFailed as failed:
            return Rejected(failed.reason, failed.step, failed.calls)
        result = imaging.probe(upscaled, self.max_pixels)
        return Delivered(result.width, result.height, len(upscaled), upscale_calls + post_calls)

    def _step(self, step: str, action: Callable[[], T], wait: Wait, request: UpscaleRequest) -> tuple[T, int]:
        calls = 0

        def counted() -> T:
            nonlocal calls
            calls += 1
            return action()

        try:
            result, _ = self.policy.call(counted, wait, on_retry=_log_retry(step, request))
        except (GaveUp, PermanentError) as exc:
            raise _StepFailed(exc.reason, step, calls) from exc
        return result, calls


class _StepFailed(ProcessingError):
    def __init__(self, reason: str, step: str, calls: int) -> None:
        super().__init__(reason)
        self.step = step
        self.calls = calls


def _log_retry(step: str, request: UpscaleRequest) -> Callable[[int, float, TransientError], None]:
    def on_retry(attempt: int, pause: float, exc: TransientError) -> None:
        log.warning(
            "upscale step failed, retrying",
            extra={
                "request": request.key[:16],
                "step": step,
                "attempt": attempt,
                "retry_in": round(pause, 2),
                "reason": exc.reason,
            },
        )

    return on_retry
