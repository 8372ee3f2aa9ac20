"""Retry policy and backoff: which failures are tried again, how often, and how
long to wait. One formula, :func:`exponential`, serves both.

A call is retried only when it raises :class:`TransientError`; anything else
(including :class:`PermanentError`) goes straight to the caller. At most
``max_attempts`` calls are made. Before attempt ``n + 1`` the policy waits a
random time between half and all of ``base_delay * 2 ** (n - 1)``, capped at
``max_delay`` (exponential backoff with "equal jitter": never less than half the
backoff, so a flapping service is not hammered, and spread so that many clients
do not retry in step). The photo retries through the delay queue and the
upscaler's calls use the policy.

:class:`Backoff` waits for something that is away (the broker, the database)
for as long as it takes: ``first`` after the first failure in a row, doubling up
to ``most``, back to ``first`` after a success. No jitter: one process waits
for its own connection, not a crowd for one service.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from photos.errors import ProcessingError, TransientError

T = TypeVar("T")

# Waits ``seconds``; returns True if the wait was cut short because the process
# is stopping (``threading.Event.wait`` has exactly this shape).
Wait = Callable[[float], bool]


def exponential(base: float, failures: int, cap: float) -> float:
    """``base * 2 ** (failures - 1)``, at most ``cap``: the wait after the
    ``failures``-th failure in a row (1, 2, ...)."""
    return min(cap, base * 2.0 ** (failures - 1))


@dataclass
class Backoff:
    first: float = 0.5
    most: float = 15.0
    failures: int = field(default=0, init=False)

    def next(self) -> float:
        """The wait after one more failure."""
        self.failures += 1
        return exponential(self.first, self.failures, self.most)

    def reset(self) -> None:
        """After a success: the next failure waits ``first`` again."""
        self.failures = 0


class Interrupted(Exception):
    """The process was told to stop while waiting to retry."""


class GaveUp(ProcessingError):
    """Every attempt failed with a transient error; the last one is the reason.
    Not itself transient: an outer retry would multiply the attempts."""

    def __init__(self, attempts: int, last: TransientError) -> None:
        super().__init__(f"gave up after {attempts} attempts: {last.reason}")
        self.attempts = attempts
        self.last = last


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("delays cannot be negative")

    def delay(self, failed_attempts: int) -> float:
        """Seconds to wait after the ``failed_attempts``-th failure."""
        backoff = exponential(self.base_delay, failed_attempts, self.max_delay)
        return backoff / 2 + self.rng.uniform(0, backoff / 2)

    def call(
        self,
        action: Callable[[], T],
        wait: Wait,
        on_retry: Callable[[int, float, TransientError], None] | None = None,
    ) -> tuple[T, int]:
        """``action()``'s result and the number of attempts it took.

        Raises :class:`GaveUp` once ``max_attempts`` calls failed transiently,
        :class:`Interrupted` if ``wait`` reports a stop, and whatever
        non-transient error ``action`` raises, at once.
        """
        attempt = 1
        while True:
            try:
                return action(), attempt
            except TransientError as exc:
                if attempt >= self.max_attempts:
                    raise GaveUp(attempt, exc) from exc
                pause = self.delay(attempt)
                if on_retry is not None:
                    on_retry(attempt, pause, exc)
                if wait(pause):
                    raise Interrupted() from exc
                attempt += 1
