"""The readiness registry: checks run together, under one deadline."""

from __future__ import annotations

import threading
import time

import pytest

from photos.health import Readiness


def test_every_check_answers() -> None:
    readiness = Readiness(timeout=1.0)
    readiness.add("one", lambda: None)
    readiness.add("two", lambda: 42)
    report = readiness.run()
    assert report.ready
    assert report.results == {"one": None, "two": None}
    assert report.down == []


def test_a_failing_check_is_named_with_its_error() -> None:
    def broken() -> None:
        raise ConnectionRefusedError("connection refused\nmore detail")

    readiness = Readiness(timeout=1.0)
    readiness.add("fine", lambda: None)
    readiness.add("broken", broken)
    report = readiness.run()
    assert not report.ready
    assert report.down == ["broken"]
    assert report.results["broken"] == "connection refused"


def test_a_hanging_check_is_down_at_the_deadline_and_not_run_twice() -> None:
    release = threading.Event()
    calls: list[float] = []

    def hangs() -> None:
        calls.append(time.monotonic())
        release.wait(10)

    readiness = Readiness(timeout=0.2)
    readiness.add("hangs", hangs)
    readiness.add("fine", lambda: None)
    try:
        for _ in range(3):
            start = time.monotonic()
            report = readiness.run()
            assert time.monotonic() - start < 1.0
            assert report.results == {"hangs": "no answer within 0.2 s", "fine": None}
        assert len(calls) == 1
    finally:
        release.set()
    # The backend answers again: the hung run's answer counts, and once it
    # is in, every run calls the check afresh.
    deadline = time.monotonic() + 5
    while not readiness.run().ready:
        assert time.monotonic() < deadline
    before = len(calls)
    assert readiness.run().ready
    assert len(calls) == before + 1


def test_names_are_unique() -> None:
    readiness = Readiness()
    readiness.add("database", lambda: None)
    with pytest.raises(ValueError, match="database"):
        readiness.add("database", lambda: None)
