"""The retry policy: what is retried, how many times, and the waits between;
the photo retries; the backoff of reconnects and database waits."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from photos.config import Settings
from photos.errors import PermanentError, TransientError
from photos.pipeline import MAX_RETRY_DELAY, photo_retry_policy
from photos.retry import Backoff, GaveUp, Interrupted, RetryPolicy


class Waits:
    """Records the waits instead of waiting; ``stop_after`` waits report a stop."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.seconds: list[float] = []
        self.stop_after = stop_after

    def __call__(self, seconds: float) -> bool:
        self.seconds.append(seconds)
        return self.stop_after is not None and len(self.seconds) >= self.stop_after


def failing(times: int, error: Exception, result: str = "ok") -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def action() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise error
        return result

    return calls, action


def test_a_success_is_returned_with_the_attempts_it_took() -> None:
    calls, action = failing(2, TransientError("503"))
    waits = Waits()
    result = RetryPolicy(max_attempts=5, base_delay=1.0).call(action, waits)
    assert result == ("ok", 3)
    assert len(calls) == 3
    assert len(waits.seconds) == 2


def test_transient_failures_are_retried_a_bounded_number_of_times() -> None:
    calls, action = failing(100, TransientError("connection refused"))
    waits = Waits()
    with pytest.raises(GaveUp) as raised:
        RetryPolicy(max_attempts=4).call(action, waits)
    assert len(calls) == 4
    assert len(waits.seconds) == 3
    assert raised.value.attempts == 4
    assert raised.value.reason == "gave up after 4 attempts: connection refused"
    assert not isinstance(raised.value, TransientError), "an outer retry must not multiply the attempts"


def test_one_attempt_means_no_retry() -> None:
    calls, action = failing(1, TransientError("503"))
    with pytest.raises(GaveUp):
        RetryPolicy(max_attempts=1).call(action, Waits())
    assert len(calls) == 1


@pytest.mark.parametrize("error", [PermanentError("HTTP 400"), ValueError("a bug")])
def test_other_errors_are_raised_at_once(error: Exception) -> None:
    calls, action = failing(1, error)
    waits = Waits()
    with pytest.raises(type(error)):
        RetryPolicy(max_attempts=5).call(action, waits)
    assert len(calls) == 1
    assert waits.seconds == []


def test_a_stop_during_a_wait_interrupts_the_retries() -> None:
    calls, action = failing(100, TransientError("503"))
    with pytest.raises(Interrupted):
        RetryPolicy(max_attempts=10).call(action, Waits(stop_after=2))
    assert len(calls) == 2


def test_waits_grow_exponentially_within_their_jitter_and_are_capped() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=1.0, max_delay=8.0, rng=random.Random(7))
    for failed, backoff in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 8.0), (9, 8.0)]:
        samples = [policy.delay(failed) for _ in range(200)]
        assert all(backoff / 2 <= s <= backoff for s in samples), (failed, min(samples), max(samples))
        # Jittered: not every client waits the same time.
        assert max(samples) - min(samples) > backoff / 4


def test_the_retry_callback_sees_each_failure_and_its_wait() -> None:
    _, action = failing(2, TransientError("HTTP 502"))
    seen: list[tuple[int, float, str]] = []
    waits = Waits()
    RetryPolicy(max_attempts=3, base_delay=0.1).call(
        action,
        waits,
        on_retry=lambda attempt, pause, exc: seen.append((attempt, pause, exc.reason)),
    )
    assert [(a, r) for a, _, r in seen] == [(1, "HTTP 502"), (2, "HTTP 502")]
    assert [p for _, p, _ in seen] == waits.seconds


def test_nonsense_policies_are_refused() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(base_delay=-1)


# --- the photo retries -------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempts", "backoff"),
    [(1, 2.0), (2, 4.0), (3, 8.0), (6, 64.0), (8, 256.0), (9, MAX_RETRY_DELAY), (20, MAX_RETRY_DELAY)],
)
def test_a_photo_waits_on_the_delay_queue_for_between_half_and_all_of_its_backoff(
    attempts: int, backoff: float
) -> None:
    settings = Settings.from_env({}).with_(retry_base_delay=2.0, max_attempts=30)
    policy = photo_retry_policy(settings)
    samples = [policy.delay(attempts) for _ in range(300)]
    assert all(backoff / 2 <= s <= backoff for s in samples), (min(samples), max(samples))
    assert max(samples) - min(samples) > backoff / 4


def test_a_photo_is_tried_as_often_as_max_attempts_says() -> None:
    assert photo_retry_policy(Settings.from_env({"MAX_ATTEMPTS": "7"})).max_attempts == 7


# --- waiting for the broker or the database ----------------------------------------------


def test_a_backoff_doubles_from_its_first_wait_up_to_its_most_and_starts_again_after_a_success() -> None:
    backoff = Backoff(first=0.5, most=15.0)
    assert [backoff.next() for _ in range(8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0]
    backoff.reset()
    assert [backoff.next() for _ in range(2)] == [0.5, 1.0]
