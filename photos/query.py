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

from dataclasses import dataclass

from photos import imaging
from photos.errors import ProcessingError
from photos.imaging import Encoded, ImageError


def kilobytes(size_bytes: int) -> int:
    """``size_bytes / 1024`` rounded half up; at least 1 unless it is 0."""
    if size_bytes <= 0:
        return 0
    return max(1, (size_bytes + 512) // 1024)


class ConsumerError(ProcessingError):
    """The consumer failed for a reason of its own (a bug), not the image's."""


# What a consumer answers instead of an Answer: the image's fault (an
# ImageError: NotAnImage, ImageTooLarge) or its own.
Refusal = ImageError | ConsumerError


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
    """Raises :class:`~photos.imaging.ImageError` as the one acceptance rule
    says (:func:`photos.imaging.probe`): NotAnImage, ImageTooLarge (more than
    ``max_pixels`` pixels, found from the header before decoding)."""
    return Answer(len(data), imaging.mirror(data, max_pixels=max_pixels), consumer)
