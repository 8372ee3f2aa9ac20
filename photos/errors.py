"""Typed failures. The class decides what happens to a photo; the message is the
reason stored on it, so it is written for a person."""

from __future__ import annotations


class ProcessingError(Exception):
    """Processing a photo did not succeed."""

    @property
    def reason(self) -> str:
        return str(self)


class PermanentError(ProcessingError):
    """Trying again cannot help (not an image, HTTP 404, blocked address, too large):
    the photo fails at once."""


class TransientError(ProcessingError):
    """May succeed later (timeout, HTTP 5xx, connection refused): retried with a
    delay, a bounded number of times."""
