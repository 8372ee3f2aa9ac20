"""Synchronous queries (``POST /query``): what a consumer answers.

A consumer answers an image with its size and the image mirrored left to right
(:func:`answer`); the web app records the answer as a ``queries`` row whose id
names the mirrored file in storage (:func:`photos.uploads.record_answer`, beside
the other use case that writes a row and its file).

The size rule (:func:`kilobytes`): the size in bytes divided by 1024, rounded
half up, and at least 1 for any image (an image is never 0 bytes). So an
84,000-byte file is ``82kb`` (82.03), 1,535 bytes are ``1kb``, 1,536 bytes
(1.5) are ``2kb``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import ClassVar

from photos import imaging
from photos.errors import PermanentError, ProcessingError
from photos.imaging import Encoded, ImageError


def kilobytes(size_bytes: int) -> int:
    """``size_bytes / 1024`` rounded half up; at least 1 unless it is 0."""
    if size_bytes <= 0:
        return 0
    return max(1, (size_bytes + 512) // 1024)


class QueryFailed(ProcessingError):
    """A consumer could not answer the query. ``kind`` names the failure on the
    wire (see :mod:`photos.rpc`)."""

    kind: ClassVar[str] = "error"


class NotAnImage(QueryFailed, PermanentError):
    kind = "not_an_image"


class ImageTooLarge(QueryFailed, PermanentError):
    kind = "too_large"


class ConsumerError(QueryFailed):
    """The consumer failed for a reason of its own (a bug), not the image's."""

    kind = "consumer_error"


FAILURES: dict[str, type[QueryFailed]] = {c.kind: c for c in (NotAnImage, ImageTooLarge, ConsumerError)}


@dataclass(frozen=True)
class Answer:
    """A consumer's answer: the size of the image it was sent, the image
    mirrored, and who answered (``host:pid``)."""

    size_bytes: int
    mirrored: Encoded
    consumer: str

    @property
    def size_kb(self) -> int:
        return kilobytes(self.size_bytes)


def answer(data: bytes, *, max_pixels: int, consumer: str) -> Answer:
    """Raises :class:`NotAnImage` or :class:`ImageTooLarge` (more than
    ``max_pixels`` pixels, found from the header before decoding)."""
    try:
        probe = imaging.probe(data, sys.maxsize)
    except ImageError as exc:
        raise NotAnImage(exc.reason) from None
    if probe.width * probe.height > max_pixels:
        raise ImageTooLarge(
            f"image is {probe.width}x{probe.height}, more than the limit of {max_pixels} pixels"
        )
    try:
        mirrored = imaging.mirror(data, max_pixels=max_pixels)
    except ImageError as exc:
        raise NotAnImage(exc.reason) from None
    return Answer(len(data), mirrored, consumer)
